"""MaSA's attention with the decay made inside a compiled CPU kernel (``mmrmt._ext``).

``softmax(scale * Q K^T + log(gamma) * distance) V`` per head, where ``distance`` is ``|i - j|``
along one axis (the decomposed form's width and height passes) or the Manhattan distance of
raster-ordered tokens on a grid (full MaSA). PyTorch's CPU flash kernel spends most of its time
outside the products for RMT's 16- and 32-channel heads, and reads the decay as a mask;
``mmrmt/csrc/decay_attention.cpp`` scores a block of queries against one packed (sequence, head)
in the cache and computes the decay from the token indices. The backward pass works from the
forward's output and log-sum-exp, as the flash kernels do. :func:`decomposed_decay_attention` runs
the decomposed form's two passes as one autograd function (the second pass of the backward adds
its Q/K gradients into the first's buffer); :func:`full_decay_attention` runs full MaSA over a grid
through :func:`decay_attention`, the one-pass function.
"""

from typing import Optional, Tuple

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from .cpu_kernels import cpu_kernels_allowed, extension

#: Head dims the kernel is compiled for (every RMT preset's heads have 16 or 32 channels).
KERNEL_HEAD_DIMS = (16, 32, 64)


def decay_kernel_runs(queries: Tensor) -> bool:
    """Whether :func:`decay_attention` takes (..., d) ``queries`` like these: float32 CPU
    tensors with a head dim of :data:`KERNEL_HEAD_DIMS`, where
    :func:`~.cpu_kernels.cpu_kernels_allowed`."""
    if not cpu_kernels_allowed(queries):  # first: no shape reads under a tracer
        return False
    if queries.dtype != torch.float32 or queries.shape[-1] not in KERNEL_HEAD_DIMS:
        return False
    return hasattr(extension(), "decay_attention_forward")


def _dense_channels(t: Tensor) -> Tensor:
    return t if t.stride(-1) == 1 else t.contiguous()


class DecayAttentionFunction(torch.autograd.Function):
    """Autograd of the kernel: see :func:`decay_attention`."""

    @staticmethod
    def forward(
        ctx,
        queries: Tensor,
        keys: Tensor,
        values: Tensor,
        rates: Tensor,
        scale: float,
        grid_width: int,
    ) -> Tensor:
        """Returns the output; saves the log-sum-exp when gradients are due."""
        queries, keys, values = map(_dense_channels, (queries, keys, values))
        batch, sequences, length, heads, _ = queries.shape
        needs_grad = any(ctx.needs_input_grad[:3])
        # The output takes the values' memory order (a transposed view writes back in place).
        out = torch.empty_like(values)
        lse = queries.new_empty((batch, sequences, heads, length) if needs_grad else (0,))
        extension().decay_attention_forward(
            queries, keys, values, out, lse, rates, scale, grid_width
        )
        if needs_grad:
            ctx.save_for_backward(queries, keys, values, out, lse, rates)
        ctx.scale, ctx.grid_width = scale, grid_width
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor) -> Tuple[Optional[Tensor], ...]:
        """Gradients of the queries, keys and values, in their memory order."""
        queries, keys, values, out, lse, rates = ctx.saved_tensors
        grads = [torch.empty_like(t) for t in (queries, keys, values)]
        extension().decay_attention_backward(
            _dense_channels(grad),
            queries,
            keys,
            values,
            out,
            lse,
            *grads,
            rates,
            ctx.scale,
            ctx.grid_width,
            False,  # the gradients of q and k are written, not added
        )
        return (*grads, None, None, None)


class DecomposedDecayAttentionFunction(torch.autograd.Function):
    """Autograd of the decomposed form's two passes: see :func:`decomposed_decay_attention`.

    One function for both passes, so that the backward pass writes the gradients of Q and K
    from both passes into one (B, H, W, 2, heads, d) buffer, the layout of the fused Q/K
    projection, instead of autograd adding two gradients per operand and stacking them.
    """

    @staticmethod
    def forward(ctx, qk: Tensor, values: Tensor, rates: Tensor, scale: float) -> Tensor:
        """qk (B, H, W, 2, heads, d), values (B, H, W, heads, d); returns (B, H, W, heads, d)."""
        ext = extension()
        queries, keys = qk.unbind(3)
        values = _dense_channels(values)
        batch, height, width, heads, _ = values.shape
        needs_grad = any(ctx.needs_input_grad[:2])
        lse_shapes = ((batch, height, heads, width), (batch, width, heads, height))
        lse_width, lse_height = (values.new_empty(s if needs_grad else (0,)) for s in lse_shapes)
        # Width pass over the map as it is; height pass over its transpose, written back in
        # (B, H, W) order.
        rows = torch.empty_like(values)
        ext.decay_attention_forward(queries, keys, values, rows, lse_width, rates, scale, 0)
        out = torch.empty_like(values)
        ext.decay_attention_forward(
            queries.transpose(1, 2),
            keys.transpose(1, 2),
            rows.transpose(1, 2),
            out.transpose(1, 2),
            lse_height,
            rates,
            scale,
            0,
        )
        if needs_grad:
            ctx.save_for_backward(qk, values, rows, out, lse_width, lse_height, rates)
        ctx.scale = scale
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor) -> Tuple[Optional[Tensor], ...]:
        """Gradients of qk and the values."""
        ext = extension()
        qk, values, rows, out, lse_width, lse_height, rates = ctx.saved_tensors
        queries, keys = qk.unbind(3)
        grad = _dense_channels(grad)
        grad_qk = qk.new_empty(qk.shape)
        grad_queries, grad_keys = grad_qk.unbind(3)
        grad_rows, grad_values = torch.empty_like(rows), torch.empty_like(values)
        transposed = [t.transpose(1, 2) for t in (grad, queries, keys, rows, out)]
        grads_height = [t.transpose(1, 2) for t in (grad_queries, grad_keys, grad_rows)]
        ext.decay_attention_backward(
            *transposed, lse_height, *grads_height, rates, ctx.scale, 0, False
        )
        ext.decay_attention_backward(
            grad_rows,
            queries,
            keys,
            values,
            rows,
            lse_width,
            grad_queries,
            grad_keys,
            grad_values,
            rates,
            ctx.scale,
            0,
            True,
        )
        return grad_qk, grad_values, None, None


def decomposed_decay_attention(qk: Tensor, values: Tensor, rates: Tensor, scale: float) -> Tensor:
    """The decomposed MaSA's two passes: along the width with ``rates[h] * |x_n - x_m|``, then
    along the height of the result with ``rates[h] * |y_n - y_m|``.

    Args:
        qk (Tensor): (B, H, W, 2, heads, d) rotated queries (``[..., 0, :, :]``) and keys, float32
            on the CPU with dense channels.
        values (Tensor): (B, H, W, heads, d).
        rates (Tensor): (heads,) ``log(gamma)`` of each head.
        scale (float): Logit scaling, ``d ** -0.5``.

    Returns:
        Tensor: (B, H, W, heads, d), contiguous.
    """
    rates = rates.to(torch.float32).contiguous()
    return DecomposedDecayAttentionFunction.apply(_dense_channels(qk), values, rates, float(scale))


def full_decay_attention(q: Tensor, k: Tensor, v: Tensor, rates: Tensor, scale: float) -> Tensor:
    """Full MaSA over (B, H, W, heads, d) maps: the Manhattan decay of the raster-ordered grid.

    Args:
        q, k, v (Tensor): (B, H, W, heads, d) rotated queries and keys, values.
        rates (Tensor): (heads,) ``log(gamma)`` of each head.
        scale (float): Logit scaling, ``d ** -0.5``.

    Returns:
        Tensor: (B, HW, heads, d), contiguous.
    """
    tokens = [t.flatten(1, 2).unsqueeze(1) for t in (q, k, v)]  # (B, 1, HW, heads, d)
    return decay_attention(*tokens, rates, scale, grid_width=q.shape[2]).squeeze(1)


def decay_attention(
    queries: Tensor, keys: Tensor, values: Tensor, rates: Tensor, scale: float, grid_width: int = 0
) -> Tensor:
    """Attention with ``rates[h] * distance(i, j)`` added to head ``h``'s logits.

    Args:
        queries, keys, values (Tensor): (B, S, L, heads, d) float32 CPU views: B x S sequences
            of L tokens (any strides; dense channels are copied in otherwise).
        rates (Tensor): (heads,) ``log(gamma)`` of each head.
        scale (float): Logit scaling, ``d ** -0.5``.
        grid_width (int): 0 for ``distance = |i - j|`` along one axis; else the L tokens are a
            raster-ordered grid of this many columns and ``distance`` is their Manhattan
            distance.

    Returns:
        Tensor: (B, S, L, heads, d), dense, in the memory order of ``values``.
    """
    rates = rates.to(torch.float32).contiguous()
    return DecayAttentionFunction.apply(queries, keys, values, rates, float(scale), grid_width)
