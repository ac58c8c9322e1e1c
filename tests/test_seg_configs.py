"""The ADE20K segmentation configs: models as in the paper, the authors' recipes, clear failures."""

import copy
import functools
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

import mmrmt  # noqa: F401  (registers RMT with mmseg, as the configs' custom_imports do)

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs" / "seg"

# Paper table 5 / issue #4, mmseg heads with 150 classes.
EXPECTED_PARAMS = {
    "fpn_rmt_t_ade20k.py": 17.03e6,
    "fpn_rmt_s_ade20k.py": 29.67e6,
    "fpn_rmt_b_ade20k.py": 56.88e6,
    "fpn_rmt_l_ade20k.py": 98.15e6,
    "upernet_rmt_s_ade20k.py": 55.72e6,
    "upernet_rmt_b_ade20k.py": 83.12e6,
    "upernet_rmt_l_ade20k.py": 125.56e6,
}
# The authors' drop-path rates (segmentation/configs/RMT/*.py).
DROP_PATH = {"t": 0.1, "s": 0.15, "b": 0.4, "l": 0.5}
STAGE3_WIDTH = {"t": 256, "s": 256, "b": 320, "l": 448}


@functools.lru_cache(maxsize=None)
def _parse(name: str) -> Config:
    return Config.fromfile(str(CONFIG_DIR / name))


def load(name: str) -> Config:
    """A fresh copy of ``configs/seg/<name>`` (parsing ``mmseg::`` bases is slow: cached)."""
    return copy.deepcopy(_parse(name))


def build_model(cfg: Config) -> torch.nn.Module:
    from mmseg.registry import MODELS

    init_default_scope(cfg.default_scope)
    return MODELS.build(cfg.model)


def test_every_ade20k_config_is_listed():
    """The paper's families; Mask2Former has its table in test_query_configs.py."""
    found = [
        p.name for p in CONFIG_DIR.glob("*_ade20k.py") if not p.name.startswith("mask2former_")
    ]
    assert sorted(found) == sorted(EXPECTED_PARAMS)


@pytest.mark.parametrize("name", sorted(EXPECTED_PARAMS))
def test_config_builds_with_paper_parameter_count(name):
    model = build_model(load(name))
    count = sum(param.numel() for param in model.parameters())
    assert count == pytest.approx(EXPECTED_PARAMS[name], rel=5e-3)


@pytest.mark.parametrize("name", sorted(EXPECTED_PARAMS))
def test_config_uses_ade20k_layout_and_batch_16(name):
    cfg = load(name)
    assert cfg.default_scope == "mmseg"
    assert cfg.custom_imports == dict(imports=["mmrmt"], allow_failed_imports=False)
    for loader in (cfg.train_dataloader, cfg.val_dataloader, cfg.test_dataloader):
        assert loader.dataset.type == "ADE20KDataset"
        assert loader.dataset.data_root == "data/ade/ADEChallengeData2016"
    assert cfg.train_dataloader.batch_size * 8 == cfg.auto_scale_lr.base_batch_size == 16
    assert cfg.model.data_preprocessor.size == (512, 512)
    assert cfg.model.decode_head.num_classes == 150


@pytest.mark.parametrize("name", sorted(EXPECTED_PARAMS))
def test_backbone_follows_authors_and_loads_its_imagenet_checkpoint(name):
    backbone = load(name).model.backbone
    arch = backbone.arch
    assert backbone.type == "RMT"
    assert backbone.drop_path_rate == DROP_PATH[arch]
    assert backbone.init_cfg == dict(
        type="Pretrained", checkpoint=f"checkpoints/RMT-{arch.upper()}.pth"
    )


@pytest.mark.parametrize("name", [n for n in sorted(EXPECTED_PARAMS) if n.startswith("fpn")])
def test_semantic_fpn_recipe(name):
    cfg = load(name)
    assert cfg.optim_wrapper.optimizer == dict(
        type="AdamW", lr=1e-4, betas=(0.9, 0.999), weight_decay=1e-4
    )
    assert cfg.train_cfg.max_iters == 80000
    assert [s.type for s in cfg.param_scheduler] == ["PolyLR"]
    assert cfg.param_scheduler[0].end == 80000


@pytest.mark.parametrize("name", [n for n in sorted(EXPECTED_PARAMS) if n.startswith("upernet")])
def test_upernet_recipe(name):
    cfg = load(name)
    assert cfg.optim_wrapper.optimizer == dict(
        type="AdamW", lr=6e-5, betas=(0.9, 0.999), weight_decay=0.01
    )
    assert cfg.optim_wrapper.paramwise_cfg.norm_decay_mult == 0.0
    warmup, poly = cfg.param_scheduler
    assert (warmup.type, warmup.begin, warmup.end) == ("LinearLR", 0, 1500)
    assert (poly.type, poly.begin, poly.end, poly.power) == ("PolyLR", 1500, 160000, 1.0)
    assert cfg.train_cfg.max_iters == 160000
    assert cfg.model.auxiliary_head.type == "FCNHead"
    assert cfg.model.auxiliary_head.in_channels == STAGE3_WIDTH[cfg.model.backbone.arch]


def test_upernet_optimizer_exempts_every_norm_from_weight_decay():
    from mmengine.optim import build_optim_wrapper

    cfg = load("upernet_rmt_s_ade20k.py")
    model = build_model(cfg)
    optimizer = build_optim_wrapper(model, cfg.optim_wrapper).optimizer
    decay_of = {
        id(p): group["weight_decay"] for group in optimizer.param_groups for p in group["params"]
    }
    norms = (torch.nn.LayerNorm, torch.nn.modules.batchnorm._BatchNorm)
    for module_name, module in model.named_modules():
        for param_name, param in module.named_parameters(recurse=False):
            expected = 0.0 if isinstance(module, norms) else 0.01
            assert decay_of[id(param)] == expected, f"{module_name}.{param_name}"


def test_missing_imagenet_checkpoint_stops_with_the_configs_path(tmp_path, monkeypatch):
    cfg = load("fpn_rmt_t_ade20k.py")
    model = build_model(cfg)
    monkeypatch.chdir(tmp_path)  # the relative checkpoints/ path cannot exist here
    with pytest.raises(FileNotFoundError) as error:
        model.init_weights()
    message = str(error.value)
    assert cfg.model.backbone.init_cfg.checkpoint in message
    assert "--cfg-options model.backbone.init_cfg=None" in message
