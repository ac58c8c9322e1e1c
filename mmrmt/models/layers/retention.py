"""Manhattan Self-Attention (MaSA), full and decomposed, in a fast and a reference form.

Both forms share one set of weights in the authors' layout (``q_proj``, ``k_proj``, ``v_proj``,
``lepe``, ``out_proj``) and compute the same function:

* full MaSA: ``softmax(Q K^T / sqrt(d) + log(gamma) * ManhattanDistance) V``;
* decomposed MaSA: the same along the width with ``log(gamma) * |x_n - x_m|``, then along the
  height of the result with ``log(gamma) * |y_n - y_m|``;

with rotary phases on Q and K and LePE (a 5x5 depthwise conv of V) added to the output.
``impl='reference'`` follows the formulas step by step (the correctness oracle and benchmark
baseline); ``impl='fast'`` fuses the projections, folds the key scaling and the rotary pair swap
into the projection weights and runs both attention passes through
``scaled_dot_product_attention`` with the decay as an additive mask.
"""

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .position import RetentionTables

ATTENTION_IMPLS = ("fast", "reference")


def rotate_every_two(x: Tensor) -> Tensor:
    """Map each channel pair ``(x0, x1)`` to ``(-x1, x0)`` along the last dim."""
    pairs = x.unflatten(-1, (-1, 2))
    return torch.stack((-pairs[..., 1], pairs[..., 0]), dim=-1).flatten(-2)


def theta_shift(x: Tensor, sin: Tensor, cos: Tensor) -> Tensor:
    """Apply RetNet's rotary phases: ``x * cos + rotate_every_two(x) * sin``."""
    return x * cos + rotate_every_two(x) * sin


class DepthwiseConv2d(nn.Module):
    """Depthwise conv applied to channels-last maps (kept as ``.conv`` for the authors' keys).

    Args:
        channels (int): Channels in and out.
        kernel_size (int): Square kernel size; padding keeps the size.
    """

    def __init__(self, channels: int, kernel_size: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, kernel_size, 1, kernel_size // 2, groups=channels)

    def forward(self, x: Tensor) -> Tensor:
        """x (Tensor): (B, H, W, C). Returns (B, H, W, C)."""
        return self.conv(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)


class ManhattanSelfAttention(nn.Module):
    """MaSA over a (B, H, W, C) map, full or decomposed along the two axes.

    Args:
        embed_dim (int): Channels ``C``.
        num_heads (int): Heads; must divide ``C`` into an even head dim.
        decomposed (bool): Attend along the width, then the height, instead of over all tokens.
        impl (str): ``'fast'`` or ``'reference'``; the same function either way.
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

    @property
    def impl(self) -> str:
        """Which implementation ``forward`` runs: ``'fast'`` or ``'reference'``."""
        return self._impl

    @impl.setter
    def impl(self, value: str) -> None:
        if value not in ATTENTION_IMPLS:
            raise ValueError(f"attention impl must be one of {ATTENTION_IMPLS}, got {value!r}")
        self._impl = value

    def forward(self, x: Tensor, tables: RetentionTables) -> Tensor:
        """Attend over ``x``.

        Args:
            x (Tensor): (B, H, W, C) normalised features.
            tables (RetentionTables): decay masks and rotary phases for (H, W).

        Returns:
            Tensor: (B, H, W, C).
        """
        if self._impl == "reference":
            return self.forward_reference(x, tables)
        return self.forward_fast(x, tables)

    # -- reference: the formulas, one step each -------------------------------------------------
    def forward_reference(self, x: Tensor, tables: RetentionTables) -> Tensor:
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
            v = weights @ v.transpose(1, 2)
            # Along the height of that result: columns are independent, (B, W, heads, H, d).
            q_cols, k_cols = q.permute(0, 3, 1, 2, 4), k.permute(0, 3, 1, 2, 4)
            weights = torch.softmax(q_cols @ k_cols.transpose(-1, -2) + tables.decay_height, -1)
            out = weights @ v.permute(0, 3, 2, 1, 4)
            out = out.permute(0, 3, 1, 2, 4).reshape(batch, height, width, -1)
        else:
            q, k, v = q.flatten(2, 3), k.flatten(2, 3), v.flatten(2, 3)  # (B, heads, HW, d)
            weights = torch.softmax(q @ k.transpose(-1, -2) + tables.decay_full, -1)
            out = (weights @ v).transpose(1, 2).reshape(batch, height, width, -1)
        return self.out_proj(out + lepe)

    # -- fast ---------------------------------------------------------------------------------
    def _fused_qkv_weights(self) -> tuple:
        """Stack [q, rot(q), k*s, rot(k)*s, v] projections so one matmul gives all five.

        ``rotate_every_two`` is linear per output channel pair, so it can be applied to the
        weight rows instead of the activations; the key scaling folds in the same way.
        """
        k_weight = self.k_proj.weight * self.scaling
        k_bias = self.k_proj.bias * self.scaling
        weight = torch.cat(
            (
                self.q_proj.weight,
                rotate_every_two(self.q_proj.weight.t()).t(),
                k_weight,
                rotate_every_two(k_weight.t()).t(),
                self.v_proj.weight,
            )
        )
        bias = torch.cat(
            (
                self.q_proj.bias,
                rotate_every_two(self.q_proj.bias),
                k_bias,
                rotate_every_two(k_bias),
                self.v_proj.bias,
            )
        )
        return weight, bias

    def forward_fast(self, x: Tensor, tables: RetentionTables) -> Tensor:
        """Fused MaSA; the same function as :meth:`forward_reference`."""
        batch, height, width, channels = x.shape
        heads, head_dim = self.num_heads, self.head_dim
        weight, bias = self._fused_qkv_weights()
        q, q_rot, k, k_rot, v = F.linear(x, weight, bias).split(channels, dim=-1)
        sin = tables.sin.repeat(1, 1, heads)  # (H, W, C): the same phases for every head
        cos = tables.cos.repeat(1, 1, heads)
        q = torch.addcmul(q * cos, q_rot, sin).view(batch, height, width, heads, head_dim)
        k = torch.addcmul(k * cos, k_rot, sin).view(batch, height, width, heads, head_dim)
        lepe = self.lepe(v)
        v = v.view(batch, height, width, heads, head_dim)
        if self.decomposed:
            # Along the width: (B*H, heads, W, d).
            def rows(t: Tensor) -> Tensor:
                return t.permute(0, 1, 3, 2, 4).reshape(batch * height, heads, width, head_dim)

            # Along the height: (B*W, heads, H, d).
            def cols(t: Tensor) -> Tensor:
                return t.permute(0, 2, 3, 1, 4).reshape(batch * width, heads, height, head_dim)

            out = F.scaled_dot_product_attention(
                rows(q), rows(k), rows(v), attn_mask=tables.decay_width, scale=1.0
            )
            out = out.view(batch, height, heads, width, head_dim).permute(0, 3, 2, 1, 4)
            out = out.reshape(batch * width, heads, height, head_dim)
            out = F.scaled_dot_product_attention(
                cols(q), cols(k), out, attn_mask=tables.decay_height, scale=1.0
            )
            out = out.view(batch, width, heads, height, head_dim).permute(0, 3, 1, 2, 4)
        else:

            def tokens(t: Tensor) -> Tensor:
                return t.flatten(1, 2).transpose(1, 2)  # (B, heads, HW, d)

            out = F.scaled_dot_product_attention(
                tokens(q), tokens(k), tokens(v), attn_mask=tables.decay_full, scale=1.0
            )
            out = out.transpose(1, 2)
        out = out.reshape(batch, height, width, channels)
        return self.out_proj(out + lepe)
