"""'flex' MaSA: the decay made inside a FlexAttention kernel equals the reference; where it runs.

On the CPU FlexAttention runs eagerly and forward only, which is what these tests check; the
compiled CUDA kernels, their gradients and autocast are checked by ``tools/check_cuda.py``.
"""

import pytest
import torch
import torch.nn.functional as F

from mmrmt.models import RMT, resolve_arch
from mmrmt.models.layers import ManhattanSelfAttention, RetentionPosition
from mmrmt.models.layers import flex_attention as flex_module
from mmrmt.models.layers import retention as retention_module
from mmrmt.models.layers.position import axis_distance, manhattan_distance
from tests.conftest import randomize_buffers_and_norms

pytestmark = pytest.mark.skipif(not flex_module.FLEX_AVAILABLE, reason="torch has no FlexAttention")

FLEX_KERNELS = ("flex_decomposed_attention", "flex_full_attention")


def relative_error(got: torch.Tensor, want: torch.Tensor) -> float:
    """||got - want|| / ||want||, in float64."""
    return ((got.double() - want.double()).norm() / want.double().norm()).item()


@pytest.fixture
def flex_calls(monkeypatch):
    """Count the calls of the FlexAttention kernels that MaSA makes."""
    calls = []
    for name in FLEX_KERNELS:
        kernel = getattr(retention_module, name)

        def counted(*args, _kernel=kernel, _name=name):
            calls.append(_name)
            return _kernel(*args)

        monkeypatch.setattr(retention_module, name, counted)
    return calls


@pytest.fixture
def flex_forbidden(monkeypatch):
    """Make any call of a FlexAttention kernel fail the test."""
    for name in FLEX_KERNELS:

        def forbidden(*args, _name=name):
            raise AssertionError(f"{_name} ran where SDPA should")

        monkeypatch.setattr(retention_module, name, forbidden)


def test_axis_score_mod_adds_log_gamma_times_index_distance():
    decay = torch.tensor([-0.05, -0.3, -1.0])
    q, k, v = torch.randn(3, 2, 3, 7, 8).unbind(0)
    score_mod = flex_module.axis_decay_score_mod(decay)
    got = flex_module.flex_attention(q, k, v, score_mod=score_mod, scale=0.3)
    mask = decay[:, None, None] * axis_distance(7)
    want = F.scaled_dot_product_attention(q, k, v, attn_mask=mask[None], scale=0.3)
    assert relative_error(got, want) < 1e-5


def test_manhattan_score_mod_adds_log_gamma_times_grid_distance():
    height, width = 5, 3
    decay = torch.tensor([-0.05, -0.3, -1.0])
    q, k, v = torch.randn(3, 2, 3, height * width, 8).unbind(0)
    score_mod = flex_module.manhattan_decay_score_mod(decay, width)
    got = flex_module.flex_attention(q, k, v, score_mod=score_mod, scale=0.3)
    mask = decay[:, None, None] * manhattan_distance(height, width)
    want = F.scaled_dot_product_attention(q, k, v, attn_mask=mask[None], scale=0.3)
    assert relative_error(got, want) < 1e-5


@pytest.mark.parametrize("decomposed", [True, False], ids=["decomposed", "full"])
@pytest.mark.parametrize("batch,height,width", [(1, 8, 8), (3, 7, 11), (2, 13, 5)])
def test_flex_masa_equals_reference(flex_calls, decomposed, batch, height, width):
    attention = ManhattanSelfAttention(48, 6, decomposed, impl="flex")
    position = RetentionPosition(48, 6, heads_range=4, decomposed=decomposed, full_mask_limit=0)
    x = torch.randn(batch, height, width, 48)
    with torch.no_grad():
        got = attention(x, position(height, width, x.dtype))
        attention.impl = "reference"
        want = attention(x, position.compute(height, width, x.dtype))
    assert flex_calls == [FLEX_KERNELS[0] if decomposed else FLEX_KERNELS[1]]
    assert relative_error(got, want) <= 1e-4


def build_pair(arch: str):
    """A 'flex' and a 'reference' RMT (one block per stage) with the same random weights."""
    cfg = dict(resolve_arch(arch), depths=[1, 1, 1, 1])
    flex = RMT(arch=cfg, drop_path_rate=0.0, attn_impl="flex")
    flex.init_weights()
    randomize_buffers_and_norms(flex)
    reference = RMT(arch=cfg, drop_path_rate=0.0, attn_impl="reference")
    reference.load_state_dict(flex.state_dict())
    return flex.eval(), reference.eval()


@pytest.mark.parametrize("arch", ["t", "s", "b", "l"])
def test_flex_backbone_equals_reference_for_every_arch(flex_calls, arch):
    flex, reference = build_pair(arch)
    images = torch.randn(2, 3, 45, 61)  # stages of 12x16, 6x8, 3x4 and 2x2 tokens
    with torch.no_grad():
        got, want = flex(images), reference(images)
    assert len(flex_calls) == 4
    for out_got, out_want in zip(got, want):
        assert relative_error(out_got, out_want) <= 1e-4


def test_flex_stages_build_no_full_mask_and_fast_ones_do():
    model = RMT(arch="t", attn_impl="flex")
    full_stage = model.layers[3]
    assert full_stage.rel_pos(4, 5, torch.float32).decay_full is None
    model.set_attention_impl("fast")
    assert full_stage.rel_pos(4, 5, torch.float32).decay_full.shape == (16, 20, 20)


def test_flex_stages_keep_several_input_sizes_cached():
    # Flex builds no full mask (limit 0); that must not also shrink its cache to one size.
    model = RMT(arch="t", attn_impl="flex")
    sizes = [(4, 5), (6, 7), (8, 9)]
    for height, width in sizes:
        model.layers[0].rel_pos(height, width, torch.float32)
    assert [key[:2] for key in model.layers[0].rel_pos._cache] == sizes


def test_cpu_training_step_takes_sdpa_and_matches_fast(flex_forbidden):
    flex, fast = build_pair("t")
    fast.set_attention_impl("fast")
    images = torch.randn(2, 3, 45, 61)
    grads = []
    for model in (flex.train(), fast.train()):
        sum(out.square().mean() for out in model(images)).backward()
        grads.append(torch.cat([param.grad.flatten() for param in model.parameters()]))
    assert relative_error(*grads) <= 1e-4


def test_cpu_forward_with_grad_enabled_takes_sdpa(flex_forbidden):
    flex, _ = build_pair("s")
    outs = flex(torch.randn(1, 3, 32, 32))
    assert all(out.requires_grad for out in outs)


def test_float64_takes_sdpa(flex_forbidden):
    flex, reference = build_pair("s")
    images = torch.randn(1, 3, 32, 32, dtype=torch.float64)
    with torch.no_grad():
        got, want = flex.double()(images), reference.double()(images)
    assert relative_error(got[-1], want[-1]) < 1e-10


def test_torch_without_flex_attention_takes_sdpa(flex_forbidden, monkeypatch):
    monkeypatch.setattr(flex_module, "FLEX_AVAILABLE", False)
    flex, reference = build_pair("s")
    images = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        got, want = flex(images), reference(images)
    assert relative_error(got[-1], want[-1]) <= 1e-4


def test_bf16_autocast_runs_flex_in_bf16(flex_calls):
    flex, reference = build_pair("s")
    images = torch.randn(1, 3, 48, 64)
    with torch.no_grad():
        want = reference(images)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            got = flex(images)
    assert len(flex_calls) == 4
    assert all(relative_error(g, w) < 5e-2 for g, w in zip(got, want))
