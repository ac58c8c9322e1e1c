"""The DINO and Mask2Former configs: they build with the parameter counts in the README, carry
the recipes of mmdet's and mmseg's own Swin configs for the same heads, wire the backbone's
outputs to the levels the heads read, and keep norms and embeddings out of weight decay."""

import copy
import functools
import importlib.util
from pathlib import Path

import pytest
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope

import mmrmt  # noqa: F401  (registers RMT and the hooks)
from mmrmt.models import ARCH_SETTINGS
from tests.helpers import REPO, TINY_ARCH

# Derived by building each config here (README, "DINO and Mask2Former"): RMT backbone plus the
# head of mmdet's / mmseg's config with COCO's 80 (133 panoptic) or ADE20K's 150 classes.
QUERY_PARAMS = {
    "det/dino_4scale_rmt_t_coco.py": 32_750_956,
    "det/dino_4scale_rmt_s_coco.py": 45_383_980,
    "det/dino_4scale_rmt_b_coco.py": 72_596_404,
    "det/dino_5scale_rmt_b_coco.py": 72_913_876,
    "det/dino_5scale_rmt_l_coco.py": 114_478_500,
    "det/mask2former_rmt_t_coco.py": 32_561_841,
    "det/mask2former_rmt_s_coco.py": 45_194_865,
    "det/mask2former_rmt_b_coco.py": 72_411_417,
    "det/mask2former_rmt_s_coco_panoptic.py": 45_208_486,
    "det/mask2former_rmt_b_coco_panoptic.py": 72_425_038,
    "seg/mask2former_rmt_t_ade20k.py": 32_579_831,
    "seg/mask2former_rmt_s_ade20k.py": 45_212_855,
    "seg/mask2former_rmt_b_ade20k.py": 72_429_407,
    "seg/mask2former_rmt_l_ade20k.py": 113_699_119,
}
# The config of mmdet / mmseg whose recipe each family follows (mmdet has no Swin-T DINO: its
# Swin DINO configs keep the r50 recipe and change only what 5 levels need).
REFERENCES = {
    "dino_4scale_coco": "mmdet:dino/dino-4scale_r50_8xb2-12e_coco.py",
    "dino_5scale_coco": "mmdet:dino/dino-5scale_swin-l_8xb2-12e_coco.py",
    "mask2former_coco_panoptic": (
        "mmdet:mask2former/mask2former_swin-t-p4-w7-224_8xb2-lsj-50e_coco-panoptic.py"
    ),
    "mask2former_coco": "mmdet:mask2former/mask2former_swin-t-p4-w7-224_8xb2-lsj-50e_coco.py",
    "mask2former_ade20k": "mmseg:mask2former/mask2former_swin-t_8xb2-160k_ade20k-512x512.py",
}


def family(name: str) -> str:
    """``det/mask2former_rmt_s_coco_panoptic.py`` -> ``mask2former_coco_panoptic``."""
    stem = Path(name).stem
    model, rest = stem.split("_rmt_")
    return f"{model}_{rest.split('_', 1)[1]}"


@functools.lru_cache(maxsize=None)
def _parse(path: str) -> Config:
    return Config.fromfile(path)


def load(name: str) -> Config:
    """A fresh copy of ``configs/<name>`` (parsing mmdet's bases is slow: cached)."""
    return copy.deepcopy(_parse(str(REPO / "configs" / name)))


def reference(name: str) -> Config:
    """The mmdet / mmseg config of ``name``'s family, from the installed package's configs."""
    package, path = REFERENCES[family(name)].split(":")
    root = Path(importlib.util.find_spec(package).origin).parent / ".mim" / "configs"
    return copy.deepcopy(_parse(str(root / path)))


def build(cfg: Config):
    init_default_scope(cfg.default_scope)
    registry = "mmdet" if cfg.default_scope == "mmdet" else "mmseg"
    models = importlib.import_module(f"{registry}.registry").MODELS
    return models.build(cfg.model)


def unscoped(value):
    """``value`` without the ``_scope_`` keys mmengine adds to what an ``mmdet::`` base defines."""
    if hasattr(value, "to_dict"):
        value = value.to_dict()
    if isinstance(value, dict):
        return {key: unscoped(item) for key, item in value.items() if key != "_scope_"}
    if isinstance(value, (list, tuple)):
        return type(value)(unscoped(item) for item in value)
    return value


def returned_widths(cfg: Config) -> list:
    dims = ARCH_SETTINGS[cfg.model.backbone.arch]["embed_dims"]
    return [dims[index] for index in cfg.model.backbone.out_indices]


def test_every_query_based_config_is_in_the_table():
    found = {
        f"{folder}/{path.name}"
        for folder in ("det", "seg")
        for pattern in ("dino_*_coco*.py", "mask2former_*_coco*.py", "mask2former_*_ade20k.py")
        for path in (REPO / "configs" / folder).glob(pattern)
    }
    assert found == set(QUERY_PARAMS)


@pytest.mark.parametrize("name", sorted(QUERY_PARAMS))
def test_config_builds_with_the_readme_parameter_count(name):
    model = build(load(name))
    params = sum(param.numel() for param in model.parameters())
    assert params == pytest.approx(QUERY_PARAMS[name], rel=1e-3), params


@pytest.mark.parametrize("name", sorted(QUERY_PARAMS))
def test_config_imports_mmrmt_and_writes_atomically(name):
    cfg = load(name)
    assert cfg.custom_imports == dict(imports=["mmrmt"], allow_failed_imports=False)
    assert cfg.default_hooks.checkpoint.type == "AtomicCheckpointHook"
    assert cfg.default_hooks.logger.type == "AtomicLoggerHook"
    # Iteration-based schedules log validation metrics at their iteration, not all at epoch 0.
    iteration_based = cfg.train_cfg.type == "IterBasedTrainLoop"
    assert cfg.default_hooks.logger.get("log_metric_by_epoch", True) == (not iteration_based)
    assert dict(type="DeformableAttentionFP32Hook") in cfg.custom_hooks


@pytest.mark.parametrize("name", sorted(QUERY_PARAMS))
def test_backbone_is_rmt_with_its_imagenet_checkpoint(name):
    backbone = load(name).model.backbone
    assert backbone.type == "RMT"
    assert backbone.init_cfg == dict(
        type="Pretrained", checkpoint=f"checkpoints/RMT-{backbone.arch.upper()}.pth"
    )


@pytest.mark.parametrize("name", sorted(QUERY_PARAMS))
def test_recipe_is_the_one_of_the_reference_config(name):
    """Schedule, optimizer, data pipeline and batch: those of mmdet's / mmseg's config."""
    cfg, ref = load(name), reference(name)
    for key in (
        "optim_wrapper.optimizer",
        "optim_wrapper.clip_grad",
        "param_scheduler",
        "train_cfg",
        "train_dataloader.batch_size",
        "train_dataloader.dataset",
        "val_evaluator",
        "auto_scale_lr.base_batch_size",
    ):
        assert setting(cfg, key) == setting(ref, key), key
    assert setting(cfg, "val_dataloader.dataset") == setting(ref, "val_dataloader.dataset")
    assert cfg.auto_scale_lr.base_batch_size == 16
    if family(name) == "mask2former_coco":
        assert "seg" not in cfg.train_dataloader.dataset.data_prefix
        assert "seg" not in cfg.test_dataloader.dataset.data_prefix


def setting(cfg: Config, key: str):
    """``cfg``'s value at the dotted ``key``, as plain Python without ``_scope_`` keys.

    Datasets leave out the ``seg`` prefix of mmdet's Mask2Former instance config: it is its
    panoptic base's, the instance pipeline never reads it, and ours drops it (tools/train.py
    checks every data folder a config names).
    """
    value = cfg
    for part in key.split("."):
        value = value[part]
    value = unscoped(value)
    if key.endswith("dataset") and "instances" in value.get("ann_file", ""):
        value["data_prefix"].pop("seg", None)
    return value


def head_config(cfg: Config) -> dict:
    """The model config without the backbone and the backbone widths the neck/head read."""
    model = copy.deepcopy(cfg.model.to_dict())
    model.pop("backbone")
    model.pop("init_cfg", None)
    for part in ("neck", "panoptic_head", "decode_head"):
        if part in model:
            model[part].pop("in_channels")
    return model


@pytest.mark.parametrize("name", sorted(QUERY_PARAMS))
def test_head_is_the_one_of_the_reference_config(name):
    assert unscoped(head_config(load(name))) == unscoped(head_config(reference(name)))


@pytest.mark.parametrize("name", [n for n in sorted(QUERY_PARAMS) if "dino" in n])
def test_dino_levels_agree_from_backbone_to_decoder(name):
    """IDEA-Research/DINO#157: neck inputs, its outputs and every num_levels must agree."""
    model = load(name).model
    levels = model.num_feature_levels if "num_feature_levels" in model else 4
    assert model.neck.in_channels == returned_widths(load(name))
    assert model.neck.num_outs == levels == len(model.neck.in_channels) + 1
    assert model.encoder.layer_cfg.self_attn_cfg.num_levels == levels
    assert model.decoder.layer_cfg.cross_attn_cfg.num_levels == levels
    assert levels == (5 if "5scale" in name else 4)


@pytest.mark.parametrize("name", [n for n in sorted(QUERY_PARAMS) if "mask2former" in n])
def test_mask2former_pixel_decoder_reads_every_stage(name):
    cfg = load(name)
    head = cfg.model.get("panoptic_head") or cfg.model.decode_head
    assert cfg.model.backbone.out_indices == (0, 1, 2, 3)
    assert head.in_channels == returned_widths(cfg)


@pytest.mark.parametrize(
    "name",
    [
        "det/dino_4scale_rmt_t_coco.py",
        "det/mask2former_rmt_t_coco.py",
        "seg/mask2former_rmt_t_ade20k.py",
    ],
)
def test_backbone_learns_at_a_tenth_and_norms_and_embeddings_are_not_decayed(name):
    from torch.nn import GroupNorm, LayerNorm
    from torch.nn.modules.batchnorm import _BatchNorm

    cfg = load(name)
    model = build(cfg)
    optimizer = build_optim_wrapper(model, cfg.optim_wrapper).optimizer
    group_of = {
        id(p): (group["lr"], group["weight_decay"])
        for group in optimizer.param_groups
        for p in group["params"]
    }
    norms = {
        f"{module_name}.{param_name}"
        for module_name, module in model.named_modules()
        if isinstance(module, (_BatchNorm, LayerNorm, GroupNorm))
        for param_name, _ in module.named_parameters(recurse=False)
    }
    embeddings = ("query_embed", "query_feat", "level_embed", "query_embedding")
    base_lr = cfg.optim_wrapper.optimizer.lr
    base_decay = cfg.optim_wrapper.optimizer.weight_decay
    for param_name, param in model.named_parameters():
        lr, decay = group_of[id(param)]
        in_backbone = param_name.startswith("backbone.")
        assert lr == pytest.approx(base_lr * (0.1 if in_backbone else 1.0)), param_name
        exempt = param_name in norms or any(key in param_name for key in embeddings)
        assert decay == (0.0 if exempt else base_decay), param_name


@pytest.mark.parametrize(
    "name, head",
    [
        ("det/dino_4scale_rmt_t_toy.py", "encoder"),
        ("det/mask2former_rmt_t_toy.py", "panoptic_head"),
        ("seg/mask2former_rmt_t_toy.py", "decode_head"),
    ],
)
def test_flop_counter_runs_the_query_based_heads(name, head):
    """tools/get_flops.py's count: the heads run (mmseg's Mask2Former head reads the data
    samples), and the deformable attention's sampling is counted as mmengine's counter does."""
    from mmrmt.analysis.flops import build_counting_model, count

    cfg = load(name)
    cfg.model.backbone.arch = TINY_ARCH
    widths = [TINY_ARCH["embed_dims"][i] for i in cfg.model.backbone.out_indices]
    (
        cfg.model.get("neck") or cfg.model.get("panoptic_head") or cfg.model.decode_head
    ).in_channels = widths
    analyzer, _ = count(build_counting_model(cfg), cfg.default_scope, 96, 128)
    assert analyzer.by_module()[head] > 0
    assert analyzer.by_operator()["grid_sampler"] > 0
