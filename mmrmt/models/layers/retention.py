"""Manhattan Self-Attention (MaSA), full and decomposed, in a fast and a reference form.

Both forms share one set of weights in the authors' layout (``q_proj``, ``k_proj``, ``v_proj``,
``lepe``, ``out_proj``) and compute the same function:

* full MaSA: ``softmax(Q K^T / sqrt(d) + log(gamma) * ManhattanDistance) V``;
* decomposed MaSA: the same along the width with ``log(gamma) * |x_n - x_m|``, then along the
  height of the result with ``log(gamma) * |y_n - y_m|``;

with rotary phases on Q and K and LePE (a 5x5 depthwise conv of V) added to the output.
``impl='reference'`` follows the formulas step by step (the correctness oracle and benchmark
baseline). ``impl='fast'`` computes the same function with:

* one fused Q/K projection and one V projection, whose outputs are only ever viewed as
  (B, H, W, heads, d), never permuted: the attention kernels read strided inputs;
* the rotary phases as one complex multiplication over Q and K together (:func:`rotate`);
* the output projection with the block's shortcut and layer scale folded in
  (:func:`~mmrmt.models.layers.fused_ops.fused_linear`: oneDNN post-ops at CPU inference);
* the decay and rotary tables cached per stage, input size, device and dtype
  (:class:`~mmrmt.models.layers.position.RetentionPosition`);
* on the CPU in float32, the attention of ``mmrmt._ext``
  (:mod:`~mmrmt.models.layers.decay_attention`), which makes the decay inside the kernel from
  the token indices (no mask) and runs the decomposed form's two passes, forward and backward,
  as one autograd function;
* elsewhere (CUDA, other dtypes, traced graphs, no compiled extension)
  ``scaled_dot_product_attention`` with the decay as an additive 4-D mask, which selects the
  fused flash kernel on CPU (never materialising the attention weights) and the
  memory-efficient or cuDNN kernel on CUDA;
* there, for full MaSA over many tokens, the decay mask built blockwise from the two axis tables
  (:func:`blockwise_full_attention`) instead of a (heads, HW, HW) table.

``impl='flex'`` is ``'fast'`` with the decay computed inside a FlexAttention kernel from the token
indices (:mod:`~mmrmt.models.layers.flex_attention`): no mask tensor, compiled on CUDA. Where
FlexAttention cannot run (CPU training, a torch without it, other dtypes) it runs ``'fast'``.

The benchmark, ``tools/benchmark.py``, and ``docs/benchmarks.md`` compare the two.
"""

from typing import Callable, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .decay_attention import decay_kernel_runs, decomposed_decay_attention, full_decay_attention
from .depthwise_conv import DepthwiseConv2d
from .flex_attention import flex_decomposed_attention, flex_full_attention, flex_runs
from .fused_ops import fused_linear
from .position import RetentionTables

ATTENTION_IMPLS = ("fast", "reference", "flex")


def check_attention_impl(impl: str, name: str = "attention impl") -> str:
    """Return ``impl`` if it is one of :data:`ATTENTION_IMPLS`, else raise naming it.

    The one check of an implementation name, for the MaSA modules, their stages, the backbone's
    ``attn_impl`` and :func:`~mmrmt.models.set_attention_impl`.

    Args:
        impl (str): The name to check.
        name (str): What the message calls it, e.g. ``'attn_impl'`` for the backbone option.

    Raises:
        ValueError: ``impl`` is not an implementation.
    """
    if impl not in ATTENTION_IMPLS:
        raise ValueError(f"{name} must be one of {ATTENTION_IMPLS}, got {impl!r}")
    return impl


def rotate_every_two(x: Tensor) -> Tensor:
    """Map each channel pair ``(x0, x1)`` to ``(-x1, x0)`` along the last dim."""
    pairs = x.unflatten(-1, (-1, 2))
    return torch.stack((-pairs[..., 1], pairs[..., 0]), dim=-1).flatten(-2)


def theta_shift(x: Tensor, sin: Tensor, cos: Tensor) -> Tensor:
    """Apply RetNet's rotary phases: ``x * cos + rotate_every_two(x) * sin``."""
    return x * cos + rotate_every_two(x) * sin


class ManhattanSelfAttention(nn.Module):
    """MaSA over a (B, H, W, C) map, full or decomposed along the two axes.

    Args:
        embed_dim (int): Channels ``C``.
        num_heads (int): Heads; must divide ``C`` into an even head dim.
        decomposed (bool): Attend along the width, then the height, instead of over all tokens.
        impl (str): ``'fast'``, ``'reference'`` or ``'flex'`` (``'fast'`` with the decay made
            inside a FlexAttention kernel); the same function every way.
    """

    def __init__(
        self, embed_dim: int, num_heads: int, decomposed: bool, impl: str = "fast"
    ) -> None:
        super().__init__()
        if embed_dim % num_heads or (embed_dim // num_heads) % 2:
            raise ValueError(
                f"num_heads={num_heads} must divide embed_dim={embed_dim} into an even head dim"
            )
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.head_dim = embed_dim // num_heads
        self.scaling = self.head_dim**-0.5
        self.decomposed = decomposed
        self.impl = impl
        self.q_proj = nn.Linear(embed_dim, embed_dim)
        self.k_proj = nn.Linear(embed_dim, embed_dim)
        self.v_proj = nn.Linear(embed_dim, embed_dim)
        self.lepe = DepthwiseConv2d(embed_dim, 5)
        self.out_proj = nn.Linear(embed_dim, embed_dim)
        #: Called as ``weights_recorder(self, axis, weights)`` with each softmax of the reference
        #: path: ``'width'`` (B, H, heads, W, W), ``'height'`` (B, W, heads, H, H) or ``'full'``
        #: (B, heads, HW, HW). None records nothing; see :mod:`mmrmt.visualization.attention`.
        self.weights_recorder: Optional[Callable[[nn.Module, str, Tensor], None]] = None

    @property
    def impl(self) -> str:
        """Which implementation ``forward`` runs: ``'fast'``, ``'reference'`` or ``'flex'``."""
        return self._impl

    @impl.setter
    def impl(self, value: str) -> None:
        self._impl = check_attention_impl(value)

    def forward(
        self,
        x: Tensor,
        tables: RetentionTables,
        residual: Optional[Tensor] = None,
        output_scale: Optional[Tensor] = None,
    ) -> Tensor:
        """Attend over ``x``: ``residual + output_scale * MaSA(x)``.

        Args:
            x (Tensor): (B, H, W, C) normalised features.
            tables (RetentionTables): decay masks and rotary phases for (H, W).
            residual (Tensor | None): (B, H, W, C) added to the output (the block's shortcut),
                which the fast form adds inside ``out_proj``'s kernel where it can.
            output_scale (Tensor | None): Layer scale (C values) of the output, which the fast
                form folds into ``out_proj``.

        Returns:
            Tensor: (B, H, W, C).
        """
        if self._impl == "reference":
            return self.forward_reference(x, tables, residual, output_scale)
        return self.forward_fast(x, tables, residual, output_scale)

    # -- reference: the formulas, one step each -------------------------------------------------
    def forward_reference(
        self,
        x: Tensor,
        tables: RetentionTables,
        residual: Optional[Tensor] = None,
        output_scale: Optional[Tensor] = None,
    ) -> Tensor:
        """Straightforward MaSA (the authors' formulation); see :meth:`forward`."""
        batch, height, width, _ = x.shape
        heads = self.num_heads
        q = self.q_proj(x)
        k = self.k_proj(x) * self.scaling
        v = self.v_proj(x)
        lepe = self.lepe(v)
        # (B, heads, H, W, d)
        q = q.view(batch, height, width, heads, -1).permute(0, 3, 1, 2, 4)
        k = k.view(batch, height, width, heads, -1).permute(0, 3, 1, 2, 4)
        q = theta_shift(q, tables.sin, tables.cos)
        k = theta_shift(k, tables.sin, tables.cos)
        v = v.view(batch, height, width, heads, -1).permute(0, 3, 1, 2, 4)
        if self.decomposed:
            # Along the width: rows are independent, (B, H, heads, W, d).
            q_rows, k_rows = q.transpose(1, 2), k.transpose(1, 2)
            weights = torch.softmax(q_rows @ k_rows.transpose(-1, -2) + tables.decay_width, -1)
            self._record("width", weights)
            v = weights @ v.transpose(1, 2)
            # Along the height of that result: columns are independent, (B, W, heads, H, d).
            q_cols, k_cols = q.permute(0, 3, 1, 2, 4), k.permute(0, 3, 1, 2, 4)
            weights = torch.softmax(q_cols @ k_cols.transpose(-1, -2) + tables.decay_height, -1)
            self._record("height", weights)
            out = weights @ v.permute(0, 3, 2, 1, 4)
            out = out.permute(0, 3, 1, 2, 4).reshape(batch, height, width, -1)
        else:
            q, k, v = q.flatten(2, 3), k.flatten(2, 3), v.flatten(2, 3)  # (B, heads, HW, d)
            weights = torch.softmax(q @ k.transpose(-1, -2) + tables.decay_full, -1)
            self._record("full", weights)
            out = (weights @ v).transpose(1, 2).reshape(batch, height, width, -1)
        out = self.out_proj(out + lepe)
        if output_scale is not None:
            out = output_scale * out
        return out if residual is None else residual + out

    def _record(self, axis: str, weights: Tensor) -> None:
        if self.weights_recorder is not None:
            self.weights_recorder(self, axis, weights)

    # -- fast ---------------------------------------------------------------------------------
    def forward_fast(
        self,
        x: Tensor,
        tables: RetentionTables,
        residual: Optional[Tensor] = None,
        output_scale: Optional[Tensor] = None,
    ) -> Tensor:
        """Fused MaSA; the same function as :meth:`forward_reference`."""
        batch, height, width, channels = x.shape
        # Q and K in one product and rotated together in one pass; V in a product of its own,
        # so that LePE's depthwise conv reads a dense channels-last map (a strided slice of a
        # fused Q/K/V output made it several times slower, forward and backward).
        weight = torch.cat((self.q_proj.weight, self.k_proj.weight))
        bias = torch.cat((self.q_proj.bias, self.k_proj.bias))
        split = (batch, height, width, self.num_heads, self.head_dim)
        qk = rotate(fused_linear(x, weight, bias).view(batch, height, width, 2, *split[3:]), tables)
        q, k = qk.unbind(3)
        v = fused_linear(x, self.v_proj.weight, self.v_proj.bias)
        lepe = self.lepe(v)
        # (B, H, W, heads, d) views throughout: the attention kernels read strided inputs, so
        # heads never need a permute copy.
        v = v.view(split)
        if self._impl == "flex" and flex_runs(q, k, v):
            flex = flex_decomposed_attention if self.decomposed else flex_full_attention
            out = flex(q, k, v, tables.decay_rates, self.scaling)
        elif attention_kernel_runs(q, tables.decay_rates):
            if self.decomposed:
                out = decomposed_decay_attention(qk, v, tables.decay_rates, self.scaling)
            else:
                out = full_decay_attention(q, k, v, tables.decay_rates, self.scaling)
        elif self.decomposed:
            out = decomposed_attention(
                q, k, v, tables.decay_height, tables.decay_width, self.scaling
            )
        elif tables.decay_full is not None:
            out = full_attention(q, k, v, tables.decay_full, self.scaling)
        else:
            out = blockwise_full_attention(
                q, k, v, tables.decay_height, tables.decay_width, self.scaling
            )
        # ``lepe`` first: the sum takes its (contiguous) layout, which ``out_proj`` needs.
        out = lepe + out.reshape(batch, height, width, channels)
        return fused_linear(
            out, self.out_proj.weight, self.out_proj.bias, residual=residual, scale=output_scale
        )


def rotate(x: Tensor, tables: RetentionTables) -> Tensor:
    """Apply the rotary phases to (B, H, W, ..., d) queries or keys, e.g. (B, H, W, heads, d).

    The theta shift turns each channel pair by the token's angle, i.e. multiplies it as a
    complex number by ``cos + i sin``: one pass over ``x`` instead of the five of
    :func:`theta_shift`. dtypes without a complex counterpart (bf16) use :func:`theta_shift`, and
    so do exported graphs (ONNX has no complex tensors; their tables carry no ``rotation``).

    Args:
        x (Tensor): (B, H, W, ..., d), the channels of a pair adjacent; the dims between W and d
            (heads; or Q/K and heads, to rotate both in one pass) share each token's phases.
        tables (RetentionTables): the stage's tables for (H, W).

    Returns:
        Tensor: The shape of ``x``, contiguous.
    """
    per_token = (x.shape[1], x.shape[2]) + (1,) * (x.dim() - 4)
    if tables.rotation is not None and x.dtype == tables.sin.dtype:
        pairs = torch.view_as_complex(x.unflatten(-1, (-1, 2)))
        rotation = tables.rotation.view(*per_token, -1)
        return torch.view_as_real(pairs * rotation).flatten(-2)
    return theta_shift(x, tables.sin.view(*per_token, -1), tables.cos.view(*per_token, -1))


# -- fast attention kernels over (B, H, W, heads, d) maps ------------------------------------------
# ``scaled_dot_product_attention`` takes (batch, heads, tokens, d) views with any strides. On CPU
# it runs a fused, memory-efficient (flash) kernel only when the float mask is 4-D (a 3-D mask
# falls back to the unfused math path, which materialises the weights); CUDA picks its
# memory-efficient kernel (fp32) or cuDNN attention (bf16), both taking the decay as an additive
# bias. SDPA scales the logits before adding the mask, as MaSA does.


def attention_kernel_runs(queries: Tensor, decay_rates: Optional[Tensor]) -> bool:
    """Whether the fast form attends through ``mmrmt._ext``'s decay kernel
    (:mod:`~mmrmt.models.layers.decay_attention`): it needs the decay rates, a float32 CPU input
    and the compiled extension, outside traced graphs; elsewhere SDPA with a mask runs."""
    return decay_rates is not None and decay_kernel_runs(queries)


def _attend(queries: Tensor, keys: Tensor, values: Tensor, decay: Tensor, scale: float) -> Tensor:
    """SDPA over (N, heads, L, d) views with a (heads, Lq, Lk) decay; returns (N, Lq, heads, d)."""
    out = F.scaled_dot_product_attention(queries, keys, values, attn_mask=decay[None], scale=scale)
    return out.transpose(1, 2)


def decomposed_attention(
    q: Tensor, k: Tensor, v: Tensor, decay_height: Tensor, decay_width: Tensor, scale: float
) -> Tensor:
    """Attend along the width with ``decay_width``, then along the height with ``decay_height``.

    Args:
        q, k, v (Tensor): (B, H, W, heads, d) rotated queries and keys, values.
        decay_height (Tensor): (heads, H, H).
        decay_width (Tensor): (heads, W, W).
        scale (float): Logit scaling, ``head_dim ** -0.5``.

    Returns:
        Tensor: (B, H, W, heads, d), possibly non-contiguous.
    """
    batch, height, width, heads, head_dim = q.shape

    def rows(t: Tensor) -> Tensor:  # (B*H, heads, W, d): a view
        return t.reshape(batch * height, width, heads, head_dim).transpose(1, 2)

    def columns(t: Tensor) -> Tensor:  # (B*W, heads, H, d): a view when B == 1
        return t.transpose(1, 2).reshape(batch * width, height, heads, head_dim).transpose(1, 2)

    out = _attend(rows(q), rows(k), rows(v), decay_width, scale).reshape(q.shape)
    out = _attend(columns(q), columns(k), columns(out), decay_height, scale)
    return out.reshape(batch, width, height, heads, head_dim).transpose(1, 2)


def full_attention(q: Tensor, k: Tensor, v: Tensor, decay_full: Tensor, scale: float) -> Tensor:
    """Attend over all tokens with a precomputed (heads, HW, HW) decay.

    Args:
        q, k, v (Tensor): (B, H, W, heads, d).
        decay_full (Tensor): (heads, HW, HW).
        scale (float): Logit scaling.

    Returns:
        Tensor: (B, HW, heads, d).
    """

    def tokens(t: Tensor) -> Tensor:  # (B, heads, HW, d): a view
        return t.flatten(1, 2).transpose(1, 2)

    return _attend(tokens(q), tokens(k), tokens(v), decay_full, scale)


# On CPU a query block's mask stays within glibc's heap (mmap threshold <= 32 MiB) and near the
# caches; bigger, freshly mapped blocks cost a page fault per 4 KiB on every call. On a GPU, fewer
# and larger blocks keep the kernel launches few.
BLOCK_MASK_BYTES = 16 * 2**20
ACCELERATOR_BLOCK_MASK_BYTES = 256 * 2**20


def blockwise_full_attention(
    q: Tensor, k: Tensor, v: Tensor, decay_height: Tensor, decay_width: Tensor, scale: float
) -> Tensor:
    """Full attention without the (heads, HW, HW) mask: one block of query rows at a time.

    The Manhattan decay splits over the axes, ``decay_height[:, yq, yk] + decay_width[:, xq, xk]``,
    so each block's mask is one broadcast add of the two small axis tables.

    Args:
        q, k, v (Tensor): (B, H, W, heads, d).
        decay_height (Tensor): (heads, H, H).
        decay_width (Tensor): (heads, W, W).
        scale (float): Logit scaling.

    Returns:
        Tensor: (B, HW, heads, d).
    """
    batch, height, width, heads, head_dim = q.shape
    tokens = height * width
    row_bytes = heads * width * tokens * q.element_size()
    budget = BLOCK_MASK_BYTES if q.device.type == "cpu" else ACCELERATOR_BLOCK_MASK_BYTES
    rows_per_block = max(1, budget // row_bytes)
    keys = k.flatten(1, 2).transpose(1, 2)
    values = v.flatten(1, 2).transpose(1, 2)
    # Without autograd one mask buffer serves every block; with it each block's mask is saved
    # for the backward pass, so it needs its own.
    reuse = not torch.is_grad_enabled()
    buffer = q.new_empty(heads, rows_per_block, width, height, width) if reuse else None
    blocks = []
    for start in range(0, height, rows_per_block):
        stop = min(start + rows_per_block, height)
        mask_parts = (decay_height[:, start:stop, None, :, None], decay_width[:, None, :, None, :])
        if reuse:
            mask = torch.add(*mask_parts, out=buffer[:, : stop - start])
        else:
            mask = torch.add(*mask_parts)
        queries = q[:, start:stop].flatten(1, 2).transpose(1, 2)
        blocks.append(_attend(queries, keys, values, mask.view(heads, -1, tokens), scale))
    return torch.cat(blocks, dim=1)
