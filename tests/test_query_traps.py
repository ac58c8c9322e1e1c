"""The traps of putting a backbone into DINO and Mask2Former, closed: multi-scale deformable
attention in fp32 under autocast, frozen stages under DDP, and odd input sizes."""

import copy
import os
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope

import mmrmt  # noqa: F401
from mmrmt.models.deformable_attention import keep_deformable_attention_fp32
from mmrmt.utils import build_model
from tests.helpers import REPO, TINY_ARCH, build_initialised

TOY_CONFIGS = {
    "dino": "configs/det/dino_4scale_rmt_t_toy.py",
    "mask2former": "configs/det/mask2former_rmt_t_toy.py",
    "mask2former_seg": "configs/seg/mask2former_rmt_t_toy.py",
}


def toy_config(kind: str, tiny_backbone: bool = True) -> Config:
    """A toy config; ``tiny_backbone`` swaps RMT-T for tests' four-block RMT (fast)."""
    cfg = Config.fromfile(str(REPO / TOY_CONFIGS[kind]))
    if tiny_backbone:
        cfg.model.backbone.arch = TINY_ARCH
        widths = TINY_ARCH["embed_dims"]
        head = cfg.model.get("neck") or cfg.model.get("panoptic_head") or cfg.model.decode_head
        head.in_channels = [widths[i] for i in cfg.model.backbone.out_indices]
    return cfg


def training_batch(cfg: Config, model, count: int = 2) -> dict:
    """``count`` toy training samples through the config's pipeline and the preprocessor."""
    init_default_scope(cfg.default_scope)
    registry = __import__(f"{cfg.default_scope}.registry", fromlist=["DATASETS"])
    dataset = registry.DATASETS.build(cfg.train_dataloader.dataset)
    batch = pseudo_collate([dataset[index] for index in range(count)])
    return model.data_preprocessor(batch, True)


@pytest.fixture
def record_sampling_inputs(monkeypatch):
    """Record the dtypes that reach mmcv's sampling op (its CPU path) on each call."""
    from mmcv.ops import multi_scale_deform_attn

    original = multi_scale_deform_attn.multi_scale_deformable_attn_pytorch
    calls = []

    def recording(value, spatial_shapes, sampling_locations, attention_weights):
        calls.append((value.dtype, sampling_locations.dtype, attention_weights.dtype))
        return original(value, spatial_shapes, sampling_locations, attention_weights)

    monkeypatch.setattr(multi_scale_deform_attn, "multi_scale_deformable_attn_pytorch", recording)
    return calls


def losses_under_bf16_autocast(cfg: Config, fp32_attention: bool) -> dict:
    torch.manual_seed(0)
    model = build_initialised(cfg).train()
    if fp32_attention:
        assert keep_deformable_attention_fp32(model) > 0
    batch = training_batch(cfg, model)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        return model.loss(batch["inputs"], batch["data_samples"])


@pytest.mark.parametrize("kind", sorted(TOY_CONFIGS))
def test_deformable_attention_gets_fp32_inputs_under_bf16_autocast(kind, record_sampling_inputs):
    losses = losses_under_bf16_autocast(toy_config(kind), fp32_attention=True)
    assert record_sampling_inputs, "the sampling op never ran"
    assert set(record_sampling_inputs) == {(torch.float32,) * 3}
    total = sum(value for name, value in losses.items() if "loss" in name)
    assert torch.isfinite(total)


def test_dinos_deformable_attention_gets_fp32_inputs_under_bf16_autocast(record_sampling_inputs):
    """DINO predicts under bf16 autocast with fp32 sampling inputs and finite scores."""
    cfg = toy_config("dino")
    torch.manual_seed(0)
    model = build_initialised(cfg).eval()
    assert keep_deformable_attention_fp32(model) > 0
    batch = training_batch(cfg, model)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        results = model.predict(batch["inputs"], batch["data_samples"])
    assert record_sampling_inputs and set(record_sampling_inputs) == {(torch.float32,) * 3}
    assert all(torch.isfinite(r.pred_instances.scores).all() for r in results)


def test_without_the_switch_autocast_feeds_the_sampling_op_bf16(record_sampling_inputs):
    """The control: what the fp32 switch prevents."""
    losses_under_bf16_autocast(toy_config("dino"), fp32_attention=False)
    assert any(torch.bfloat16 in dtypes for dtypes in record_sampling_inputs)


def test_fp32_switch_keeps_the_outputs_and_state_dict_without_autocast():
    cfg = toy_config("dino")
    model = build_initialised(cfg).eval()
    keys = list(model.state_dict())
    batch = training_batch(cfg, model, count=2)
    with torch.no_grad():
        # mmdet 3.3's DINO cannot run mode="tensor" (its head rejects the two-stage outputs):
        # the predictions compare the whole forward instead.
        before = model.predict(batch["inputs"], copy.deepcopy(batch["data_samples"]))
        keep_deformable_attention_fp32(model)
        after = model.predict(batch["inputs"], copy.deepcopy(batch["data_samples"]))
    assert list(model.state_dict()) == keys
    for old, new in zip(before, after):
        for field in ("bboxes", "scores", "labels"):
            torch.testing.assert_close(
                new.pred_instances[field], old.pred_instances[field], rtol=0, atol=0
            )


def test_the_hook_switches_the_runner_model():
    from mmengine.registry import HOOKS

    hook = HOOKS.build(dict(type="DeformableAttentionFP32Hook"))
    model = build_model(toy_config("mask2former"))
    runner = type("Runner", (), {"model": model})()
    hook.before_run(runner)
    classes = {
        type(m).__name__ for m in model.modules() if "DeformableAttention" in type(m).__name__
    }
    assert classes == {"FP32MultiScaleDeformableAttention"}


def test_frozen_stages_hold_from_construction():
    """DDP registers the parameters that require gradients when it wraps the model, before any
    train() call: the frozen stages must already be excluded then (mmdet #8208, #9899)."""
    cfg = toy_config("dino")
    cfg.model.backbone.frozen_stages = 1
    backbone = build_model(cfg).backbone
    frozen = [name for name, p in backbone.named_parameters() if not p.requires_grad]
    assert frozen and all(name.startswith(("patch_embed.", "layers.0.")) for name in frozen)
    assert all(p.requires_grad for p in backbone.layers[1].parameters())


def test_dino_with_frozen_stages_trains_on_two_gloo_processes(tmp_path):
    """Two processes, several iterations: an unused or frozen parameter inside DDP would fail
    the second backward ("Expected to have finished reduction in the prior iteration")."""
    from tests.test_tools import free_port

    work_dir = tmp_path / "work"
    config = tmp_path / "dino_tiny_frozen.py"
    config.write_text(
        f"_base_ = {str(REPO / TOY_CONFIGS['dino'])!r}\n"
        "model = dict(\n"
        f"    backbone=dict(arch=dict(_delete_=True, **{TINY_ARCH!r}), frozen_stages=1),\n"
        "    neck=dict(in_channels=[32, 64, 128]),\n"
        ")\n"
        "train_dataloader = dict(batch_size=2, dataset=dict(indices=12))\n"
        "train_cfg = dict(max_epochs=1)\n"
        "param_scheduler = None\n"
        "val_cfg = val_dataloader = val_evaluator = None\n"
    )
    env = dict(os.environ, PYTHON=sys.executable, PORT=str(free_port()), OMP_NUM_THREADS="1")
    command = [str(REPO / "tools" / "dist_train.sh"), str(config), "2", "--work-dir", str(work_dir)]
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    log = next(work_dir.glob("*/*.log")).read_text()
    assert "Distributed launcher: pytorch" in log and "Epoch(train) [1][3/3]" in log
    assert (work_dir / "epoch_1.pth").is_file()


def halved(size: int, times: int) -> int:
    """``size`` after ``times`` stride-2 3x3 convs with padding 1 (each rounds up)."""
    for _ in range(times):
        size = (size + 1) // 2
    return size


def odd_size_batch(model) -> dict:
    """800x1199 beside 797x1201 in one batch, through the detector's preprocessor: DINO's pads
    both to the batch's largest sides (800x1201), Mask2Former's to multiples of 32 (800x1216)."""
    from mmdet.structures import DetDataSample

    images = [torch.rand(3, 800, 1199) * 255, torch.rand(3, 797, 1201) * 255]
    samples = [
        DetDataSample(
            metainfo=dict(
                img_shape=tuple(image.shape[1:]),
                ori_shape=tuple(image.shape[1:]),
                scale_factor=(1.0, 1.0),
            )
        )
        for image in images
    ]
    return model.data_preprocessor(dict(inputs=images, data_samples=samples), False)


def odd_size_case(kind: str, padded: tuple, halvings: tuple) -> tuple:
    """The toy ``kind`` model, the odd-size batch padded to ``padded``, and the map shapes
    expected after each number of stride-2 convs in ``halvings``.

    Returns:
        tuple: (model in eval mode, preprocessed batch, list of (H, W) per level).
    """
    model = build_initialised(toy_config(kind)).eval()
    batch = odd_size_batch(model)
    height, width = batch["inputs"].shape[-2:]
    assert (height, width) == padded
    return model, batch, [(halved(height, k), halved(width, k)) for k in halvings]


def test_odd_input_sizes_line_up_with_dinos_encoder_levels():
    """Every stride-2 conv of RMT rounds up; the encoder's level shapes must be the neck's map
    shapes (strides 8, 16, 32 and ChannelMapper's stride-64 conv), and prediction must run."""
    model, batch, expected = odd_size_case("dino", (800, 1201), (3, 4, 5, 6))
    with torch.no_grad():
        features = model.extract_feat(batch["inputs"])
        assert [tuple(f.shape[-2:]) for f in features] == expected
        encoder_inputs, _ = model.pre_transformer(features, batch["data_samples"])
        assert [tuple(s) for s in encoder_inputs["spatial_shapes"].tolist()] == expected
        results = model.predict(batch["inputs"], batch["data_samples"])
    assert [r.pred_instances.bboxes.shape[1] for r in results] == [4, 4]


def test_odd_input_sizes_line_up_with_mask2formers_pixel_decoder():
    """The pixel decoder's mask features are the stride-4 map's shape and its three attention
    levels are the stride-32, -16 and -8 maps' shapes; prediction returns full-size masks."""
    model, batch, expected = odd_size_case("mask2former", (800, 1216), (2, 3, 4, 5))
    with torch.no_grad():
        features = model.extract_feat(batch["inputs"])
        assert [tuple(f.shape[-2:]) for f in features] == expected
        mask_features, memories = model.panoptic_head.pixel_decoder(features)
        assert tuple(mask_features.shape[-2:]) == expected[0]
        assert [tuple(m.shape[-2:]) for m in memories] == expected[:0:-1]
        results = model.predict(batch["inputs"], batch["data_samples"])
    shapes = [tuple(r.pred_instances.masks.shape[-2:]) for r in results]
    assert shapes == [(800, 1199), (797, 1201)]
