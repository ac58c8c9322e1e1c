"""The command-line tools: train / test / demo / get_flops on a tiny model and a tiny COCO set,
one-line errors for the mistakes users make, and CPU-only distributed runs."""

import json
import os
import pickle
import socket
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.distributed as torch_dist
from mmengine.config import Config
from mmengine.registry import MODEL_WRAPPERS

from mmrmt.analysis import flops
from mmrmt.engine import setup_launcher
from mmrmt.utils import UserError
from mmrmt.utils.train_options import enable_amp
from tests.helpers import REPO, TINY_ARCH, load_tool

IMAGE_SIZE = (64, 96)  # H, W


def write_tiny_coco(root: Path, num_images: int = 4) -> None:
    """Images with one orange rectangle each on a dark background, polygon masks."""
    (root / "images").mkdir(parents=True)
    height, width = IMAGE_SIZE
    images, annotations = [], []
    for index in range(num_images):
        image = np.full((height, width, 3), 40, np.uint8)
        x, y, w, h = 10 + 6 * index, 12, 30, 24
        image[y : y + h, x : x + w] = (30, 80, 200)
        cv2.imwrite(str(root / "images" / f"{index}.png"), image)
        images.append(dict(id=index, file_name=f"{index}.png", width=width, height=height))
        polygon = [x, y, x + w, y, x + w, y + h, x, y + h]
        annotations.append(
            dict(id=index, image_id=index, category_id=1, bbox=[x, y, w, h], area=w * h,
                 iscrowd=0, segmentation=[polygon])
        )  # fmt: skip
    categories = [dict(id=1, name="box")]
    coco = dict(images=images, annotations=annotations, categories=categories)
    (root / "ann.json").write_text(json.dumps(coco))


def write_tiny_config(path: Path, data_root: Path) -> Path:
    """Mask R-CNN RMT-T's config with a tiny backbone and heads on the tiny set, 1 epoch."""
    text = f"""
_base_ = {str(REPO / "configs/det/maskrcnn_rmt_t_coco.py")!r}
data_root = {str(data_root) + "/"!r}
model = dict(
    backbone=dict(arch=dict(_delete_=True, **{TINY_ARCH!r}), init_cfg=None),
    neck=dict(in_channels=[16, 32, 64, 128], out_channels=32),
    rpn_head=dict(in_channels=32, feat_channels=32),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=32),
        bbox_head=dict(in_channels=32, fc_out_channels=64, num_classes=1),
        mask_roi_extractor=dict(out_channels=32),
        mask_head=dict(in_channels=32, conv_out_channels=32, num_classes=1)),
    train_cfg=dict(rpn_proposal=dict(nms_pre=200, max_per_img=50), rcnn=dict(sampler=dict(num=64))),
    test_cfg=dict(rpn=dict(nms_pre=200, max_per_img=50), rcnn=dict(max_per_img=10)))
pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', scale=(96, 64), keep_ratio=True),
    dict(type='PackDetInputs')]
dataset = dict(data_root=data_root, ann_file='ann.json', data_prefix=dict(img='images/'),
               metainfo=dict(classes=('box',)), pipeline=pipeline, filter_cfg=None)
train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,
                        batch_sampler=None, dataset=dataset)
val_dataloader = dict(batch_size=1, num_workers=0, persistent_workers=False,
                      dataset=dict(dataset, test_mode=True))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'ann.json')
test_evaluator = val_evaluator
train_cfg = dict(max_epochs=1)
"""
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """(config path, data root) of the tiny detection setup."""
    root = tmp_path_factory.mktemp("tiny")
    write_tiny_coco(root / "coco")
    return write_tiny_config(root / "tiny_maskrcnn.py", root / "coco"), root / "coco"


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


# -- one-line errors ----------------------------------------------------------------------------
def test_train_reports_a_missing_config_in_one_line(capsys):
    assert load_tool("train").main(["configs/det/no_such_config.py"]) == 1
    line = one_line_error(capsys)
    assert "config file not found: configs/det/no_such_config.py" in line


def test_train_names_a_missing_annotation_file_and_the_fix(tiny, tmp_path, capsys):
    config, _ = tiny
    options = ["--cfg-options", f"train_dataloader.dataset.data_root={tmp_path}/nowhere/"]
    code = load_tool("train").main([str(config), "--work-dir", str(tmp_path), *options])
    assert code == 1
    line = one_line_error(capsys)
    assert f"annotation file not found: {tmp_path}/nowhere/ann.json" in line
    assert "--cfg-options train_dataloader.dataset.data_root=DIR/" in line


def test_train_names_a_missing_imagenet_checkpoint_and_the_fix(tiny, tmp_path, capsys):
    missing = tmp_path / "checkpoints" / "RMT-T.pth"
    config = tmp_path / "pretrained.py"
    config.write_text(
        f"_base_ = {str(tiny[0])!r}\n"
        "model = dict(backbone=dict(init_cfg=dict(\n"
        f"    _delete_=True, type='Pretrained', checkpoint={str(missing)!r})))\n"
    )
    code = load_tool("train").main([str(config), "--work-dir", str(tmp_path)])
    assert code == 1
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert str(missing) in line and "--cfg-options model.backbone.init_cfg=None" in line


def test_train_reports_a_bad_cfg_option_in_one_line(tiny, capsys):
    option = "model.backbone.init_cfg.type=Pretrained"  # init_cfg is None in the tiny config
    assert load_tool("train").main([str(tiny[0]), "--cfg-options", option]) == 1
    assert "--cfg-options" in one_line_error(capsys)


def test_test_names_a_missing_checkpoint(tiny, tmp_path, capsys):
    config, _ = tiny
    code = load_tool("test").main([str(config), str(tmp_path / "epoch_12.pth")])
    assert code == 1
    assert f"checkpoint not found: {tmp_path}/epoch_12.pth" in one_line_error(capsys)


def test_debug_flag_shows_the_traceback():
    with pytest.raises(FileNotFoundError, match="config file not found"):
        load_tool("train").main(["no_such_config.py", "--debug"])


def test_debug_environment_variable_shows_the_traceback(monkeypatch):
    monkeypatch.setenv("MMRMT_DEBUG", "1")
    with pytest.raises(FileNotFoundError, match="config file not found"):
        load_tool("test").main(["no_such_config.py", "some.pth"])


def test_command_line_exits_nonzero_without_a_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, str(REPO / "tools" / "train.py"), str(tmp_path / "missing.py")],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert f"train.py: error: config file not found: {tmp_path}/missing.py" in result.stderr


def test_amp_without_a_gpu_is_a_user_error(tiny, monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert load_tool("train").main([str(tiny[0]), "--amp"]) == 1
    assert "--amp needs a GPU" in one_line_error(capsys)


def test_amp_switches_to_the_amp_optimizer_wrapper(tiny, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    cfg = Config.fromfile(str(tiny[0]))
    enable_amp(cfg)
    assert (cfg.optim_wrapper.type, cfg.optim_wrapper.loss_scale) == ("AmpOptimWrapper", "dynamic")
    assert cfg.optim_wrapper.optimizer.type == "AdamW"
    # mmcv's RoIAlign has an fp16 kernel: mmdet's own extractor stays.
    assert cfg.model.roi_head.mask_roi_extractor.type == "SingleRoIExtractor"


def test_amp_dtype_bf16_sets_the_wrapper_dtype_without_loss_scaling(tiny, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)
    cfg = Config.fromfile(str(tiny[0]))
    enable_amp(cfg, "bf16")
    wrapper = cfg.optim_wrapper
    assert (wrapper.type, wrapper.dtype, wrapper.loss_scale) == ("AmpOptimWrapper", "bfloat16", 1.0)
    # ...but no bf16 one: the RoIs are pooled in fp32.
    assert cfg.model.roi_head.bbox_roi_extractor.type == "Fp32SingleRoIExtractor"
    assert cfg.model.roi_head.mask_roi_extractor.type == "Fp32SingleRoIExtractor"


def test_amp_bf16_on_a_gpu_without_bf16_is_a_user_error(tiny, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: False)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *args: "Tesla V100")
    with pytest.raises(UserError, match="Tesla V100"):
        enable_amp(Config.fromfile(str(tiny[0])), "bf16")


def test_amp_dtype_without_amp_is_a_usage_error(tiny, capsys):
    with pytest.raises(SystemExit):
        load_tool("train").parse_args([str(tiny[0]), "--amp-dtype", "bf16"])
    assert "--amp-dtype needs --amp" in capsys.readouterr().err


# -- the tools at work --------------------------------------------------------------------------
def test_train_then_test_evaluates_and_dumps_predictions(tiny, tmp_path):
    config, _ = tiny
    work_dir = tmp_path / "work"
    # test.py evaluates below; no validation during training
    no_validation = ["--cfg-options", "val_cfg=None", "val_dataloader=None", "val_evaluator=None"]
    assert load_tool("train").main([str(config), "--work-dir", str(work_dir), *no_validation]) == 0
    checkpoint = work_dir / "epoch_1.pth"
    assert checkpoint.is_file()

    out = tmp_path / "predictions.pkl"
    args = [str(config), str(checkpoint), "--work-dir", str(work_dir), "--out", str(out)]
    assert load_tool("test").main(args) == 0
    with open(out, "rb") as handle:
        predictions = pickle.load(handle)
    assert len(predictions) == 4
    assert {"bboxes", "scores", "labels", "masks"} <= set(predictions[0]["pred_instances"])
    metrics = sorted(work_dir.glob("*/*.json"))[-1].read_text()
    assert "coco/bbox_mAP" in metrics and "coco/segm_mAP" in metrics


def test_demo_draws_predictions_on_an_image(tiny, tmp_path, capsys):
    config, data_root = tiny
    image = data_root / "images" / "0.png"
    code = load_tool("draw_predictions").main([str(image), str(config), "--out-dir", str(tmp_path)])
    assert code == 0
    picture = tmp_path / "vis" / "0.png"
    assert f"wrote {picture}" in capsys.readouterr().out
    drawn = cv2.imread(str(picture))
    assert drawn.shape == (*IMAGE_SIZE, 3)


def test_get_flops_counts_every_attention_matrix_product(tiny):
    model = flops.build_counting_model(Config.fromfile(str(tiny[0])))
    analyzer, _ = flops.count(model, "mmdet", *IMAGE_SIZE)
    expected = 0
    height, width = IMAGE_SIZE
    for stage, channels in enumerate(TINY_ARCH["embed_dims"]):
        h, w = height // 4 // 2**stage, width // 4 // 2**stage
        if TINY_ARCH["decomposed"][stage]:  # Q K^T and weights @ V along rows, then columns
            expected += 2 * h * w * channels * (h + w)
        else:  # over all token pairs
            expected += 2 * (h * w) ** 2 * channels
    assert flops.attention_flops(analyzer) == expected
    assert analyzer.by_operator("backbone")["linear"] > 0


def test_paper_convention_drops_attention_products_and_caps_mask_rois(tiny):
    model = flops.build_counting_model(Config.fromfile(str(tiny[0])))
    analyzer, roi_counts = flops.count(model, "mmdet", *IMAGE_SIZE)
    without_attention = analyzer.total() - flops.attention_flops(analyzer)
    mask_head = analyzer.by_module()["roi_head.mask_head"]
    assert 0 < roi_counts["mask"] <= flops.PAPER_MASK_ROIS and mask_head > 0
    assert flops.paper_convention_flops(analyzer, roi_counts) == without_attention
    # Mask heads that ran on 4x the paper's RoIs count for a quarter.
    four_times = {"mask": 4 * flops.PAPER_MASK_ROIS}
    expected = without_attention - mask_head * 3 // 4
    assert flops.paper_convention_flops(analyzer, four_times) == expected


# -- CPU-only distributed runs ------------------------------------------------------------------
@pytest.fixture
def single_process_group(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", str(free_port()))
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "1")
    yield
    if torch_dist.is_initialized():
        torch_dist.destroy_process_group()


def test_cpu_distributed_run_uses_gloo_and_a_cpu_model_wrapper(single_process_group):
    cfg = Config(dict(env_cfg=dict(dist_cfg=dict(backend="nccl"))))
    setup_launcher(cfg, "pytorch")
    assert cfg.env_cfg.dist_cfg.backend == "gloo"
    assert torch_dist.get_backend() == "gloo"
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.SyncBatchNorm(4))
    # The Runner passes the rank's device id, which DDP refuses for CPU modules.
    wrapped = MODEL_WRAPPERS.build(
        cfg.model_wrapper_cfg, default_args=dict(module=model, device_ids=[0])
    )
    assert not any(isinstance(m, torch.nn.SyncBatchNorm) for m in wrapped.modules())
    assert wrapped(torch.randn(2, 3, 8, 8)).shape == (2, 4, 6, 6)


def test_cpu_distributed_run_needs_the_pytorch_launcher(single_process_group):
    with pytest.raises(ValueError, match="--launcher slurm needs CUDA"):
        setup_launcher(Config(), "slurm")


def free_port() -> int:
    """A TCP port nothing listens on now, for a run's rendezvous (a fixed one may be taken)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_dist_scripts_train_and_test_on_two_cpu_processes(tiny, tmp_path):
    config, _ = tiny
    work_dir = tmp_path / "work"
    env = dict(os.environ, PYTHON=sys.executable, PORT=str(free_port()), OMP_NUM_THREADS="1")
    no_validation = ["--cfg-options", "val_cfg=None", "val_dataloader=None", "val_evaluator=None"]
    train = [str(REPO / "tools" / "dist_train.sh"), str(config), "2", "--work-dir", str(work_dir)]
    result = subprocess.run([*train, *no_validation], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    log = next(work_dir.glob("*/*.log")).read_text()
    assert "Distributed launcher: pytorch" in log and "GPU number: 2" in log
    checkpoint = work_dir / "epoch_1.pth"
    assert checkpoint.is_file()

    test = [str(REPO / "tools" / "dist_test.sh"), str(config), str(checkpoint), "2"]
    result = subprocess.run(
        [*test, "--work-dir", str(work_dir / "test")], env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-3000:]
    # Both ranks log the metrics; rank 0 alone writes them, in one rename (AtomicLoggerHook).
    [metrics_file] = (work_dir / "test").glob("*/*.json")
    metrics = json.loads(metrics_file.read_text())
    assert "coco/bbox_mAP" in metrics
    assert not list((work_dir / "test").glob("*/.*.partial"))
