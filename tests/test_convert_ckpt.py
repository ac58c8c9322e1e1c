"""Converting the authors' checkpoints: whole mmdet 2.x detectors and ImageNet backbones.

The neck and head keys of the synthetic mmdet 2.x checkpoints below are written out from
mmdet 2.x's module definitions (FPN, RPNHead, Shared2FCBBoxHead, ConvFCBBoxHead, FCNMaskHead,
RetinaHead), independently of mmdet 3.x, so the tests fail if mmdet 3.x names a weight otherwise.
"""

from typing import Dict, Tuple

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import load_checkpoint

import mmrmt  # noqa: F401  (registers RMT, allow-lists checkpoint types)
from mmrmt.checkpoint import CheckpointError, convert_detection_checkpoint, identify_arch
from mmrmt.models import RMT
from tests.helpers import REPO, load_tool

CONFIGS = REPO / "configs" / "det"
CHANNELS = 256
CLASSES = 80
Shapes = Dict[str, Tuple[int, ...]]


# -- mmdet 2.x layouts --------------------------------------------------------------------------
def conv(prefix: str, out_channels: int, in_channels: int, kernel: int, bias=True) -> Shapes:
    shapes = {f"{prefix}.weight": (out_channels, in_channels, kernel, kernel)}
    if bias:
        shapes[f"{prefix}.bias"] = (out_channels,)
    return shapes


def linear(prefix: str, out_features: int, in_features: int) -> Shapes:
    return {f"{prefix}.weight": (out_features, in_features), f"{prefix}.bias": (out_features,)}


def batch_norm(prefix: str, channels: int) -> Shapes:
    shapes = {f"{prefix}.{name}": (channels,) for name in ("weight", "bias")}
    shapes.update({f"{prefix}.{name}": (channels,) for name in ("running_mean", "running_var")})
    shapes[f"{prefix}.num_batches_tracked"] = ()
    return shapes


def mmdet2_fpn(in_channels, start_level=0, extra_on_input=False) -> Shapes:
    """mmdet 2.x FPN: ConvModules ``lateral_convs.i.conv`` / ``fpn_convs.i.conv``."""
    shapes: Shapes = {}
    used = in_channels[start_level:]
    for index, channels in enumerate(used):
        shapes.update(conv(f"neck.lateral_convs.{index}.conv", CHANNELS, channels, 1))
        shapes.update(conv(f"neck.fpn_convs.{index}.conv", CHANNELS, CHANNELS, 3))
    if extra_on_input:  # RetinaNet: P6 from the last backbone level, P7 from P6
        shapes.update(conv(f"neck.fpn_convs.{len(used)}.conv", CHANNELS, in_channels[-1], 3))
        shapes.update(conv(f"neck.fpn_convs.{len(used) + 1}.conv", CHANNELS, CHANNELS, 3))
    return shapes


def mmdet2_rpn_head() -> Shapes:
    shapes = conv("rpn_head.rpn_conv", CHANNELS, CHANNELS, 3)
    shapes.update(conv("rpn_head.rpn_cls", 3, CHANNELS, 1))  # 3 anchors, sigmoid
    shapes.update(conv("rpn_head.rpn_reg", 12, CHANNELS, 1))
    return shapes


def mmdet2_box_predictors(prefix: str) -> Shapes:
    shapes = linear(f"{prefix}.fc_cls", CLASSES + 1, 1024)
    shapes.update(linear(f"{prefix}.fc_reg", 4 * CLASSES, 1024))
    return shapes


def mmdet2_shared2fc_head(prefix: str) -> Shapes:
    shapes = linear(f"{prefix}.shared_fcs.0", 1024, CHANNELS * 7 * 7)
    shapes.update(linear(f"{prefix}.shared_fcs.1", 1024, 1024))
    shapes.update(mmdet2_box_predictors(prefix))
    return shapes


def mmdet2_4conv1fc_head(prefix: str) -> Shapes:
    """ConvFCBBoxHead with BN: its ConvModules have no conv bias."""
    shapes: Shapes = {}
    for index in range(4):
        shapes.update(conv(f"{prefix}.shared_convs.{index}.conv", CHANNELS, CHANNELS, 3, False))
        shapes.update(batch_norm(f"{prefix}.shared_convs.{index}.bn", CHANNELS))
    shapes.update(linear(f"{prefix}.shared_fcs.0", 1024, CHANNELS * 7 * 7))
    shapes.update(mmdet2_box_predictors(prefix))
    return shapes


def mmdet2_mask_head(prefix: str) -> Shapes:
    shapes: Shapes = {}
    for index in range(4):
        shapes.update(conv(f"{prefix}.convs.{index}.conv", CHANNELS, CHANNELS, 3))
    shapes.update(conv(f"{prefix}.upsample", CHANNELS, CHANNELS, 2))  # ConvTranspose2d (in, out)
    shapes.update(conv(f"{prefix}.conv_logits", CLASSES, CHANNELS, 1))
    return shapes


def mmdet2_retina_head() -> Shapes:
    shapes: Shapes = {}
    for index in range(4):
        shapes.update(conv(f"bbox_head.cls_convs.{index}.conv", CHANNELS, CHANNELS, 3))
        shapes.update(conv(f"bbox_head.reg_convs.{index}.conv", CHANNELS, CHANNELS, 3))
    shapes.update(conv("bbox_head.retina_cls", 9 * CLASSES, CHANNELS, 3))
    shapes.update(conv("bbox_head.retina_reg", 9 * 4, CHANNELS, 3))
    return shapes


def random_like(value: torch.Tensor) -> torch.Tensor:
    """Random values of ``value``'s shape and dtype (BN's counters are integers)."""
    if value.is_floating_point():
        return torch.randn(value.shape)
    return torch.randint(0, 9, value.shape, dtype=value.dtype)


def authors_backbone(arch: str = "t") -> Dict[str, torch.Tensor]:
    """The authors' backbone keys: ours plus the ``Relpos`` buffers, four output norms."""
    model = RMT(arch=arch)
    state = {f"backbone.{k}": random_like(v) for k, v in model.state_dict().items()}
    for index, stage in enumerate(model.layers):
        state[f"backbone.layers.{index}.Relpos.decay"] = stage.rel_pos.decay.clone()
        state[f"backbone.layers.{index}.Relpos.angle"] = stage.rel_pos.angle.clone()
    return state


def authors_checkpoint(head_shapes: Shapes, arch: str = "t") -> dict:
    """An mmdet 2.x checkpoint of the authors' layout with random weights."""
    state = authors_backbone(arch)
    for name, shape in head_shapes.items():
        counter = name.endswith("num_batches_tracked")
        state[name] = torch.randint(0, 9, shape) if counter else torch.randn(shape)
    meta = {"CLASSES": tuple(f"class{i}" for i in range(CLASSES)), "epoch": 12}
    return {"meta": meta, "state_dict": state, "optimizer": {"state": {}, "param_groups": []}}


def build_detector(config: str, **backbone):
    cfg = Config.fromfile(str(CONFIGS / config))
    cfg.model.backbone.update(init_cfg=None, **backbone)
    init_default_scope("mmdet")
    from mmdet.registry import MODELS

    return MODELS.build(cfg.model)


T_CHANNELS = [64, 128, 256, 512]
DETECTORS = {
    "maskrcnn": (
        "maskrcnn_rmt_t_coco.py",
        {
            **mmdet2_fpn(T_CHANNELS),
            **mmdet2_rpn_head(),
            **mmdet2_shared2fc_head("roi_head.bbox_head"),
            **mmdet2_mask_head("roi_head.mask_head"),
        },
        set(),
    ),
    "cascade": (
        "cascade_maskrcnn_rmt_s_coco_3x_ms.py",
        {
            **mmdet2_fpn(T_CHANNELS),
            **mmdet2_rpn_head(),
            **{
                name: shape
                for stage in range(3)
                for name, shape in {
                    **mmdet2_4conv1fc_head(f"roi_head.bbox_head.{stage}"),
                    **mmdet2_mask_head(f"roi_head.mask_head.{stage}"),
                }.items()
            },
        },
        set(),
    ),
    # The authors' RetinaNet backbone also returns (and normalises) the stride-4 stage, which
    # its FPN skips; ours does not build that norm.
    "retinanet": (
        "retinanet_rmt_t_coco.py",
        {**mmdet2_fpn(T_CHANNELS, start_level=1, extra_on_input=True), **mmdet2_retina_head()},
        {"backbone.extra_norms.0.weight", "backbone.extra_norms.0.bias"},
    ),
}


@pytest.mark.parametrize("detector", sorted(DETECTORS))
def test_authors_detector_checkpoint_fills_every_mmdet3_weight(detector):
    config, head_shapes, expected_unused = DETECTORS[detector]
    checkpoint = authors_checkpoint(head_shapes)
    converted = convert_detection_checkpoint(checkpoint, "authors.pth")
    model = build_detector(config, arch="t")
    result = model.load_state_dict(converted["state_dict"], strict=False)
    assert result.missing_keys == []
    assert set(result.unexpected_keys) == expected_unused
    source = checkpoint["state_dict"]
    assert [k for k, v in model.state_dict().items() if not torch.equal(v, source[k])] == []
    assert converted["meta"]["rmt_arch"] == "t"


def test_converted_checkpoint_loads_through_mmengine_as_test_py_does(tmp_path):
    config, head_shapes, _ = DETECTORS["maskrcnn"]
    path = tmp_path / "maskrcnn_rmt_t_mmdet3.pth"
    torch.save(convert_detection_checkpoint(authors_checkpoint(head_shapes)), path)
    model = build_detector(config)
    # strict: any missing or unexpected key raises
    loaded = load_checkpoint(model, str(path), map_location="cpu", strict=True)
    assert loaded["meta"]["dataset_meta"]["classes"][:2] == ("class0", "class1")
    assert "optimizer" not in loaded


def test_relpos_buffers_are_dropped_after_the_decay_check():
    converted = convert_detection_checkpoint(authors_checkpoint(mmdet2_rpn_head()))
    assert not [name for name in converted["state_dict"] if "Relpos" in name]


def test_decay_rates_of_another_arch_are_refused():
    checkpoint = authors_checkpoint(mmdet2_rpn_head())
    checkpoint["state_dict"]["backbone.layers.2.Relpos.decay"] *= 2
    with pytest.raises(CheckpointError, match=r"authors.pth.*RMT-T.*stages \[2\]"):
        convert_detection_checkpoint(checkpoint, "authors.pth")


def test_checkpoint_without_backbone_is_not_a_detector():
    with pytest.raises(CheckpointError, match="no 'backbone.' weights"):
        convert_detection_checkpoint({"state_dict": {"neck.w": torch.zeros(1)}}, "neck.pth")


@pytest.mark.parametrize("arch", ["t", "s", "b", "l"])
def test_presets_are_identified_from_shapes(arch):
    state = {k: v for k, v in RMT(arch=arch).state_dict().items()}
    assert identify_arch(state) == arch


def test_other_layouts_are_not_a_preset():
    state = RMT(arch=dict(RMT(arch="t").arch, depths=[1, 1, 1, 1])).state_dict()
    assert identify_arch(state) is None


# -- the command-line tool ----------------------------------------------------------------------
def test_tool_converts_imagenet_checkpoint_for_init_cfg(tmp_path, capsys):
    source = RMT(arch="t").eval()
    state = {k: random_like(v) for k, v in source.state_dict().items()}
    state = {k: v for k, v in state.items() if not k.startswith("extra_norms")}
    for index, stage in enumerate(source.layers):
        state[f"layers.{index}.Relpos.decay"] = stage.rel_pos.decay.clone()
    state["head.weight"] = torch.randn(1000, 512)
    torch.save({"model": state}, tmp_path / "RMT-T-in1k.pth")
    dst = tmp_path / "RMT-T.pth"
    config = str(CONFIGS / "maskrcnn_rmt_t_coco.py")

    code = load_tool("convert_ckpt").main(
        [str(tmp_path / "RMT-T-in1k.pth"), str(dst), "--config", config]
    )

    assert code == 0
    out = capsys.readouterr().out
    assert "backbone with an RMT-T backbone" in out and "extra_norms.0.weight" in out
    converted = torch.load(dst, weights_only=True)
    assert set(converted) == {"state_dict", "meta"}
    assert "head.weight" not in converted["state_dict"]
    target = RMT(arch="t", init_cfg=dict(type="Pretrained", checkpoint=str(dst)))
    target.init_weights()
    loaded = {k: v for k, v in target.state_dict().items() if not k.startswith("extra_norms")}
    assert [k for k, v in loaded.items() if not torch.equal(v, state[k])] == []


def test_tool_reports_weights_missing_for_the_config(tmp_path, capsys):
    checkpoint = authors_checkpoint(mmdet2_fpn(T_CHANNELS))  # no RPN / RoI heads
    torch.save(checkpoint, tmp_path / "partial.pth")
    config = str(CONFIGS / "maskrcnn_rmt_t_coco.py")
    tool = load_tool("convert_ckpt")
    code = tool.main([str(tmp_path / "partial.pth"), str(tmp_path / "out.pth"), "--config", config])
    assert code == 1
    assert "partial.pth lacks" in capsys.readouterr().err
    assert not (tmp_path / "out.pth").exists()
