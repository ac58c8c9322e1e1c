"""tools/run_demo.py: the learning-curve plot, the prediction pictures and the run bookkeeping
(full training is left to ``make demo``)."""

import importlib.util
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from mmengine.config import Config

from mmrmt.toy_data.coco import ToyCocoSpec, make_toy_coco

REPO = Path(__file__).resolve().parents[1]
DET_CONFIG = REPO / "configs" / "det" / "maskrcnn_rmt_t_toy.py"
SEG_CONFIG = REPO / "configs" / "seg" / "fpn_rmt_t_toy.py"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def load_run_demo():
    spec = importlib.util.spec_from_file_location("run_demo", REPO / "tools" / "run_demo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


run_demo = load_run_demo()


def write_scalars(path: Path, records) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


def read_png(path: Path) -> np.ndarray:
    assert Path(path).read_bytes()[:8] == PNG_SIGNATURE
    image = cv2.imread(str(path))
    assert image is not None
    return image


# -- logs and plot ------------------------------------------------------------------------------
def test_read_scalars_splits_train_and_val_and_prefers_the_resumed_run(tmp_path):
    first = [
        {"loss": 3.0, "lr": 1e-3, "epoch": 1, "iter": 10, "step": 10},
        {"loss": 2.0, "lr": 1e-3, "epoch": 1, "iter": 20, "step": 20},
        {"coco/bbox_mAP": 0.1, "coco/segm_mAP": 0.2, "step": 1},
    ]
    resumed = [
        {"loss": 1.5, "lr": 1e-3, "epoch": 2, "iter": 20, "step": 20},
        {"loss": 1.0, "lr": 1e-3, "epoch": 2, "iter": 30, "step": 30},
        {"coco/bbox_mAP": 0.3, "coco/segm_mAP": 0.4, "step": 2},
    ]
    write_scalars(tmp_path / "20240101_000000" / "vis_data" / "scalars.json", first)
    write_scalars(tmp_path / "20240101_010000" / "vis_data" / "scalars.json", resumed)
    train, val = run_demo.read_scalars(str(tmp_path))
    assert [(r["step"], r["loss"]) for r in train] == [(10, 3.0), (20, 1.5), (30, 1.0)]
    assert [(r["step"], r["coco/bbox_mAP"]) for r in val] == [(1, 0.1), (2, 0.3)]


def test_plot_curves_writes_a_png_of_the_figure_size(tmp_path):
    train = [{"step": s, "loss": 3.0 / s} for s in range(1, 40)]
    val = [{"step": e, "coco/bbox_mAP": 0.1 * e, "coco/segm_mAP": 0.08 * e} for e in (1, 2, 3)]
    out = run_demo.plot_curves(
        train, val, run_demo.METRIC_KEYS["mmdet"], str(tmp_path / "plots" / "curves.png")
    )
    image = read_png(Path(out))
    assert image.shape == (400, 1000, 3)  # figsize (10, 4) at 100 dpi
    assert image.std() > 10  # something was drawn


def test_plot_curves_accepts_a_log_without_validation(tmp_path):
    out = run_demo.plot_curves([{"step": 1, "loss": 1.0}], [], ("mIoU",), str(tmp_path / "c.png"))
    read_png(Path(out))


# -- bookkeeping --------------------------------------------------------------------------------
def test_final_checkpoint_follows_the_training_loop():
    by_epoch = Config(dict(train_cfg=dict(type="EpochBasedTrainLoop", max_epochs=7)))
    by_iter = Config(dict(train_cfg=dict(type="IterBasedTrainLoop", max_iters=400)))
    assert run_demo.final_checkpoint(by_epoch, "w") == "w/epoch_7.pth"
    assert run_demo.final_checkpoint(by_iter, "w") == "w/iter_400.pth"


def test_cfg_options_are_read_like_mmengine_tools_read_them():
    options = run_demo.parse_cfg_options(["train_cfg.max_epochs=2", "model.x=[1,2]", "a=text"])
    assert options == {"train_cfg.max_epochs": 2, "model.x": [1, 2], "a": "text"}
    assert run_demo.parse_cfg_options([]) == {}


def test_a_config_outside_mmdet_and_mmseg_is_refused():
    with pytest.raises(ValueError, match="default_scope must be one of"):
        run_demo.config_scope(Config(dict(default_scope="mmpretrain")))


def test_a_finished_run_is_reused_without_training(tmp_path, monkeypatch):
    cfg = Config(dict(train_cfg=dict(max_epochs=2)))
    (tmp_path / "epoch_2.pth").write_bytes(b"")
    monkeypatch.setattr(run_demo, "run_tool", lambda *a: pytest.fail("must not train"))
    assert run_demo.train("c.py", cfg, str(tmp_path), []) == (str(tmp_path / "epoch_2.pth"), None)


def test_an_interrupted_run_is_resumed(tmp_path, monkeypatch):
    cfg = Config(dict(train_cfg=dict(max_epochs=2)))
    (tmp_path / "last_checkpoint").write_text(str(tmp_path / "epoch_1.pth"))
    calls = []
    monkeypatch.setattr(run_demo, "run_tool", lambda script, args: calls.append((script, args)))
    run_demo.train("c.py", cfg, str(tmp_path), ["--cfg-options", "a=1"])
    assert calls == [
        ("train.py", ["c.py", "--work-dir", str(tmp_path), "--resume", "--cfg-options", "a=1"])
    ]


def test_summary_reports_time_final_figures_and_the_learning_curve():
    summary = dict(
        train_seconds=540.0,
        test_metrics={"coco/bbox_mAP": 0.5671, "coco/segm_mAP": 0.573},
        val_curve=[{"step": 2, "coco/bbox_mAP": 0.1}, {"step": 4, "coco/bbox_mAP": 0.3}],
        pictures=["w/predictions/000001.png"],
        plot="w/curves.png",
    )
    lines = run_demo.summary_lines(summary, "coco/bbox_mAP", "epoch")
    assert lines == [
        "training 9.0 min; tools/test.py on the final checkpoint: "
        "coco/bbox_mAP 0.567, coco/segm_mAP 0.573",
        "validation coco/bbox_mAP over training: epoch 2: 0.100; epoch 4: 0.300",
        "pictures w/predictions/, plot w/curves.png",
    ]
    summary["train_seconds"] = None
    assert run_demo.summary_lines(summary, "coco/bbox_mAP", "epoch")[0].startswith(
        "training time unknown (reused run)"
    )


# -- pictures -----------------------------------------------------------------------------------
def test_draw_predictions_writes_one_picture_per_val_image(tmp_path):
    root = tmp_path / "toy_coco"
    make_toy_coco(str(root), spec=ToyCocoSpec(num_train=1, num_val=2))
    cfg = Config.fromfile(str(DET_CONFIG))
    cfg.val_dataloader.dataset.data_root = f"{root}/"
    images = run_demo.val_images(cfg, "mmdet", 5)
    assert [Path(p).name for p in images] == ["000001.png", "000002.png"]
    written = run_demo.draw_predictions(cfg, None, images, str(tmp_path / "pred"), score_thr=0.0)
    assert [Path(p).name for p in written] == ["000001.png", "000002.png"]
    for picture, image in zip(written, images):
        # 96-px images are enlarged 4x (nearest neighbour) to stay readable.
        enlarged = cv2.imread(image).repeat(4, 0).repeat(4, 1)
        drawn = read_png(Path(picture))
        assert drawn.shape == enlarged.shape == (384, 384, 3)
        assert not np.array_equal(drawn, enlarged)  # boxes / masks were drawn over it
    assert sorted(p.name for p in (tmp_path / "pred").iterdir()) == ["000001.png", "000002.png"]


def test_draw_predictions_overlays_class_maps_for_segmentation(tmp_path):
    rng = np.random.default_rng(0)
    images = []
    for name, shape in (("wide.png", (96, 128, 3)), ("tall.png", (120, 80, 3))):
        images.append(str(tmp_path / name))
        cv2.imwrite(images[-1], rng.integers(0, 255, size=shape, dtype=np.uint8))
    cfg = Config.fromfile(str(SEG_CONFIG))
    written = run_demo.draw_predictions(cfg, None, images, str(tmp_path / "pred"))
    assert [Path(p).name for p in written] == ["wide.png", "tall.png"]
    for picture, image in zip(written, images):
        enlarged = cv2.imread(image).repeat(4, 0).repeat(4, 1)  # short sides 96 and 80: 4x
        drawn = read_png(Path(picture))
        assert drawn.shape == enlarged.shape
        assert not np.array_equal(drawn, enlarged)
