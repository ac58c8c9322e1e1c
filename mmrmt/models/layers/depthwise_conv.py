"""Depthwise convs over channels-last maps, and a CPU kernel for their weight gradient.

RMT runs three depthwise convs per block: the CPE (3x3), LePE (5x5) and the FFN's (3x3), all with
stride 1 and "same" padding, all over (B, H, W, C) maps. oneDNN's forward pass over channels-last
maps is fast, but its weight gradient for 5x5 kernels is 10-20x slower than the forward pass
(docs/benchmarks.md), and that made the depthwise convs' backward the largest gap between RMT-S's
training step and Swin-T's.

``mmrmt._ext`` (``mmrmt/csrc/depthwise_conv.cpp``, compiled by ``pip install``) computes that
gradient directly on channels-last maps. Where autograd records the conv on the CPU (training),
:class:`DepthwiseConv2d` runs :class:`DepthwiseConvFunction`: oneDNN's forward conv, the input
gradient as oneDNN's forward conv with the kernel flipped (faster than its backward kernel), the
weight gradient from ``mmrmt._ext``. Elsewhere, and without the compiled extension
(``MMRMT_WITH_OPS=0`` at install, or no compiler) or with :func:`~.cpu_kernels.set_cpu_kernels`
off, everything runs through PyTorch's own conv: the same function.

The FFN's conv follows a GELU. In CPU training :func:`gelu_depthwise_conv` runs both in one
kernel of ``mmrmt._ext``, forward and backward (:class:`GeluDepthwiseConvFunction`): GELU's
output, a map of 3-4x the block's channels, is never stored or read back, and the backward
pass recomputes it a few rows at a time (RMT-S's training step: about 0.6x the time of GELU,
conv and their gradients op by op, and 220 MiB less peak memory; docs/benchmarks.md).
"""

from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from .cpu_kernels import cpu_kernels_allowed, extension

#: dtypes the compiled kernel takes.
KERNEL_DTYPES = (torch.float32, torch.float64)


def kernels_run(x: Tensor, weight: Tensor) -> bool:
    """Whether :class:`DepthwiseConv2d` runs :class:`DepthwiseConvFunction` for ``x``, ``weight``.

    Only where autograd records the conv (the gain is in the backward pass), in the dtypes the
    kernel compiles for, and where :func:`~.cpu_kernels.cpu_kernels_allowed` (the extension
    built and on, the CPU, no autocast, no trace).
    """
    if x.dtype not in KERNEL_DTYPES or weight.dtype != x.dtype:
        return False
    if not (torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad)):
        return False
    return cpu_kernels_allowed(x)


def conv(x: Tensor, weight: Tensor, bias: Optional[Tensor]) -> Tensor:
    """oneDNN's depthwise conv of a (B, H, W, C) map, handed over as a channels-last NCHW view:
    no layout copy either way. Returns (B, H, W, C)."""
    padding = weight.shape[-1] // 2
    out = F.conv2d(x.permute(0, 3, 1, 2), weight, bias, 1, padding, 1, weight.shape[0])
    return out.permute(0, 2, 3, 1)


class DepthwiseConvFunction(torch.autograd.Function):
    """``conv2d(x, weight, bias, padding=k // 2, groups=C)`` on (B, H, W, C) maps, its weight
    gradient from ``mmrmt._ext``.

    With stride 1 and "same" padding the input gradient is the conv of the output gradient with
    the kernel flipped; the weight gradient is a per-channel correlation of the output gradient
    with the input (the compiled kernel); the bias gradient a sum.
    """

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Optional[Tensor]) -> Tensor:
        """x (B, H, W, C), weight (C, 1, k, k), bias (C,) or None. Returns (B, H, W, C)."""
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return conv(x, weight, bias)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor) -> Tuple[Optional[Tensor], ...]:
        """Gradients for ``x``, ``weight`` and ``bias``."""
        x, weight = ctx.saved_tensors
        grad_x = grad_weight = grad_bias = None
        if ctx.needs_input_grad[0]:
            grad_x = conv(grad, weight.flip(-1, -2), None)
        if ctx.needs_input_grad[1] or (ctx.has_bias and ctx.needs_input_grad[2]):
            # One pass over the gradient gives both; the bias's is dropped where not needed.
            grad_weight, grad_bias = extension().depthwise_weight_grad(
                grad.contiguous(), x.contiguous(), weight.shape[-1]
            )
            grad_weight = grad_weight if ctx.needs_input_grad[1] else None
            grad_bias = grad_bias if ctx.has_bias and ctx.needs_input_grad[2] else None
        return grad_x, grad_weight, grad_bias


class GeluDepthwiseConvFunction(torch.autograd.Function):
    """``conv2d(GELU(h), weight, bias, padding=1, groups=C)`` on (B, H, W, C) float32 maps, forward
    and backward in ``mmrmt._ext`` (``gelu_depthwise_*``): GELU's output is made a few rows at a
    time in the cache, never stored, and recomputed from ``h`` in the backward pass."""

    @staticmethod
    def forward(ctx, h: Tensor, weight: Tensor, bias: Optional[Tensor]) -> Tensor:
        """h (B, H, W, C), weight (C, 1, 3, 3), bias (C,) or None. Returns (B, H, W, C)."""
        ctx.save_for_backward(h, weight)
        ctx.has_bias = bias is not None
        return extension().gelu_depthwise_forward(h, weight, bias)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor) -> Tuple[Optional[Tensor], ...]:
        """Gradients for ``h``, ``weight`` and ``bias``."""
        h, weight = ctx.saved_tensors
        grad_h, grad_weight, grad_bias = extension().gelu_depthwise_backward(grad, h, weight)
        return grad_h, grad_weight, grad_bias if ctx.has_bias else None


def gelu_depthwise_fuses(h: Tensor, weight: Tensor) -> bool:
    """Whether :func:`gelu_depthwise_conv` runs the fused kernel for ``h``, ``weight``: where
    :func:`kernels_run` (CPU training with the extension), in float32, for 3x3 kernels over
    channels in whole 16-float vectors (RMT's FFNs).

    ``h`` may also be any map ``h`` is computed from (the FFN's input): only its dtype, device
    and ``requires_grad`` are read.
    """
    if h.dtype != torch.float32 or weight.shape[-2:] != (3, 3) or weight.shape[0] % 16:
        return False
    return kernels_run(h, weight)


def gelu_depthwise_conv(h: Tensor, weight: Tensor, bias: Optional[Tensor]) -> Tensor:
    """``depthwise_conv(GELU(h), weight, bias)``, the exact (erf) GELU, fused where
    :func:`gelu_depthwise_fuses`.

    Args:
        h (Tensor): (B, H, W, C) pre-activations.
        weight (Tensor): (C, 1, k, k), ``k`` odd.
        bias (Tensor | None): (C,).

    Returns:
        Tensor: (B, H, W, C).
    """
    if gelu_depthwise_fuses(h, weight):
        return GeluDepthwiseConvFunction.apply(h.contiguous(), weight, bias)
    return depthwise_conv(F.gelu(h), weight, bias)


def depthwise_conv(x: Tensor, weight: Tensor, bias: Optional[Tensor]) -> Tensor:
    """Stride-1, "same"-padded depthwise conv of a (B, H, W, C) map.

    Args:
        x (Tensor): (B, H, W, C).
        weight (Tensor): (C, 1, k, k), ``k`` odd.
        bias (Tensor | None): (C,).

    Returns:
        Tensor: (B, H, W, C); a channels-last view of the conv's output on the oneDNN path.
    """
    if kernels_run(x, weight):
        return DepthwiseConvFunction.apply(x, weight, bias)
    return conv(x, weight, bias)


class DepthwiseConv2d(nn.Module):
    """Depthwise conv applied to channels-last maps (kept as ``.conv`` for the authors' keys).

    Args:
        channels (int): Channels in and out.
        kernel_size (int): Square, odd kernel size; padding keeps the size.
        residual (bool): Return ``x + conv(x)``, computed as one conv whose kernel centre is
            raised by 1 (the same function, without a separate add over the map).
    """

    def __init__(self, channels: int, kernel_size: int, residual: bool = False) -> None:
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"DepthwiseConv2d needs an odd kernel_size, got {kernel_size}")
        self.conv = nn.Conv2d(channels, channels, kernel_size, 1, kernel_size // 2, groups=channels)
        self.residual = residual

    def forward(self, x: Tensor) -> Tensor:
        """x (Tensor): (B, H, W, C). Returns (B, H, W, C)."""
        return depthwise_conv(x, self.kernel(), self.conv.bias)

    def forward_gelu(self, h: Tensor) -> Tensor:
        """``forward(GELU(h))``, through :func:`gelu_depthwise_conv`.

        Args:
            h (Tensor): (B, H, W, C) pre-activations.

        Returns:
            Tensor: (B, H, W, C).
        """
        return gelu_depthwise_conv(h, self.kernel(), self.conv.bias)

    def fuses_gelu(self, h: Tensor) -> bool:
        """Whether :meth:`forward_gelu` runs the fused kernel for ``h`` (or a map it is computed
        from, see :func:`gelu_depthwise_fuses`)."""
        return gelu_depthwise_fuses(h, self.conv.weight)

    def kernel(self) -> Tensor:
        """The conv's weight, its centre raised by 1 with ``residual``."""
        weight = self.conv.weight
        if self.residual:
            centre = self.conv.kernel_size[0] // 2
            identity = F.pad(weight.new_ones(weight.shape[0], 1, 1, 1), [centre] * 4)
            weight = weight + identity
        return weight
