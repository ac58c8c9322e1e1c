"""RMT is registered once, in mmengine's root MODELS, and builds in every downstream scope."""

import importlib

import pytest
from mmengine.registry import MODELS as ROOT_MODELS
from mmengine.registry import DefaultScope

import mmrmt  # noqa: F401  (registers RMT)
from mmrmt.models import RMT


def test_rmt_is_registered_once_in_the_root_registry():
    assert ROOT_MODELS.module_dict["RMT"] is RMT
    for scope in ("mmdet", "mmseg"):
        assert "RMT" not in importlib.import_module(f"{scope}.registry").MODELS.module_dict


@pytest.mark.parametrize("scope", ["mmdet", "mmseg"])
def test_backbone_builds_in_each_scope(scope):
    registry = importlib.import_module(f"{scope}.registry").MODELS
    with DefaultScope.overwrite_default_scope(scope):
        model = registry.build(dict(type="RMT", arch="s", out_indices=(0, 1, 2, 3)))
    assert type(model) is RMT
    assert model.arch["depths"] == [3, 4, 18, 4]


def test_scoped_name_from_a_downstream_registry_finds_rmt():
    from mmdet.registry import MODELS

    assert MODELS.get("mmengine.RMT") is RMT


def test_custom_imports_in_a_config_registers_rmt(tmp_path):
    from mmengine.config import Config

    config = tmp_path / "cfg.py"
    config.write_text(
        "custom_imports = dict(imports=['mmrmt'], allow_failed_imports=False)\n"
        "model = dict(type='RMT', arch='t')\n"
    )
    cfg = Config.fromfile(str(config))
    from mmdet.registry import MODELS

    assert MODELS.build(cfg.model).arch["embed_dims"] == [64, 128, 256, 512]
