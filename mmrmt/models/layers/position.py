"""Per-stage position tables of Manhattan Self-Attention: decay masks and rotary phases.

RMT decays attention with the Manhattan distance between tokens: head ``h`` of ``H`` uses
``gamma_h = 1 - 2 ** (-a - b * h / H)`` (``a`` the initial value, ``b`` the heads range;
:func:`~mmrmt.arch_zoo.head_decay_rates`) and adds
``log(gamma_h) * (|y_n - y_m| + |x_n - x_m|)`` to the attention logits. Queries and keys also get
RetNet's rotary "theta shift" over the raster index of the token.
"""

from collections import OrderedDict
from typing import NamedTuple, Optional, Tuple

import torch
from torch import Tensor, nn

from ...arch_zoo import head_decay_rates


def rotary_frequencies(head_dim: int) -> Tensor:
    """Return RetNet's rotary angle per channel of a head, each shared by a channel pair.

    Args:
        head_dim (int): Channels per head (even).

    Returns:
        Tensor: (head_dim,) float32 ``[f0, f0, f1, f1, ...]``.
    """
    frequencies = 1.0 / (10000 ** torch.linspace(0, 1, head_dim // 2))
    return frequencies.repeat_interleave(2)


def manhattan_distance(height: int, width: int, device: Optional[torch.device] = None) -> Tensor:
    """Return the Manhattan distance between every pair of raster-ordered grid positions.

    Args:
        height (int): Grid height.
        width (int): Grid width.
        device (torch.device | None): Where to build it (CPU by default).

    Returns:
        Tensor: (height * width, height * width) float32.
    """
    rows = torch.arange(height, dtype=torch.float32, device=device)
    cols = torch.arange(width, dtype=torch.float32, device=device)
    grid = torch.stack(torch.meshgrid(rows, cols, indexing="ij"), dim=-1).reshape(-1, 2)
    return (grid[:, None, :] - grid[None, :, :]).abs().sum(dim=-1)


def axis_distance(length: int, device: Optional[torch.device] = None) -> Tensor:
    """Return ``|i - j|`` for positions along one axis: (length, length) float32."""
    index = torch.arange(length, dtype=torch.float32, device=device)
    return (index[:, None] - index[None, :]).abs()


def is_exporting() -> bool:
    """Whether ``torch.onnx.export`` or ``torch.export`` is tracing the model."""
    return torch.onnx.is_in_onnx_export() or torch.compiler.is_exporting()


def in_traced_graph() -> bool:
    """Whether a tracer records the model: ONNX or ``torch.export``, ``torch.compile``, or
    ``torch.jit.trace`` (the FLOP counter's). Such graphs keep PyTorch's plain ops, which their
    backends fuse and their counters know, instead of this package's eager-only kernels."""
    return is_exporting() or torch.compiler.is_compiling() or torch.jit.is_tracing()


# 512 MiB keeps the fp32 full mask of RMT-T's third stage at detection sizes up to 800x1216
# (8 heads x 3800^2 tokens, 462 MB): one fused attention call over a cached mask beats building
# the mask blockwise in every block (docs/benchmarks.md); beyond it memory comes first.
FULL_MASK_LIMIT = 512 * 2**20
#: Bytes a stage's table cache may hold before it drops its oldest sizes: room for one full
#: mask of :data:`FULL_MASK_LIMIT` and the small tables of a few more sizes.
CACHE_LIMIT = 512 * 2**20


class RetentionTables(NamedTuple):
    """What one stage's attention needs for one input size.

    Attributes:
        sin (Tensor): (H, W, head_dim) rotary sines over the raster index.
        cos (Tensor): (H, W, head_dim) rotary cosines.
        decay_full (Tensor | None): (heads, H*W, H*W) ``log(gamma) * Manhattan distance``
            for full MaSA; None for the decomposed form, and for a full stage whose mask would
            exceed the cache's ``full_mask_limit`` (the fast path then builds it blockwise from
            the two axis tables).
        decay_height (Tensor): (heads, H, H) 1-D decay along the height.
        decay_width (Tensor): (heads, W, W) 1-D decay along the width. The full mask is
            ``decay_height[:, yq, yk] + decay_width[:, xq, xk]``.
        rotation (Tensor | None): (H, W, head_dim / 2) ``cos + i sin`` of each channel pair,
            complex; None for dtypes without a complex counterpart (bf16).
        decay_rates (Tensor | None): (heads,) ``log(gamma_h)``, from which the FlexAttention
            kernels make the decay from token indices; always set by
            :meth:`RetentionPosition.compute`.
    """

    sin: Tensor
    cos: Tensor
    decay_full: Optional[Tensor]
    decay_height: Tensor
    decay_width: Tensor
    rotation: Optional[Tensor]
    decay_rates: Optional[Tensor] = None


class RetentionPosition(nn.Module):
    """Build (and cache) the decay masks and rotary tables of one stage.

    The tables depend only on the stage's settings and the feature size, so they are computed
    once per size, device and dtype and shared by every block of the stage. The decay rates and
    angles are derived from the settings, so they are not part of the state dict.

    Args:
        embed_dim (int): Channels of the stage.
        num_heads (int): Heads of the stage.
        initial_value (float): ``a`` of the decay formula. Default: 2.
        heads_range (float): ``b`` of the decay formula. Default: 4.
        decomposed (bool): Build 1-D masks per axis instead of the full 2-D one.
        cache_size (int): How many input sizes to keep tables for. Default: 4.
        full_mask_limit (int): Largest full mask, in bytes, that is built and cached; the fast
            attention builds larger ones blockwise from the axis tables, and ``'flex'`` (limit
            0) builds none. Default: :data:`FULL_MASK_LIMIT`.
        cache_limit (int): Bytes the cached tables may hold: beyond it the oldest sizes are
            dropped (the newest is always kept), so a few large inputs cannot pin several masks.
            Default: :data:`CACHE_LIMIT`.
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        initial_value: float = 2.0,
        heads_range: float = 4.0,
        decomposed: bool = False,
        cache_size: int = 4,
        full_mask_limit: int = FULL_MASK_LIMIT,
        cache_limit: int = CACHE_LIMIT,
    ) -> None:
        super().__init__()
        self.decomposed = decomposed
        self.cache_size = cache_size
        self.full_mask_limit = full_mask_limit
        self.cache_limit = cache_limit
        self.register_buffer(
            "decay", head_decay_rates(num_heads, initial_value, heads_range), persistent=False
        )
        self.register_buffer("angle", rotary_frequencies(embed_dim // num_heads), persistent=False)
        self._cache: OrderedDict[tuple, RetentionTables] = OrderedDict()

    def compute(
        self,
        height: int,
        width: int,
        dtype: torch.dtype,
        full_mask_limit: Optional[int] = None,
    ) -> RetentionTables:
        """Compute the tables for an ``height`` x ``width`` feature map, without caching.

        Phases are computed in float32 (as the authors do) and then cast to ``dtype``.

        Args:
            height (int): Feature height.
            width (int): Feature width.
            dtype (torch.dtype): dtype of the returned tables.
            full_mask_limit (int | None): For a full stage, skip ``decay_full`` when it would
                take more bytes than this; None always builds it.

        Returns:
            RetentionTables: tables on the buffers' device.
        """
        decay = self.decay.float()
        device = decay.device
        index = torch.arange(height * width, device=device, dtype=torch.float32)
        phase = (index[:, None] * self.angle.float()[None, :]).reshape(height, width, -1)
        sin, cos = torch.sin(phase).to(dtype), torch.cos(phase).to(dtype)
        decay_height = (decay[:, None, None] * axis_distance(height, device)).to(dtype)
        decay_width = (decay[:, None, None] * axis_distance(width, device)).to(dtype)
        decay_full = None
        mask_bytes = decay.numel() * (height * width) ** 2 * decay_height.element_size()
        if not self.decomposed and (full_mask_limit is None or mask_bytes <= full_mask_limit):
            distance = manhattan_distance(height, width, device)
            decay_full = (decay[:, None, None] * distance).to(dtype)
        rotation = None
        # ONNX has no complex tensors: an exported graph rotates with the real sin/cos tables.
        if dtype in (torch.float32, torch.float64) and not is_exporting():
            # Both channels of a pair share one angle.
            rotation = torch.complex(cos[..., 0::2], sin[..., 0::2])
        decay_rates = decay.to(dtype)
        return RetentionTables(
            sin, cos, decay_full, decay_height, decay_width, rotation, decay_rates
        )

    @torch.no_grad()
    def forward(
        self, height: int, width: int, dtype: torch.dtype, full_mask: bool = True
    ) -> RetentionTables:
        """Return the cached tables for this size, device and dtype, computing them if new.

        Args:
            height (int): Feature height.
            width (int): Feature width.
            dtype (torch.dtype): dtype the attention runs in.
            full_mask (bool): Whether a full stage's attention reads ``decay_full`` (up to
                ``full_mask_limit``); False where a kernel makes the decay itself, which then
                builds and caches no (heads, HW, HW) mask.

        Returns:
            RetentionTables: tables on the buffers' device.
        """
        if is_exporting():
            # One exported file serves every input size: its graph computes the tables from the
            # traced size, full masks included (the blockwise loop would freeze the size).
            return self.compute(height, width, dtype)
        if torch.compiler.is_compiling():
            # A compiled model builds the tables inside its graph: a lookup in this dict would
            # guard on every cached size and recompile the model for each new one.
            return self.compute(height, width, dtype, self.full_mask_limit)
        key: Tuple = (height, width, self.decay.device, dtype, full_mask)
        tables = self._cache.get(key)
        if tables is None:
            tables = self.compute(height, width, dtype, self.full_mask_limit if full_mask else 0)
            self._cache[key] = tables
            while len(self._cache) > self.cache_size or (
                len(self._cache) > 1 and self.cached_bytes() > self.cache_limit
            ):
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(key)
        return tables

    def cached_bytes(self) -> int:
        """Bytes held by the cached tables."""
        return sum(
            table.numel() * table.element_size()
            for tables in self._cache.values()
            for table in tables
            if table is not None
        )

    def clear_cache(self) -> None:
        """Drop every cached table (e.g. to free memory after a large input)."""
        self._cache.clear()

    def _apply(self, fn, recurse=True):
        # .to()/.cuda()/.half() change the buffers: tables built from the old ones are stale.
        self.clear_cache()
        return super()._apply(fn, recurse)
