"""The folded element-wise work of the CPU fast path: fused linears and residual depthwise convs."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mmrmt.models import RMT
from mmrmt.models.layers import fused_ops
from mmrmt.models.layers.depthwise_conv import DepthwiseConv2d
from tests.conftest import randomize_buffers_and_norms


def relative_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    return ((actual.double() - expected.double()).abs().max() / expected.abs().max()).item()


@pytest.fixture
def layer():
    return nn.Linear(24, 40)


@pytest.mark.parametrize("case", ["plain", "gelu", "residual", "scale", "scale+residual"])
def test_fused_linear_is_the_unfused_arithmetic(layer, case):
    x = torch.randn(2, 5, 7, 24)
    residual = torch.randn(2, 5, 7, 40) if "residual" in case else None
    scale = torch.rand(1, 1, 1, 40) + 0.5 if "scale" in case else None
    expected = F.linear(x, layer.weight, layer.bias)
    expected = F.gelu(expected) if case == "gelu" else expected
    expected = expected * scale if scale is not None else expected
    expected = expected + residual if residual is not None else expected
    with torch.no_grad():
        assert fused_ops.onednn_fusion_runs(x, layer.weight)
        fused = fused_ops.fused_linear(x, layer.weight, layer.bias, case == "gelu", residual, scale)
    assert relative_error(fused, expected) < 1e-6
    # With autograd the same function runs op by op, and its gradients flow to the scale too.
    if scale is not None:
        scale.requires_grad_(True)
    plain = fused_ops.fused_linear(x, layer.weight, layer.bias, case == "gelu", residual, scale)
    assert relative_error(plain, expected) < 1e-6
    plain.sum().backward()
    assert layer.weight.grad is not None
    if scale is not None:
        assert scale.grad is not None and scale.grad.abs().sum() > 0


def test_onednn_kernels_run_only_where_nothing_needs_gradients_or_a_trace(layer):
    x = torch.randn(3, 24)
    assert not fused_ops.onednn_fusion_runs(x, layer.weight)  # the weight requires grad
    with torch.no_grad():
        assert fused_ops.onednn_fusion_runs(x, layer.weight)
        assert not fused_ops.onednn_fusion_runs(x.double(), layer.weight.double())

    class Fused(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layer = layer

        def forward(self, t: torch.Tensor) -> torch.Tensor:
            return fused_ops.fused_linear(t, self.layer.weight, self.layer.bias, gelu=True)

    with torch.no_grad():
        graph = str(torch.jit.trace(Fused(), x).graph)
    assert "aten::linear" in graph and "mkldnn" not in graph  # what FLOP counters read


def test_gelu_and_a_residual_together_are_refused(layer):
    with pytest.raises(ValueError, match=r"fused_linear\(\) applies GELU or adds a residual"):
        fused_ops.fused_linear(
            torch.randn(2, 24), layer.weight, layer.bias, True, torch.randn(2, 40)
        )


@pytest.mark.parametrize("kernel_size", [3, 5])
def test_a_residual_depthwise_conv_is_x_plus_the_conv_with_the_same_keys(kernel_size):
    conv = DepthwiseConv2d(16, kernel_size, residual=True)
    assert set(conv.state_dict()) == {"conv.weight", "conv.bias"}
    x = torch.randn(2, 9, 11, 16, requires_grad=True)
    expected = x + conv.conv(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
    out = conv(x)
    assert relative_error(out, expected) < 1e-6
    (grad,) = torch.autograd.grad(out.square().sum(), x)
    (expected_grad,) = torch.autograd.grad(expected.square().sum(), x)
    assert relative_error(grad, expected_grad) < 1e-5


@pytest.mark.parametrize("arch", ["t", "b"])  # b: layer scale in stages 3 and 4
def test_cpu_inference_through_onednn_matches_the_float64_op_by_op_model(arch):
    model = RMT(arch=arch, drop_path_rate=0.1)
    model.init_weights()
    randomize_buffers_and_norms(model)  # layer scales of 0.5, not 1e-6, so they matter
    model.eval()
    x = torch.randn(1, 3, 96, 128)
    with torch.no_grad():
        fused = model(x)  # fp32: oneDNN's fused kernels
        expected = model.double()(x.double())  # float64: F.linear and element-wise ops
    for out, ref in zip(fused, expected):
        assert relative_error(out, ref) < 1e-4


def unbanded_ffn(ffn, x, residual, scale):
    """The FFN's formula, op by op: ``residual + scale * fc2(h + dwconv(h))``, h = GELU(fc1(x))."""
    hidden = F.gelu(ffn.fc1(x))
    maps = hidden.permute(0, 3, 1, 2)
    conv = ffn.dwconv.conv
    hidden = hidden + F.conv2d(maps, conv.weight, conv.bias, 1, 1, 1, conv.groups).permute(
        0, 2, 3, 1
    )
    return residual + scale * ffn.fc2(hidden)


@pytest.mark.parametrize("batch, height", [(1, 13), (2, 11), (1, 5)])
def test_cpu_inference_ffn_over_bands_of_rows_is_the_same_function(monkeypatch, batch, height):
    from mmrmt.models.backbones import rmt

    torch.manual_seed(0)
    ffn = rmt.ConvFFN(16, 48).eval()
    x, residual, scale = torch.randn(batch, height, 9, 16), torch.randn(batch, height, 9, 16), 0.5
    # Bands of 4 rows (the fewest allowed) over maps of 5 to 13 rows: every band position.
    monkeypatch.setattr(rmt, "FFN_CHUNK_BYTES", batch * 9 * 48 * 4 * 6)
    with torch.no_grad():
        assert ffn.rows_per_chunk(x) == 4
        banded = ffn(x, residual, torch.full((16,), scale))
        expected = unbanded_ffn(ffn, x, residual, scale)
    assert relative_error(banded, expected) < 1e-5
    # Training keeps the whole map (the bands are an inference path).
    assert ffn.rows_per_chunk(x.requires_grad_()) == height


@pytest.mark.parametrize("drop_prob", [0.2, 0.5])
def test_dropped_path_add_is_mmcvs_drop_path_in_one_pass(drop_prob):
    from mmcv.cnn.bricks import DropPath

    from mmrmt.models.backbones.rmt import add_dropped_path

    shortcut, branch = torch.randn(8, 5, 6, 16), torch.randn(8, 5, 6, 16, requires_grad=True)
    torch.manual_seed(3)
    expected = shortcut + DropPath(drop_prob).train()(branch)
    torch.manual_seed(3)  # the same draw of the per-sample mask
    out = add_dropped_path(shortcut, branch, drop_prob)
    kept = (expected - shortcut).flatten(1).abs().amax(1) > 0
    assert 0 < kept.sum() < 8  # both kinds of sample in the batch
    torch.testing.assert_close(out, expected, rtol=1e-6, atol=1e-6)
    (grad,) = torch.autograd.grad(out.sum(), branch)
    (expected_grad,) = torch.autograd.grad(expected.sum(), branch)
    torch.testing.assert_close(grad, expected_grad, rtol=1e-6, atol=0)
