"""The depthwise convs of RMT and ``mmrmt._ext``'s kernels behind them: the weight gradient,
and the FFN's GELU and conv fused.

The kernels are checked against PyTorch's own conv and GELU (their autograd, in float64) and by
``torch.autograd.gradcheck``; the module against the stock path it replaces in training.
"""

import pytest
import torch
import torch.nn.functional as F

from mmrmt.models.layers import cpu_kernels as kernels
from mmrmt.models.layers.cpu_kernels import cpu_kernels_available, use_cpu_kernels
from mmrmt.models.layers.depthwise_conv import (
    DepthwiseConv2d,
    DepthwiseConvFunction,
    GeluDepthwiseConvFunction,
)


def stock_conv(x, weight, bias):
    """PyTorch's depthwise conv of a (B, H, W, C) map: the independent reference."""
    maps = x.permute(0, 3, 1, 2)
    out = F.conv2d(maps, weight, bias, 1, weight.shape[-1] // 2, 1, weight.shape[0])
    return out.permute(0, 2, 3, 1)


def test_the_install_compiled_the_kernel():
    # make install builds mmrmt._ext; a silent fallback would hide a broken build.
    assert cpu_kernels_available()


# Odd sizes, channel counts off the kernel's vector width, maps smaller than the kernel, and
# maps with interior rows and columns for the register-blocked 3x3 and 5x5 loops.
SHAPES = [
    (2, 7, 9, 5, 3),
    (1, 6, 5, 24, 5),
    (2, 3, 2, 17, 5),
    (1, 1, 1, 3, 3),
    (1, 4, 6, 80, 7),
    (2, 6, 11, 40, 3),
    (1, 9, 8, 20, 5),
]


@pytest.mark.parametrize("batch, height, width, channels, kernel", SHAPES)
def test_weight_and_bias_gradients_match_pytorchs_conv_in_float64(
    batch, height, width, channels, kernel
):
    generator = torch.Generator().manual_seed(0)
    shape = (batch, height, width, channels)
    x = torch.randn(shape, dtype=torch.float64, generator=generator)
    grad = torch.randn(shape, dtype=torch.float64, generator=generator)
    weight = torch.randn(channels, 1, kernel, kernel, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(channels, dtype=torch.float64, requires_grad=True)
    stock_conv(x, weight, bias).backward(grad)
    weight_grad, bias_grad = kernels._ext.depthwise_weight_grad(grad, x, kernel)
    assert weight_grad.shape == weight.shape and bias_grad.shape == bias.shape
    torch.testing.assert_close(weight_grad, weight.grad, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(bias_grad, bias.grad, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kernel", [3, 5])
def test_float32_gradients_match_a_float64_conv(kernel):
    """float32 through the register-blocked loops (two 16-channel chunks and 8 channels past
    them), against the stock conv's gradients in float64."""
    generator = torch.Generator().manual_seed(1)
    shape = (2, 12, 13, 40)
    x = torch.randn(shape, dtype=torch.float64, generator=generator)
    grad = torch.randn(shape, dtype=torch.float64, generator=generator)
    weight = torch.randn(40, 1, kernel, kernel, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(40, dtype=torch.float64, requires_grad=True)
    stock_conv(x, weight, bias).backward(grad)
    weight_grad, bias_grad = kernels._ext.depthwise_weight_grad(grad.float(), x.float(), kernel)
    assert weight_grad.dtype == bias_grad.dtype == torch.float32
    torch.testing.assert_close(weight_grad.double(), weight.grad, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(bias_grad.double(), bias.grad, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("kernel", [3, 5])
def test_function_passes_gradcheck(kernel, bias):
    generator = torch.Generator().manual_seed(1)

    def leaf(*shape):
        return torch.randn(*shape, generator=generator, dtype=torch.float64).requires_grad_()

    x, weight = leaf(2, 5, 6, 3), leaf(3, 1, kernel, kernel)
    bias_value = leaf(3) if bias else None
    assert torch.autograd.gradcheck(DepthwiseConvFunction.apply, (x, weight, bias_value))


@pytest.mark.parametrize("residual, kernel", [(False, 5), (True, 3)])
def test_training_path_matches_the_stock_conv(residual, kernel):
    torch.manual_seed(0)
    module = DepthwiseConv2d(40, kernel, residual=residual)
    x = torch.randn(2, 33, 47, 40)
    grad = torch.randn(2, 33, 47, 40)

    def run(enabled, dtype):
        model = module.to(dtype)
        inputs = x.to(dtype, copy=True).requires_grad_()
        with use_cpu_kernels(enabled):
            out = model(inputs)
        out.backward(grad.to(dtype))
        result = (out, inputs.grad, model.conv.weight.grad, model.conv.bias.grad)
        model.zero_grad(set_to_none=True)
        return [tensor.double() for tensor in result]

    # float64 through PyTorch's conv is the reference; both float32 paths are held to it.
    reference = run(False, torch.float64)
    ours, stock = run(True, torch.float32), run(False, torch.float32)
    for mine, theirs, exact in zip(ours, stock, reference):
        tolerance = 1e-5 * exact.abs().max().item()  # float32 sums of ~3000 products
        torch.testing.assert_close(mine, exact, rtol=0, atol=tolerance)
        torch.testing.assert_close(theirs, exact, rtol=0, atol=tolerance)


def test_the_kernel_runs_only_where_autograd_records_the_conv(monkeypatch):
    calls = []
    monkeypatch.setattr(DepthwiseConvFunction, "apply", lambda *args: calls.append(args))
    module = DepthwiseConv2d(8, 3)
    x = torch.randn(1, 4, 4, 8)
    module(x)  # weights need gradients: training
    assert len(calls) == 1
    with torch.no_grad():
        module(x)
    with use_cpu_kernels(False):
        module(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        module(x)
    module.bfloat16()(x.bfloat16())  # a dtype the kernel is not compiled for
    assert len(calls) == 1


def test_gradients_agree_across_thread_counts():
    # Each thread sums its own rows; the totals may only differ by float rounding.
    x, grad = torch.randn(2, 64, 48, 32), torch.randn(2, 64, 48, 32)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = kernels._ext.depthwise_weight_grad(grad, x, 5)
        torch.set_num_threads(2)
        two = kernels._ext.depthwise_weight_grad(grad, x, 5)
    finally:
        torch.set_num_threads(threads)
    for first, second in zip(one, two):
        torch.testing.assert_close(first, second, rtol=1e-5, atol=1e-4)


def test_fused_gelu_conv_gradients_agree_across_thread_counts():
    h, grad, weight = (
        torch.randn(2, 40, 24, 32),
        torch.randn(2, 40, 24, 32),
        torch.randn(32, 1, 3, 3),
    )
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = kernels._ext.gelu_depthwise_backward(grad, h, weight)
        torch.set_num_threads(2)
        two = kernels._ext.gelu_depthwise_backward(grad, h, weight)
    finally:
        torch.set_num_threads(threads)
    torch.testing.assert_close(one[0], two[0], rtol=0, atol=0)  # per pixel: no shared sums
    for first, second in zip(one[1:], two[1:]):
        torch.testing.assert_close(first, second, rtol=1e-5, atol=1e-4)


def test_kernel_names_bad_inputs():
    x = torch.randn(1, 4, 4, 8)
    with pytest.raises(RuntimeError, match="of one shape"):
        kernels._ext.depthwise_weight_grad(x, x[:, :3], 3)
    with pytest.raises(RuntimeError, match="odd kernel size"):
        kernels._ext.depthwise_weight_grad(x, x, 4)
    with pytest.raises(RuntimeError, match="share a dtype"):
        kernels._ext.depthwise_weight_grad(x, x.double(), 3)


def test_an_even_kernel_is_refused_by_name():
    with pytest.raises(ValueError, match="odd kernel_size, got 4"):
        DepthwiseConv2d(8, 4)


# -- GELU then the 3x3 conv, fused (the FFN's hidden map in CPU training) -------------------------


def stock_gelu_conv(h, weight, bias):
    """GELU, then PyTorch's depthwise conv: the independent reference of the fused kernel."""
    return stock_conv(F.gelu(h), weight, bias)


# Maps of one row, one column and one pixel (every tap clipped), and several 16-channel chunks.
GELU_SHAPES = [(2, 9, 11, 48), (1, 1, 1, 16), (2, 1, 7, 32), (1, 6, 1, 16), (2, 2, 2, 16)]


@pytest.mark.parametrize("shape", GELU_SHAPES)
def test_fused_gelu_conv_matches_gelu_then_conv_in_float64(shape):
    generator = torch.Generator().manual_seed(2)
    channels = shape[-1]
    # Pre-activations around GELU's bend, and far out on both sides of it.
    h = torch.randn(shape, dtype=torch.float64, generator=generator) * 3
    weight = torch.randn(channels, 1, 3, 3, dtype=torch.float64, generator=generator)
    bias = torch.randn(channels, dtype=torch.float64, generator=generator)
    leaves = [t.clone().requires_grad_() for t in (h, weight, bias)]
    expected = stock_gelu_conv(*leaves)
    grad = torch.randn(expected.shape, dtype=torch.float64, generator=generator)
    expected.backward(grad)

    out = kernels._ext.gelu_depthwise_forward(h.float(), weight.float(), bias.float())
    grads = kernels._ext.gelu_depthwise_backward(grad.float(), h.float(), weight.float())
    for mine, exact in zip([out, *grads], [expected, *(leaf.grad for leaf in leaves)]):
        assert mine.dtype == torch.float32 and mine.shape == exact.shape
        # float32 products and the erf approximation (1.5e-7 absolute) of PyTorch's GELU.
        tolerance = 2e-6 * exact.abs().max().item()
        torch.testing.assert_close(mine.double(), exact.detach(), rtol=0, atol=tolerance)


def test_fused_gelu_conv_without_bias():
    h, weight = torch.randn(1, 4, 5, 16), torch.randn(16, 1, 3, 3)
    out = kernels._ext.gelu_depthwise_forward(h, weight, None)
    torch.testing.assert_close(out, stock_gelu_conv(h, weight, None), rtol=1e-5, atol=1e-5)


def test_module_trains_through_the_fused_kernel_with_the_stock_function(monkeypatch):
    """DepthwiseConv2d.forward_gelu (residual, as the FFN's) runs the fused function in CPU
    training, and its output and gradients are those of GELU then the stock conv."""
    torch.manual_seed(0)
    module = DepthwiseConv2d(32, 3, residual=True)
    h = torch.randn(2, 13, 17, 32)
    grad = torch.randn(2, 13, 17, 32)

    def run(enabled):
        inputs = h.clone().requires_grad_()
        with use_cpu_kernels(enabled):
            assert module.fuses_gelu(inputs) == enabled
            out = module.forward_gelu(inputs)
        out.backward(grad)
        result = (out, inputs.grad, module.conv.weight.grad, module.conv.bias.grad)
        module.zero_grad(set_to_none=True)
        return [tensor.detach().clone() for tensor in result]

    calls = []
    apply = GeluDepthwiseConvFunction.apply
    monkeypatch.setattr(
        GeluDepthwiseConvFunction, "apply", lambda *args: calls.append(1) or apply(*args)
    )
    fused, stock = run(True), run(False)
    assert len(calls) == 1
    for mine, theirs in zip(fused, stock):
        tolerance = 1e-5 * theirs.abs().max().item()
        torch.testing.assert_close(mine, theirs, rtol=0, atol=tolerance)


def test_fused_gelu_conv_runs_only_where_it_can(monkeypatch):
    calls = []
    monkeypatch.setattr(GeluDepthwiseConvFunction, "apply", lambda *args: calls.append(args))
    h = torch.randn(1, 4, 4, 16)
    DepthwiseConv2d(16, 3).forward_gelu(h)  # training, float32, 3x3, 16 channels
    assert len(calls) == 1
    with torch.no_grad():
        DepthwiseConv2d(16, 3).forward_gelu(h)
    DepthwiseConv2d(16, 5).forward_gelu(h)  # the fused kernel is 3x3 only
    DepthwiseConv2d(24, 3).forward_gelu(torch.randn(1, 4, 4, 24))  # not whole vectors
    DepthwiseConv2d(16, 3).double().forward_gelu(h.double())
    with use_cpu_kernels(False):
        DepthwiseConv2d(16, 3).forward_gelu(h)
    assert len(calls) == 1
    # Where it does not run, the same function: GELU, then the conv.
    module = DepthwiseConv2d(24, 3)
    h = torch.randn(1, 4, 4, 24)
    with torch.no_grad():
        expected = stock_gelu_conv(h, module.conv.weight, module.conv.bias)
        torch.testing.assert_close(module.forward_gelu(h), expected)


def test_fused_gelu_conv_names_bad_inputs():
    h = torch.randn(1, 4, 4, 16)
    with pytest.raises(RuntimeError, match="multiple of 16"):
        kernels._ext.gelu_depthwise_forward(torch.randn(1, 4, 4, 8), torch.randn(8, 1, 3, 3), None)
    with pytest.raises(RuntimeError, match=r"\(C, 1, 3, 3\)"):
        kernels._ext.gelu_depthwise_forward(h, torch.randn(16, 1, 5, 5), None)
    with pytest.raises(RuntimeError, match="float32"):
        kernels._ext.gelu_depthwise_forward(h.double(), torch.randn(16, 1, 3, 3), None)
    with pytest.raises(RuntimeError, match="grad_output must have"):
        kernels._ext.gelu_depthwise_backward(h[:, :2], h, torch.randn(16, 1, 3, 3))
