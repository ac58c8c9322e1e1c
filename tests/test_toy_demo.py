"""The toy demo (mmrmt.toy_demo, tools/toy_demo.py) and the prediction pictures
(mmrmt.visualization): learning-curve plot, pictures, run bookkeeping (full training is left to
``make demo``)."""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from mmengine.config import Config

from mmrmt.toy_data.coco import ToyCocoSpec, make_toy_coco
from mmrmt.toy_demo import (
    METRIC_KEYS,
    final_checkpoint,
    plot_curves,
    read_scalars,
    run_script,
    summary_lines,
    train,
    val_images,
)
from mmrmt.toy_demo import pipeline as demo_pipeline
from mmrmt.utils import config_scope, parse_cfg_options
from mmrmt.visualization import draw_predictions, enlargement, list_images
from tests.helpers import REPO, load_tool

DET_CONFIG = REPO / "configs" / "det" / "maskrcnn_rmt_t_toy.py"
SEG_CONFIG = REPO / "configs" / "seg" / "fpn_rmt_t_toy.py"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


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
    train_records, val_records = read_scalars(str(tmp_path))
    assert [(r["step"], r["loss"]) for r in train_records] == [(10, 3.0), (20, 1.5), (30, 1.0)]
    assert [(r["step"], r["coco/bbox_mAP"]) for r in val_records] == [(1, 0.1), (2, 0.3)]


def test_plot_curves_writes_a_png_of_the_figure_size(tmp_path):
    train_records = [{"step": s, "loss": 3.0 / s} for s in range(1, 40)]
    val_records = [
        {"step": e, "coco/bbox_mAP": 0.1 * e, "coco/segm_mAP": 0.08 * e} for e in (1, 2, 3)
    ]
    out = plot_curves(
        train_records, val_records, METRIC_KEYS["mmdet"], str(tmp_path / "plots" / "curves.png")
    )
    image = read_png(Path(out))
    assert image.shape == (400, 1000, 3)  # figsize (10, 4) at 100 dpi
    assert image.std() > 10  # something was drawn


def test_plot_curves_accepts_a_log_without_validation(tmp_path):
    out = plot_curves([{"step": 1, "loss": 1.0}], [], ("mIoU",), str(tmp_path / "c.png"))
    read_png(Path(out))


# -- bookkeeping --------------------------------------------------------------------------------
def test_final_checkpoint_follows_the_training_loop():
    by_epoch = Config(dict(train_cfg=dict(type="EpochBasedTrainLoop", max_epochs=7)))
    by_iter = Config(dict(train_cfg=dict(type="IterBasedTrainLoop", max_iters=400)))
    assert final_checkpoint(by_epoch, "w") == "w/epoch_7.pth"
    assert final_checkpoint(by_iter, "w") == "w/iter_400.pth"


def test_cfg_options_are_read_like_mmengine_tools_read_them():
    options = parse_cfg_options(["train_cfg.max_epochs=2", "model.x=[1,2]", "a=text"])
    assert options == {"train_cfg.max_epochs": 2, "model.x": [1, 2], "a": "text"}
    assert parse_cfg_options([]) == {}


def test_a_config_outside_mmdet_and_mmseg_is_refused():
    with pytest.raises(ValueError, match="default_scope is 'mmpretrain'; expected one of"):
        config_scope(Config(dict(default_scope="mmpretrain")))


def test_toy_demo_reports_a_config_of_another_scope_in_one_line(tmp_path, monkeypatch, capsys):
    # main sets the thread variables for its subprocesses; keep them local to this test.
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("MKL_NUM_THREADS", "1")
    config = tmp_path / "pretrain.py"
    config.write_text("default_scope = 'mmpretrain'\n")
    work_dir = tmp_path / "work"
    assert load_tool("toy_demo").main([str(config), "--work-dir", str(work_dir)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert "default_scope is 'mmpretrain'; expected one of ['mmdet', 'mmseg']" in err[0]
    assert not work_dir.exists()


def test_a_finished_run_is_reused_without_training(tmp_path, monkeypatch):
    cfg = Config(dict(train_cfg=dict(max_epochs=2)))
    (tmp_path / "epoch_2.pth").write_bytes(b"")
    monkeypatch.setattr(demo_pipeline, "run_script", lambda *a: pytest.fail("must not train"))
    assert train("c.py", cfg, str(tmp_path), []) == (str(tmp_path / "epoch_2.pth"), None)


def test_an_interrupted_run_is_resumed(tmp_path, monkeypatch):
    cfg = Config(dict(train_cfg=dict(max_epochs=2)))
    (tmp_path / "last_checkpoint").write_text(str(tmp_path / "epoch_1.pth"))
    calls = []
    monkeypatch.setattr(
        demo_pipeline, "run_script", lambda script, args: calls.append((script, args))
    )
    train("c.py", cfg, str(tmp_path), ["--cfg-options", "a=1"])
    assert calls == [
        ("train.py", ["c.py", "--work-dir", str(tmp_path), "--resume", "--cfg-options", "a=1"])
    ]


def test_a_failing_tool_is_reported_as_a_user_error(tmp_path, monkeypatch):
    (tmp_path / "fail.py").write_text("import sys\nsys.exit(3)\n")
    (tmp_path / "tools").mkdir()
    (tmp_path / "fail.py").rename(tmp_path / "tools" / "fail.py")
    monkeypatch.setattr("mmrmt.package_data.MIM_DIR", str(tmp_path))
    with pytest.raises(RuntimeError, match=r"tools/fail.py failed with exit code 3"):
        run_script("fail.py", [])


def test_summary_reports_time_final_figures_and_the_learning_curve():
    summary = dict(
        train_seconds=540.0,
        test_metrics={"coco/bbox_mAP": 0.5671, "coco/segm_mAP": 0.573},
        val_curve=[{"step": 2, "coco/bbox_mAP": 0.1}, {"step": 4, "coco/bbox_mAP": 0.3}],
        pictures=["w/predictions/000001.png"],
        plot="w/curves.png",
    )
    lines = summary_lines(summary, "coco/bbox_mAP", "epoch")
    assert lines == [
        "training 9.0 min; tools/test.py on the final checkpoint: "
        "coco/bbox_mAP 0.567, coco/segm_mAP 0.573",
        "validation coco/bbox_mAP over training: epoch 2: 0.100; epoch 4: 0.300",
        "pictures w/predictions/, plot w/curves.png",
    ]
    summary["train_seconds"] = None
    assert summary_lines(summary, "coco/bbox_mAP", "epoch")[0].startswith(
        "training time unknown (reused run)"
    )


# -- pictures -----------------------------------------------------------------------------------
def test_enlargement_brings_the_short_side_closest_to_the_display_size():
    assert enlargement((96, 96, 3), 384) == 4
    assert enlargement((120, 80, 3), 384) == 4  # 80 * 4 = 320; 5x would exceed 384
    assert enlargement((500, 400, 3), 384) == 1  # never shrunk
    assert enlargement((96, 128), None) == 1


def test_list_images_sorts_a_folder_and_skips_other_files(tmp_path):
    for name in ("b.png", "a.JPG", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    assert list_images(str(tmp_path)) == [str(tmp_path / "a.JPG"), str(tmp_path / "b.png")]
    assert list_images(str(tmp_path / "b.png")) == [str(tmp_path / "b.png")]
    with pytest.raises(FileNotFoundError, match="input not found: .*nowhere"):
        list_images(str(tmp_path / "nowhere"))


def test_draw_predictions_writes_one_picture_per_val_image(tmp_path):
    root = tmp_path / "toy_coco"
    make_toy_coco(str(root), spec=ToyCocoSpec(num_train=1, num_val=2))
    cfg = Config.fromfile(str(DET_CONFIG))
    cfg.val_dataloader.dataset.data_root = f"{root}/"
    images = val_images(cfg, "mmdet", 5)
    assert [Path(p).name for p in images] == ["000001.png", "000002.png"]
    written = draw_predictions(
        cfg, None, images, str(tmp_path / "pred"), score_thr=0.0, display_size=384
    )
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
    written = draw_predictions(cfg, None, images, str(tmp_path / "pred"), display_size=384)
    assert [Path(p).name for p in written] == ["wide.png", "tall.png"]
    for picture, image in zip(written, images):
        enlarged = cv2.imread(image).repeat(4, 0).repeat(4, 1)  # short sides 96 and 80: 4x
        drawn = read_png(Path(picture))
        assert drawn.shape == enlarged.shape
        assert not np.array_equal(drawn, enlarged)


def test_draw_predictions_keeps_the_image_size_without_a_display_size(tmp_path):
    image = str(tmp_path / "wide.png")
    cv2.imwrite(image, np.random.default_rng(0).integers(0, 255, (96, 128, 3), dtype=np.uint8))
    cfg = Config.fromfile(str(SEG_CONFIG))
    [picture] = draw_predictions(cfg, None, [image], str(tmp_path / "pred"))
    assert read_png(Path(picture)).shape == (96, 128, 3)


@pytest.mark.parametrize(
    "config, expected",
    [
        ("det/maskrcnn_rmt_t_toy.py", ("coco/bbox_mAP", "coco/segm_mAP")),
        ("det/dino_4scale_rmt_t_toy.py", ("coco/bbox_mAP",)),
        ("det/mask2former_rmt_t_toy.py", ("coco/segm_mAP", "coco/bbox_mAP")),
        ("seg/fpn_rmt_t_toy.py", ("mIoU",)),
        ("seg/mask2former_rmt_t_toy.py", ("mIoU",)),
    ],
)
def test_demo_reports_the_metrics_the_evaluator_computes_headline_first(config, expected):
    """DINO has no masks; Mask2Former's boxes are its masks' boxes, so its headline is segm."""
    cfg = Config.fromfile(str(REPO / "configs" / config))
    assert demo_pipeline.metric_keys(cfg, config_scope(cfg)) == expected
