"""The paper's COCO detection configs: they build with the paper's parameter counts (issue 3's
table, to 0.5%) and carry the authors' recipes (qhfan/RMT detect/configs/RMT/*.py)."""

import copy
import functools
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope

import mmrmt  # noqa: F401  (registers RMT)
from mmrmt.models import ARCH_SETTINGS

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "det"

PAPER_PARAMS = {
    "maskrcnn_rmt_t_coco.py": 32.93e6,
    "maskrcnn_rmt_s_coco.py": 45.57e6,
    "maskrcnn_rmt_b_coco.py": 72.78e6,
    "maskrcnn_rmt_l_coco.py": 114.05e6,
    "maskrcnn_rmt_s_coco_3x_ms.py": 45.57e6,
    "maskrcnn_rmt_b_coco_3x_ms.py": 72.78e6,
    "retinanet_rmt_t_coco.py": 23.02e6,
    "retinanet_rmt_s_coco.py": 35.65e6,
    "retinanet_rmt_b_coco.py": 62.86e6,
    "retinanet_rmt_l_coco.py": 104.42e6,
    "cascade_maskrcnn_rmt_s_coco_3x_ms.py": 83.40e6,
    "cascade_maskrcnn_rmt_b_coco_3x_ms.py": 110.62e6,
}
# The authors' learning rates: 2e-4 for RMT-L, for RMT-B in the 3x recipes, else 4e-4.
AUTHORS_LR = {
    name: 2e-4 if "_l_" in name or ("_b_" in name and "3x" in name) else 4e-4
    for name in PAPER_PARAMS
}


@functools.lru_cache(maxsize=None)
def parse(name: str) -> Config:
    return Config.fromfile(str(CONFIGS / name))


def load(name: str) -> Config:
    """A fresh copy of the parsed config (parsing resolves mmdet's bases: slow)."""
    return copy.deepcopy(parse(name))


def build(cfg: Config):
    init_default_scope(cfg.default_scope)
    from mmdet.registry import MODELS

    return MODELS.build(cfg.model)


def test_every_detection_config_is_in_the_table():
    """The paper's families; DINO and Mask2Former have theirs in test_query_configs.py."""
    found = {
        path.name
        for path in CONFIGS.glob("*_coco*.py")
        if not path.name.startswith(("dino_", "mask2former_"))
    }
    assert found == set(PAPER_PARAMS)


@pytest.mark.parametrize("name", sorted(PAPER_PARAMS))
def test_config_builds_with_the_paper_parameter_count(name):
    model = build(load(name))
    params = sum(param.numel() for param in model.parameters())
    assert abs(params - PAPER_PARAMS[name]) <= 0.005 * PAPER_PARAMS[name], params


@pytest.mark.parametrize("name", sorted(PAPER_PARAMS))
def test_config_is_an_mmdet_config_importing_mmrmt(name):
    cfg = load(name)
    assert cfg.default_scope == "mmdet"
    assert cfg.custom_imports == dict(imports=["mmrmt"], allow_failed_imports=False)
    assert cfg.train_dataloader.dataset.data_root == "data/coco/"
    assert cfg.train_dataloader.batch_size == 2
    assert cfg.auto_scale_lr.base_batch_size == 16


@pytest.mark.parametrize("name", sorted(PAPER_PARAMS))
def test_backbone_loads_the_imagenet_checkpoint_of_its_arch(name):
    backbone = load(name).model.backbone
    expected = f"checkpoints/RMT-{backbone.arch.upper()}.pth"
    assert backbone.init_cfg == dict(type="Pretrained", checkpoint=expected)


@pytest.mark.parametrize("name", sorted(PAPER_PARAMS))
def test_fpn_inputs_are_the_returned_backbone_widths(name):
    cfg = load(name)
    dims = ARCH_SETTINGS[cfg.model.backbone.arch]["embed_dims"]
    returned = [dims[index] for index in cfg.model.backbone.out_indices]
    assert cfg.model.neck.in_channels == returned


@pytest.mark.parametrize("name", sorted(PAPER_PARAMS))
def test_optimizer_is_the_authors_adamw(name):
    optimizer = load(name).optim_wrapper.optimizer
    weight_decay = 1e-4 if name.startswith("retinanet") else 0.05
    assert (optimizer.type, optimizer.lr, optimizer.weight_decay) == (
        "AdamW",
        AUTHORS_LR[name],
        weight_decay,
    )


def weight_decays(name: str) -> dict:
    """Build the model and optimizer of a config: parameter name -> its weight decay."""
    cfg = load(name)
    model = build(cfg)
    optimizer = build_optim_wrapper(model, cfg.optim_wrapper).optimizer
    decay_of = {
        id(p): group["weight_decay"] for group in optimizer.param_groups for p in group["params"]
    }
    return {param_name: decay_of[id(p)] for param_name, p in model.named_parameters()}


def test_mask_rcnn_decays_no_norm_layer_but_the_rest():
    decays = weight_decays("maskrcnn_rmt_t_coco.py")
    # BN of the stem (no 'norm' in its name), the downsampling BN, LayerNorms, output norms
    for name in (
        "backbone.patch_embed.proj.1.weight",
        "backbone.layers.0.downsample.norm.bias",
        "backbone.layers.0.blocks.0.retention_layer_norm.weight",
        "backbone.extra_norms.3.weight",
    ):
        assert decays[name] == 0.0, name
    for name in (
        "backbone.layers.0.blocks.0.retention.q_proj.weight",
        "backbone.patch_embed.proj.0.weight",
        "neck.lateral_convs.0.conv.weight",
        "roi_head.bbox_head.fc_cls.weight",
    ):
        assert decays[name] == 0.05, name


def test_retinanet_decays_every_parameter_as_the_authors():
    assert set(weight_decays("retinanet_rmt_t_coco.py").values()) == {1e-4}


@pytest.mark.parametrize("name", [n for n in sorted(PAPER_PARAMS) if "3x" in n])
def test_3x_recipe_is_36_epochs_of_multiscale_and_crop(name):
    cfg = load(name)
    assert cfg.train_cfg.max_epochs == 36
    steps = [s for s in cfg.param_scheduler if s.type == "MultiStepLR"]
    assert [s.milestones for s in steps] == [[27, 33]]
    choice = next(t for t in cfg.train_dataloader.dataset.pipeline if t.type == "RandomChoice")
    resize_only, crop = choice.transforms
    short_sides = sorted(scale[0] for scale in resize_only[0].scales)
    assert short_sides == list(range(480, 801, 32))
    assert [t.type for t in crop] == ["RandomChoiceResize", "RandomCrop", "RandomChoiceResize"]
    assert (crop[1].crop_type, tuple(crop[1].crop_size)) == ("absolute_range", (384, 600))


@pytest.mark.parametrize("name", [n for n in sorted(PAPER_PARAMS) if "3x" not in n])
def test_1x_recipe_is_12_epochs_with_steps_at_8_and_11(name):
    cfg = load(name)
    steps = [s for s in cfg.param_scheduler if s.type == "MultiStepLR"]
    assert cfg.train_cfg.max_epochs == 12 and [s.milestones for s in steps] == [[8, 11]]


@pytest.mark.parametrize("arch", ["s", "b"])
def test_cascade_box_heads_are_4conv1fc_syncbn_giou(arch):
    heads = load(f"cascade_maskrcnn_rmt_{arch}_coco_3x_ms.py").model.roi_head.bbox_head
    assert len(heads) == 3
    for head in heads:
        assert (head.type, head.num_shared_convs, head.num_shared_fcs) == ("ConvFCBBoxHead", 4, 1)
        assert head.norm_cfg.type == "SyncBN"
        assert head.loss_bbox.type == "GIoULoss" and head.reg_decoded_bbox


def test_backbone_bn_trains_as_in_the_authors_runs():
    """Their norm_eval only froze nn.BatchNorm2d, never their nn.SyncBatchNorm layers."""
    backbone = build(load("maskrcnn_rmt_t_coco.py")).backbone.train()
    bn_layers = [m for m in backbone.modules() if isinstance(m, torch.nn.SyncBatchNorm)]
    assert bn_layers and all(m.training for m in bn_layers)
