"""Building a config's model or an RMT preset with a checkpoint's weights or seeded random ones
(:func:`mmrmt.utils.load_model`, :func:`mmrmt.utils.load_rmt`), as every tool outside a Runner
does."""

from typing import Dict, Tuple

import pytest
import torch

from mmrmt.checkpoint import CheckpointError
from mmrmt.errors import InvalidValueError
from mmrmt.models import RMT
from mmrmt.utils import load_model, load_rmt
from mmrmt.visualization.figure_models import rmt_from_config
from tests.helpers import REPO, TINY_ARCH, load_tool

#: A weight of the backbone and one of the heads, compared after loading.
BACKBONE_WEIGHT = "backbone.layers.0.blocks.0.retention.q_proj.weight"
HEAD_WEIGHT = "decode_head.conv_seg.weight"


@pytest.fixture(scope="module")
def tiny_config(tmp_path_factory) -> str:
    """The toy FPN segmentor with a tiny RMT."""
    path = tmp_path_factory.mktemp("configs") / "tiny_fpn.py"
    path.write_text(
        f"_base_ = {str(REPO / 'configs/seg/fpn_rmt_t_toy.py')!r}\n"
        f"model = dict(backbone=dict(arch={dict(_delete_=True, **TINY_ARCH)!r}),\n"
        "             neck=dict(in_channels=[16, 32, 64, 128], out_channels=32),\n"
        "             decode_head=dict(in_channels=[32, 32, 32, 32], channels=16))\n"
    )
    return str(path)


@pytest.fixture(scope="module")
def random_weights(tiny_config) -> Dict[str, torch.Tensor]:
    """The tiny config's seeded random weights."""
    return load_model(tiny_config).state_dict()


@pytest.fixture
def trained_checkpoint(random_weights, tmp_path) -> Tuple[Dict[str, torch.Tensor], str]:
    """Weights unlike the seeded random ones, saved as a tools/train.py checkpoint."""
    weights = {name: value + 1 for name, value in random_weights.items()}
    path = tmp_path / "trained.pth"
    torch.save({"state_dict": weights, "meta": {}}, path)
    return weights, str(path)


def test_without_a_checkpoint_the_same_config_gives_the_same_weights(tiny_config, random_weights):
    weights = load_model(tiny_config).state_dict()
    assert weights.keys() == random_weights.keys()
    for name, value in random_weights.items():
        torch.testing.assert_close(weights[name], value, rtol=0, atol=0)


def test_seeding_the_weights_leaves_the_global_random_state_alone(tiny_config):
    state = torch.random.get_rng_state()
    load_model(tiny_config)
    assert torch.equal(torch.random.get_rng_state(), state)


def test_a_fitting_checkpoint_is_loaded_exactly_in_eval_mode(tiny_config, trained_checkpoint):
    weights, checkpoint = trained_checkpoint
    model = load_model(tiny_config, checkpoint)
    for name in (BACKBONE_WEIGHT, HEAD_WEIGHT):
        torch.testing.assert_close(model.state_dict()[name], weights[name], rtol=0, atol=0)
    assert not model.training


def test_initialise_runs_only_without_a_checkpoint(tiny_config, trained_checkpoint):
    _, checkpoint = trained_checkpoint
    calls = []
    load_model(tiny_config, checkpoint, initialise=calls.append)
    assert calls == []
    model = load_model(tiny_config, initialise=calls.append)
    assert calls == [model]


def test_train_mode_returns_the_model_training(tiny_config):
    assert load_model(tiny_config, mode="train").training
    assert load_model(tiny_config, mode="train", backbone_only=True).training


def test_an_unknown_mode_is_named(tiny_config):
    with pytest.raises(InvalidValueError, match="mode must be one of .*'test'"):
        load_model(tiny_config, mode="test")


def test_a_read_config_loads_as_its_file_does(tiny_config, random_weights):
    from mmengine.config import Config

    weights = load_model(Config.fromfile(tiny_config)).state_dict()
    torch.testing.assert_close(weights[HEAD_WEIGHT], random_weights[HEAD_WEIGHT], rtol=0, atol=0)


def test_a_preset_is_initialised_under_the_seed_and_keeps_its_options():
    first, again = load_rmt(TINY_ARCH, attn_impl="reference"), load_rmt(TINY_ARCH)
    name = "layers.0.blocks.0.retention.q_proj.weight"
    torch.testing.assert_close(again.state_dict()[name], first.state_dict()[name], rtol=0, atol=0)
    assert first.layers[0].attn_impl == "reference" and not first.training
    assert load_rmt(TINY_ARCH, mode="train").training


def test_an_unknown_preset_is_named():
    with pytest.raises(InvalidValueError, match="'xl'"):
        load_rmt("xl")


def test_a_checkpoint_that_does_not_fit_names_the_file_the_config_and_the_counts(
    tiny_config, random_weights, tmp_path
):
    weights = dict(random_weights)
    expected_shape = tuple(weights[HEAD_WEIGHT].shape)
    del weights[BACKBONE_WEIGHT]
    weights[HEAD_WEIGHT] = torch.zeros(2, 16, 1, 1)
    weights["extra.weight"] = torch.zeros(1)
    checkpoint = tmp_path / "other.pth"
    torch.save({"state_dict": weights}, checkpoint)
    with pytest.raises(CheckpointError) as raised:
        load_model(tiny_config, str(checkpoint))
    assert str(raised.value) == (
        f"checkpoint {checkpoint} does not fit {tiny_config}: weights "
        f"1 missing (e.g. {BACKBONE_WEIGHT}), "
        f"1 of another shape (e.g. {HEAD_WEIGHT}: (2, 16, 1, 1) in the file, "
        f"{expected_shape} here), 1 unexpected (e.g. extra.weight)"
    )


def test_vis_initialises_the_backbone_under_the_seed(tiny_config, random_weights):
    model, backbone = rmt_from_config(tiny_config)
    again, _ = rmt_from_config(tiny_config)
    assert backbone is model.backbone and not model.training
    weight = model.state_dict()[BACKBONE_WEIGHT]
    torch.testing.assert_close(again.state_dict()[BACKBONE_WEIGHT], weight, rtol=0, atol=0)
    # init_weights() draws the backbone anew: not the weights __init__ made.
    assert not torch.equal(random_weights[BACKBONE_WEIGHT], weight)


def test_export_loads_a_fitting_checkpoint_into_the_model_and_its_backbone(
    tiny_config, trained_checkpoint
):
    weights, checkpoint = trained_checkpoint
    model = load_model(tiny_config, checkpoint)
    backbone = load_model(tiny_config, checkpoint, backbone_only=True)
    assert isinstance(backbone, RMT) and not backbone.training
    exactly = dict(rtol=0, atol=0)
    torch.testing.assert_close(model.state_dict()[HEAD_WEIGHT], weights[HEAD_WEIGHT], **exactly)
    name = BACKBONE_WEIGHT[len("backbone.") :]
    torch.testing.assert_close(backbone.state_dict()[name], weights[BACKBONE_WEIGHT], **exactly)


def test_export_tool_reports_a_checkpoint_that_does_not_fit_in_one_line(
    tiny_config, random_weights, tmp_path, capsys
):
    weights = dict(random_weights, **{"extra.weight": torch.zeros(1)})
    checkpoint = tmp_path / "other.pth"
    torch.save({"state_dict": weights}, checkpoint)
    out = str(tmp_path / "model.onnx")
    assert load_tool("export_onnx").main([tiny_config, str(checkpoint), "--out", out]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].endswith(
        f"error: checkpoint {checkpoint} does not fit {tiny_config}: "
        "weights 1 unexpected (e.g. extra.weight)"
    )
