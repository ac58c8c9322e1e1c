"""Fast MaSA: the same function as the reference formulation, with cached tables and kernels."""

import pytest
import torch
from torch.profiler import ProfilerActivity, profile

from mmrmt.models import RMT, resolve_arch, set_attention_impl
from mmrmt.models.layers import ManhattanSelfAttention, RetentionPosition
from mmrmt.models.layers import retention as retention_module
from tests.conftest import randomize_buffers_and_norms
from tests.helpers import TINY_ARCH as SMALL_ARCH


def relative_error(got: torch.Tensor, want: torch.Tensor) -> float:
    """||got - want|| / ||want||, in float64."""
    return ((got.double() - want.double()).norm() / want.double().norm()).item()


def run_attention(attention, position, x, impl):
    """Output and gradients (input, every weight) of one MaSA call with ``impl``."""
    attention.impl = impl
    attention.zero_grad(set_to_none=True)
    x = x.detach().clone().requires_grad_(True)
    height, width = x.shape[1:3]
    if impl == "fast":
        tables = position(height, width, x.dtype)
    else:
        tables = position.compute(height, width, x.dtype)
    out = attention(x, tables)
    # A loss that weighs every output element differently, so all gradients are exercised.
    weights = torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out)
    (out * weights).sum().backward()
    grads = {"input": x.grad}
    grads.update({name: param.grad for name, param in attention.named_parameters()})
    return out.detach(), grads


def build_attention(decomposed, full_mask_limit=None, dtype=torch.float32):
    attention = ManhattanSelfAttention(48, 6, decomposed).to(dtype)
    limit = {} if full_mask_limit is None else {"full_mask_limit": full_mask_limit}
    position = RetentionPosition(48, 6, heads_range=4, decomposed=decomposed, **limit)
    return attention, position.to(dtype)


FORMS = {
    "decomposed": dict(decomposed=True),
    "full, cached mask": dict(decomposed=False),
    "full, blockwise mask": dict(decomposed=False, full_mask_limit=0),
}


@pytest.mark.parametrize("form", list(FORMS))
@pytest.mark.parametrize("batch,height,width", [(1, 8, 8), (3, 7, 11), (2, 13, 5)])
def test_fast_equals_reference_outputs_and_gradients(form, batch, height, width):
    attention, position = build_attention(**FORMS[form])
    x = torch.randn(batch, height, width, 48)
    fast_out, fast_grads = run_attention(attention, position, x, "fast")
    ref_out, ref_grads = run_attention(attention, position, x, "reference")
    assert fast_out.shape == (batch, height, width, 48)
    assert relative_error(fast_out, ref_out) < 1e-4
    assert fast_grads.keys() == ref_grads.keys()
    for name, grad in ref_grads.items():
        assert relative_error(fast_grads[name], grad) < 1e-4, name


def test_blockwise_full_attention_splits_rows_into_blocks(monkeypatch):
    # 13 rows of 5 tokens, 6 heads, fp32: 1560 bytes of mask per query row, so a 4000-byte
    # budget makes blocks of 2 rows and a last block of 1, with and without autograd.
    monkeypatch.setattr(retention_module, "BLOCK_MASK_BYTES", 4000)
    attention, position = build_attention(decomposed=False, full_mask_limit=0)
    x = torch.randn(2, 13, 5, 48)
    ref_out, ref_grads = run_attention(attention, position, x, "reference")
    fast_out, fast_grads = run_attention(attention, position, x, "fast")
    assert relative_error(fast_out, ref_out) < 1e-4
    for name, grad in ref_grads.items():
        assert relative_error(fast_grads[name], grad) < 1e-4, name
    attention.impl = "fast"
    with torch.no_grad():
        no_grad_out = attention(x, position(13, 5, x.dtype))
    assert relative_error(no_grad_out, ref_out) < 1e-4


def test_full_mask_over_the_limit_is_not_materialised():
    small = RetentionPosition(32, 4, decomposed=False, full_mask_limit=4 * 12**2 * 4)
    assert small(3, 4, torch.float32).decay_full.shape == (4, 12, 12)
    tables = small(3, 5, torch.float32)  # 4 heads x 15^2 x 4 bytes > limit
    assert tables.decay_full is None
    assert tables.decay_height.shape == (4, 3, 3) and tables.decay_width.shape == (4, 5, 5)
    # The reference path computes its tables without a limit.
    assert small.compute(3, 5, torch.float32).decay_full.shape == (4, 15, 15)


def test_cache_drops_old_sizes_beyond_the_byte_limit():
    position = RetentionPosition(
        32, 4, decomposed=False, full_mask_limit=48_000, cache_limit=48_000
    )
    position(9, 9, torch.float32)  # 4 x 81^2 x 4 bytes = 105 kB > limit: axis tables only
    position(8, 8, torch.float32)  # 65.5 kB mask > limit as well
    position(7, 7, torch.float32)  # 38.4 kB mask: cached, and the older sizes make room
    assert [key[:2] for key in position._cache] == [(7, 7)]
    assert position.cached_bytes() <= 48_000 + 4 * 49 * 49 * 4


@pytest.mark.parametrize("form", list(FORMS))
def test_bf16_fast_path_stays_close_to_fp32_reference(form):
    attention, position = build_attention(**FORMS[form])
    x = torch.randn(2, 7, 9, 48)
    ref_out, _ = run_attention(attention, position, x, "reference")
    attention_bf16, position_bf16 = attention.to(torch.bfloat16), position.to(torch.bfloat16)
    fast_out, fast_grads = run_attention(attention_bf16, position_bf16, x.bfloat16(), "fast")
    assert fast_out.dtype == torch.bfloat16
    # bf16 keeps 8 bits of mantissa: about 0.4% per rounding.
    assert relative_error(fast_out, ref_out) < 3e-2
    assert all(torch.isfinite(grad).all() for grad in fast_grads.values())


def small_rmt(arch):
    """``arch`` with one or two blocks per stage, so every stage kind runs quickly."""
    return dict(resolve_arch(arch), depths=[1, 1, 2, 1])


@pytest.mark.parametrize("arch", ["t", "s", "b", "l"])
def test_every_arch_fast_equals_reference_with_same_weights(arch):
    model = RMT(arch=small_rmt(arch), drop_path_rate=0.0)
    model.init_weights()
    randomize_buffers_and_norms(model)
    model.eval()  # BN with running statistics; gradients still flow
    images = torch.randn(2, 3, 75, 101)  # odd: stages of 19x26, 10x13, 5x7, 3x4 tokens
    results = {}
    for impl in ("fast", "reference"):
        model.set_attention_impl(impl)
        model.zero_grad(set_to_none=True)
        outs = model(images)
        sum(out.square().mean() for out in outs).backward()
        grads = {name: param.grad.clone() for name, param in model.named_parameters()}
        results[impl] = ([out.detach() for out in outs], grads)
    for stage, (got, want) in enumerate(zip(results["fast"][0], results["reference"][0])):
        assert relative_error(got, want) < 1e-4, f"stage {stage}"
    for name, grad in results["reference"][1].items():
        assert relative_error(results["fast"][1][name], grad) < 1e-4, name


def attention_kernels(attention, position, x):
    """Names of the aten attention kernels one no-grad fast call runs."""
    attention.impl = "fast"
    with torch.no_grad(), profile(activities=[ProfilerActivity.CPU]) as prof:
        attention(x, position(x.shape[1], x.shape[2], x.dtype))
    return {event.key for event in prof.key_averages() if "attention" in event.key}


@pytest.mark.parametrize("form", list(FORMS))
def test_fast_path_runs_the_fused_cpu_kernel(form):
    # A 3-D float mask silently drops SDPA to its unfused math kernel on CPU.
    attention, position = build_attention(**FORMS[form])
    kernels = attention_kernels(attention, position, torch.randn(1, 6, 7, 48))
    assert "aten::_scaled_dot_product_flash_attention_for_cpu" in kernels
    assert "aten::_scaled_dot_product_attention_math" not in kernels


def test_tables_are_reused_until_shape_dtype_or_device_changes():
    position = RetentionPosition(32, 4, decomposed=False)
    first = position(6, 7, torch.float32)
    assert position(6, 7, torch.float32) is first
    other_shape = position(7, 6, torch.float32)
    assert other_shape is not first and other_shape.decay_full.shape == (4, 42, 42)
    as_bf16 = position(6, 7, torch.bfloat16)
    assert as_bf16 is not first and as_bf16.decay_full.dtype == torch.bfloat16
    assert as_bf16.rotation is None  # no complex bf16: the fast path uses theta_shift
    assert first.rotation.dtype == torch.complex64
    position.to("meta")  # another device: the cached CPU tables must not be served
    on_meta = position(6, 7, torch.float32)
    assert on_meta.decay_full.device.type == "meta"
    assert on_meta.rotation.device.type == "meta"


def test_cached_tables_follow_the_module_to_a_new_dtype():
    attention, position = build_attention(decomposed=True)
    x = torch.randn(1, 5, 6, 48)
    attention.impl = "fast"
    with torch.no_grad():
        attention(x, position(5, 6, x.dtype))
        attention.double()
        position.double()
        out = attention(x.double(), position(5, 6, torch.float64))
    assert out.dtype == torch.float64
    tables = [t for t in position(5, 6, torch.float64) if t is not None]
    assert all(t.dtype in (torch.float64, torch.complex128) for t in tables)


def test_rotation_table_matches_sin_and_cos_of_each_pair():
    tables = RetentionPosition(32, 4)(3, 4, torch.float32)
    torch.testing.assert_close(tables.rotation.real, tables.cos[..., 0::2])
    torch.testing.assert_close(tables.rotation.imag, tables.sin[..., 0::2])
    torch.testing.assert_close(tables.cos[..., 0::2], tables.cos[..., 1::2])


# -- switching implementations -------------------------------------------------------------------
TINY_ARCH = dict(SMALL_ARCH, depths=[1, 2, 1, 1])  # two blocks in a decomposed stage


def test_set_attention_impl_reaches_every_stage_and_block_of_a_wrapping_model():
    detector = torch.nn.ModuleDict(dict(backbone=RMT(arch=TINY_ARCH), neck=torch.nn.Identity()))
    switched = set_attention_impl(detector, "reference")
    assert switched == sum(TINY_ARCH["depths"])
    stages = detector["backbone"].layers
    assert {stage.attn_impl for stage in stages} == {"reference"}
    assert {block.retention.impl for stage in stages for block in stage.blocks} == {"reference"}


def test_set_attention_impl_names_an_unknown_implementation():
    with pytest.raises(ValueError, match="'flash'"):
        set_attention_impl(RMT(arch=TINY_ARCH), "flash")


def test_a_model_without_rmt_has_nothing_to_switch():
    assert set_attention_impl(torch.nn.Linear(2, 2), "reference") == 0


@pytest.mark.parametrize("impl,cached", [("fast", True), ("reference", False)])
def test_a_stage_takes_its_table_path_from_its_own_impl(impl, cached):
    model = RMT(arch=TINY_ARCH, attn_impl=impl).eval()
    with torch.no_grad():
        model(torch.randn(1, 3, 64, 64))
    assert all(bool(stage.rel_pos._cache) == cached for stage in model.layers)
