"""RMT builds from configs in both the mmdet and mmseg scopes."""

import pytest
from mmengine.registry import DefaultScope, init_default_scope

import mmrmt  # noqa: F401  (registers RMT)


@pytest.mark.parametrize("scope", ["mmdet", "mmseg"])
def test_backbone_builds_in_each_scope(scope):
    init_default_scope(scope)
    registry = __import__(f"{scope}.registry", fromlist=["MODELS"]).MODELS
    model = registry.build(dict(type="RMT", arch="s", out_indices=(0, 1, 2, 3)))
    assert type(model).__name__ == "RMT"
    assert model.arch["depths"] == [3, 4, 18, 4]
    DefaultScope._instance_dict.pop(scope, None)


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
