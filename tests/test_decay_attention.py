"""``mmrmt._ext``'s attention kernel with the Manhattan decay made inside it.

The kernel is held to a float64 softmax over an explicit decay mask (the independent reference),
outputs and gradients, on odd sizes; the MaSA modules that use it to their reference form; and
its routing (where it runs, where SDPA keeps running) and its error messages are specified.
"""

import pytest
import torch
from torch.profiler import ProfilerActivity, profile

from mmrmt.arch_zoo import head_decay_rates
from mmrmt.models.layers import ManhattanSelfAttention, RetentionPosition
from mmrmt.models.layers import cpu_kernels as kernels
from mmrmt.models.layers.cpu_kernels import use_cpu_kernels
from mmrmt.models.layers.decay_attention import decay_attention, decay_kernel_runs


def reference_attention(q, k, v, rates, scale, grid_width):
    """float64 ``softmax(scale q k^T + rate * distance) v`` from an explicit mask, over
    (B, S, L, heads, d) operands; returns the same shape."""
    batch, sequences, length, heads, dim = q.shape
    q, k, v = (t.double().flatten(0, 1).transpose(1, 2) for t in (q, k, v))  # (N, heads, L, d)
    index = torch.arange(length, dtype=torch.float64)
    if grid_width:
        y, x = index.div(grid_width, rounding_mode="floor"), index % grid_width
        distance = (y[:, None] - y).abs() + (x[:, None] - x).abs()
    else:
        distance = (index[:, None] - index).abs()
    logits = scale * q @ k.transpose(-1, -2) + rates.double()[:, None, None] * distance
    out = (logits.softmax(-1) @ v).transpose(1, 2)
    return out.reshape(batch, sequences, length, heads, dim)


def strided_operands(batch, sequences, heads, length, dim, seed=0):
    """q, k, v as (B, S, L, heads, d) views of one (B, L, S, 3, heads, d) tensor: the strided
    column views that the height pass of the decomposed MaSA hands the kernel."""
    generator = torch.Generator().manual_seed(seed)
    packed = 2 * torch.randn(batch, length, sequences, 3, heads, dim, generator=generator)
    return [packed[:, :, :, i].transpose(1, 2) for i in range(3)]


# Sequences off the 16-key vectors and the 8-query blocks, one token, grids for full MaSA.
CASES = [
    (3, 2, 4, 37, 16, 0),
    (1, 2, 2, 304, 16, 0),
    (2, 1, 4, 1, 16, 0),
    (2, 1, 3, 50, 32, 10),
    (1, 3, 2, 33, 32, 3),
    (1, 2, 2, 17, 64, 0),
]


@pytest.mark.parametrize("batch, sequences, heads, length, dim, grid_width", CASES)
def test_kernel_matches_a_float64_softmax_with_the_decay_mask(
    batch, sequences, heads, length, dim, grid_width
):
    operands = strided_operands(batch, sequences, heads, length, dim)
    q, k, v = (t.requires_grad_() for t in operands)
    rates = head_decay_rates(heads, 2.0, 4.0).float()
    scale = dim**-0.5
    out = decay_attention(q, k, v, rates, scale, grid_width)
    grad = torch.randn_like(out)
    out.backward(grad)
    operands = [t.detach().double().requires_grad_() for t in (q, k, v)]
    expected = reference_attention(*operands, rates, scale, grid_width)
    expected.backward(grad.double())

    assert out.shape == (batch, sequences, length, heads, dim)
    # float32 sums of up to 304 products and exponentials: a few units of 1e-7 relative.
    torch.testing.assert_close(
        out.double(), expected, rtol=0, atol=5e-6 * expected.abs().max().item()
    )
    for got, want in zip((q.grad, k.grad, v.grad), operands):
        assert got.shape == want.shape
        atol = 5e-6 * max(want.grad.abs().max().item(), 1e-12)
        torch.testing.assert_close(got.double(), want.grad, rtol=0, atol=atol)


def test_results_do_not_depend_on_the_thread_count():
    # Threads split the (sequence, head) pairs; each pair's arithmetic is the same.
    q, k, v = (t.requires_grad_() for t in strided_operands(2, 3, 4, 40, 16))
    rates = head_decay_rates(4, 2.0, 4.0).float()
    grad = torch.randn(2, 3, 40, 4, 16)
    threads = torch.get_num_threads()
    results = []
    try:
        for count in (1, 2):
            torch.set_num_threads(count)
            out = decay_attention(q, k, v, rates, 0.25)
            results.append(torch.autograd.grad(out, (q, k, v), grad) + (out,))
    finally:
        torch.set_num_threads(threads)
    for one, two in zip(*results):
        torch.testing.assert_close(one, two, rtol=0, atol=0)


def masa(channels, heads, decomposed):
    torch.manual_seed(0)
    attention = ManhattanSelfAttention(channels, heads, decomposed)
    position = RetentionPosition(channels, heads, heads_range=4, decomposed=decomposed)
    return attention, position


def outputs_and_gradients(attention, tables, x):
    x = x.detach().clone().requires_grad_()
    attention.zero_grad(set_to_none=True)
    out = attention(x, tables)
    weights = torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out)
    (out * weights).sum().backward()
    return [out.detach().double(), x.grad.double()] + [
        p.grad.double() for p in attention.parameters()
    ]


@pytest.mark.parametrize("decomposed", [True, False])
@pytest.mark.parametrize("channels, heads", [(64, 4), (64, 2)])
def test_masa_through_the_kernel_equals_its_reference_form(decomposed, channels, heads):
    attention, position = masa(channels, heads, decomposed)
    x = torch.randn(2, 9, 13, channels)
    # The reference form in float64 is the oracle; both float32 fast paths are held to it.
    attention.impl = "reference"
    tables = position.double().compute(9, 13, torch.float64)
    expected = outputs_and_gradients(attention.double(), tables, x.double())
    attention.float().impl = "fast"
    tables = position.float().compute(9, 13, torch.float32)
    with use_cpu_kernels(True):
        ours = outputs_and_gradients(attention, tables, x)
    with use_cpu_kernels(False):
        sdpa = outputs_and_gradients(attention, tables, x)
    # float32 sums over a few hundred tokens (the bias gradients over all of them).
    for mine, theirs, want in zip(ours, sdpa, expected):
        assert ((mine - want).norm() / want.norm()).item() < 1e-4
        assert ((theirs - want).norm() / want.norm()).item() < 1e-4


def attention_ops(attention, tables, x):
    with torch.no_grad(), profile(activities=[ProfilerActivity.CPU]) as prof:
        attention(x, tables)
    return {event.key for event in prof.key_averages() if "attention" in event.key}


@pytest.mark.parametrize("decomposed", [True, False])
def test_masa_attends_through_the_kernel_not_sdpa(decomposed):
    attention, position = masa(64, 4, decomposed)
    x = torch.randn(2, 6, 7, 64, requires_grad=True)
    tables = position(6, 7, torch.float32)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        attention(x, tables).sum().backward()
    names = {event.key for event in prof.key_averages()}
    function = "DecomposedDecayAttentionFunction" if decomposed else "DecayAttentionFunction"
    assert function in names
    assert not any("scaled_dot_product" in name for name in names)


def test_full_masa_needs_no_mask_where_the_kernel_runs():
    attention, _ = masa(64, 4, decomposed=False)
    position = RetentionPosition(64, 4, decomposed=False, full_mask_limit=0)
    tables = position(6, 7, torch.float32)
    assert tables.decay_full is None
    x = torch.randn(1, 6, 7, 64)
    with use_cpu_kernels(True):
        assert attention_ops(attention, tables, x) == set()
        kernel_out = attention(x, tables)
    with use_cpu_kernels(False):  # SDPA over blockwise masks
        assert "aten::_scaled_dot_product_flash_attention_for_cpu" in attention_ops(
            attention, tables, x
        )
        torch.testing.assert_close(kernel_out, attention(x, tables), rtol=1e-5, atol=1e-5)


def test_the_kernel_runs_only_for_float32_cpu_heads_it_is_compiled_for():
    q = torch.randn(1, 2, 10, 4, 16)
    assert decay_kernel_runs(q)
    assert not decay_kernel_runs(q.double())
    assert not decay_kernel_runs(q.bfloat16())
    assert not decay_kernel_runs(torch.randn(1, 2, 10, 4, 24))  # head dim without a kernel
    with use_cpu_kernels(False):
        assert not decay_kernel_runs(q)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert not decay_kernel_runs(q)


def test_traced_graphs_keep_sdpa():
    attention, position = masa(64, 4, decomposed=True)
    tables = position.compute(5, 6, torch.float32)
    x = torch.randn(1, 5, 6, 64)

    class WithTables(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.attention = attention

        def forward(self, t):
            return self.attention(t, tables)

    graph = torch.jit.trace(WithTables(), x, check_trace=False)
    assert "scaled_dot_product_attention" in str(graph.inlined_graph)
    torch.testing.assert_close(graph(x), attention(x, tables), rtol=1e-5, atol=1e-5)


def test_kernel_names_bad_inputs():
    forward = kernels._ext.decay_attention_forward
    q = torch.randn(1, 1, 8, 2, 16)
    out, no_lse, rates = torch.empty_like(q), torch.empty(0), torch.full((2,), -0.1)
    with pytest.raises(RuntimeError, match="k must have the shape"):
        forward(q, q[:, :, :4], q, out, no_lse, rates, 0.25, 0)
    with pytest.raises(RuntimeError, match="v must be a float32 CPU tensor"):
        forward(q, q, q.double(), out, no_lse, rates, 0.25, 0)
    with pytest.raises(RuntimeError, match="head dim must be 16, 32 or 64, got 8"):
        small = torch.randn(1, 1, 8, 2, 8)
        forward(small, small, small, torch.empty_like(small), no_lse, rates, 0.25, 0)
    with pytest.raises(RuntimeError, match="grid_width 3 must divide the tokens 8"):
        forward(q, q, q, out, no_lse, rates, 0.25, 3)
    with pytest.raises(RuntimeError, match="rates must be a dense float32"):
        forward(q, q, q, out, no_lse, rates[:1], 0.25, 0)
    with pytest.raises(
        RuntimeError, match=r"lse must be empty or a dense float32 \(B, S, heads, L\)"
    ):
        forward(q, q, q, out, torch.empty(1, 1, 2, 7), rates, 0.25, 0)


def test_a_full_stage_builds_no_mask_where_the_kernel_makes_the_decay():
    from mmrmt.models import RMT

    torch.manual_seed(0)
    model = RMT(arch="t").eval()  # stages 3 and 4 run full MaSA
    model.init_weights()
    images = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        ours = model(images)
        with use_cpu_kernels(False):
            theirs = model(images)
    for stage in model.layers[2:]:
        masks = {key[-1]: tables.decay_full for key, tables in stage.rel_pos._cache.items()}
        assert masks[False] is None  # the kernel's tables
        assert masks[True] is not None  # SDPA's, with the mask
    for got, want in zip(ours, theirs):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)
