"""RMT backbone: presets, shapes, parameter counts, equivalence with the paper's formulas."""

import pytest
import torch

from mmrmt.models import ARCH_SETTINGS, RMT, resolve_arch
from tests.conftest import randomize_buffers_and_norms
from tests.paper_rmt import paper_rmt_forward

# Backbone parameters with the four output norms (issue #2).
EXPECTED_PARAMS = {"t": 12.78e6, "s": 25.42e6, "b": 52.61e6, "l": 93.78e6}


@pytest.mark.parametrize("arch", ["t", "s", "b", "l"])
def test_parameter_count_matches_paper(arch):
    model = RMT(arch=arch)
    count = sum(p.numel() for p in model.parameters())
    assert count == pytest.approx(EXPECTED_PARAMS[arch], rel=5e-4)


@pytest.mark.parametrize(
    "alias,name", [("tiny", "t"), ("small", "s"), ("base", "b"), ("large", "l")]
)
def test_aliases_resolve_to_same_preset(alias, name):
    assert resolve_arch(alias) == resolve_arch(name)


@pytest.mark.parametrize("arch", ["t", "s", "b", "l"])
def test_output_shapes_and_strides(arch):
    model = RMT(arch=arch).eval()
    with torch.no_grad():
        outs = model(torch.randn(1, 3, 64, 96))
    dims = ARCH_SETTINGS[arch]["embed_dims"]
    assert [tuple(o.shape) for o in outs] == [
        (1, dims[i], 64 // 2 ** (i + 2), 96 // 2 ** (i + 2)) for i in range(4)
    ]
    assert [info["reduction"] for info in model.feature_info] == [4, 8, 16, 32]


def test_odd_input_sizes_round_up_like_strided_convs():
    model = RMT(arch="t").eval()
    with torch.no_grad():
        outs = model(torch.randn(2, 3, 33, 47))
    sizes = [(33, 47)]
    for _ in range(5):
        h, w = sizes[-1]
        sizes.append(((h + 1) // 2, (w + 1) // 2))
    assert [tuple(o.shape[-2:]) for o in outs] == sizes[2:6]
    assert all(o.shape[0] == 2 for o in outs)


def test_out_indices_select_outputs():
    model = RMT(arch="t", out_indices=(1, 3)).eval()
    with torch.no_grad():
        outs = model(torch.randn(1, 3, 64, 64))
    assert [o.shape[1] for o in outs] == [128, 512]
    assert sorted(model.extra_norms.keys()) == ["1", "3"]


def _authors_layout_state(model: RMT) -> dict:
    """The model's weights under the authors' key names (Relpos buffers added back)."""
    state = dict(model.state_dict())
    for index, stage in enumerate(model.layers):
        state[f"layers.{index}.Relpos.decay"] = stage.rel_pos.decay.clone()
        state[f"layers.{index}.Relpos.angle"] = stage.rel_pos.angle.clone()
    return state


@pytest.mark.parametrize("arch", ["t", "s", "b"])
@pytest.mark.parametrize("impl", ["fast", "reference"])
def test_equals_paper_formulas_with_same_weights(arch, impl):
    depths = [1, 1, 2, 1]
    arch_cfg = dict(resolve_arch(arch), depths=depths)
    model = RMT(arch=arch_cfg, attn_impl=impl).eval()
    model.init_weights()
    randomize_buffers_and_norms(model)
    images = torch.randn(2, 3, 72, 88)
    with torch.no_grad():
        ours = model(images)
    expected = paper_rmt_forward(_authors_layout_state(model), model.arch, images)
    for stage, (got, want) in enumerate(zip(ours, expected)):
        error = (got.double() - want).norm() / want.norm()
        assert error < 1e-4, f"stage {stage}: relative error {error:.2e}"


def test_invalid_arch_names_the_value():
    with pytest.raises(ValueError, match="'xl'"):
        RMT(arch="xl")


def test_heads_not_dividing_width_is_rejected():
    arch = dict(resolve_arch("t"), num_heads=[3, 4, 8, 16])
    with pytest.raises(ValueError, match="num_heads=3 must divide embed_dims=64"):
        RMT(arch=arch)


def test_list_lengths_must_agree():
    arch = dict(resolve_arch("t"), depths=[2, 2, 8])
    with pytest.raises(ValueError, match="one entry per stage"):
        RMT(arch=arch)


def test_missing_arch_keys_are_named():
    with pytest.raises(ValueError, match="heads_ranges"):
        RMT(
            arch=dict(embed_dims=[64], depths=[1], num_heads=[4], mlp_ratios=[3], decomposed=[True])
        )


@pytest.mark.parametrize("out_indices", [(0, 4), (5,), ()])
def test_out_indices_out_of_range(out_indices):
    with pytest.raises(ValueError, match="out_indices"):
        RMT(arch="t", out_indices=out_indices)


def test_wrong_input_channels_names_expected_and_received():
    model = RMT(arch="t")
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\).*1 channels"):
        model(torch.randn(1, 1, 32, 32))


def test_gradients_reach_every_parameter():
    model = RMT(arch=dict(resolve_arch("b"), depths=[1, 1, 1, 1]))
    model.init_weights()
    outs = model(torch.randn(2, 3, 64, 64))
    sum(o.square().mean() for o in outs).backward()
    missing = [
        n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0
    ]
    assert missing == []


def test_with_cp_gives_same_outputs_and_gradients():
    arch = dict(resolve_arch("t"), depths=[1, 1, 2, 1])
    plain = RMT(arch=arch, drop_path_rate=0.0)
    plain.init_weights()
    checkpointed = RMT(arch=arch, drop_path_rate=0.0, with_cp=True)
    checkpointed.load_state_dict(plain.state_dict())
    images = torch.randn(2, 3, 64, 64)
    results = []
    for model in (plain, checkpointed):
        outs = model(images)
        sum(o.sum() for o in outs).backward()
        results.append((outs, {n: p.grad.clone() for n, p in model.named_parameters()}))
    for got, want in zip(results[1][0], results[0][0]):
        torch.testing.assert_close(got, want)
    for name, grad in results[0][1].items():
        torch.testing.assert_close(results[1][1][name], grad, rtol=1e-4, atol=1e-6, msg=name)


def test_frozen_stages_freeze_stem_stages_and_norms():
    model = RMT(arch="t", frozen_stages=2)
    model.train()
    frozen_prefixes = ("patch_embed.", "layers.0.", "layers.1.", "extra_norms.0.", "extra_norms.1.")
    for name, param in model.named_parameters():
        assert param.requires_grad != name.startswith(frozen_prefixes), name
    assert not model.patch_embed.training and not model.layers[1].training
    assert model.layers[2].training


def test_norm_eval_keeps_batch_norms_in_eval_mode():
    model = RMT(arch="t", norm_eval=True).train()
    batch_norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert batch_norms and all(not bn.training for bn in batch_norms)
    before = batch_norms[0].running_mean.clone()
    model(torch.randn(2, 3, 32, 32))
    torch.testing.assert_close(batch_norms[0].running_mean, before)
    assert RMT(arch="t", norm_eval=False).train().patch_embed.proj[1].training


def test_syncbn_norm_cfg_builds_sync_batch_norm():
    model = RMT(arch="t", norm_cfg=dict(type="SyncBN", requires_grad=True))
    assert isinstance(model.patch_embed.proj[1], torch.nn.SyncBatchNorm)
    assert isinstance(model.layers[0].downsample.norm, torch.nn.SyncBatchNorm)
