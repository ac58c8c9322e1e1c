"""MaSA kernels that compute the Manhattan decay inside the attention (FlexAttention).

``torch.nn.attention.flex_attention`` hands each (already scaled) logit to a ``score_mod``
together with its batch, head, query index and key index, so the decay of RMT needs no mask
tensor at all:

* decomposed MaSA, each axis pass: ``score + log(gamma_h) * |i - j|``;
* full MaSA over the raster index ``n = y * W + x`` of an (H, W) map:
  ``score + log(gamma_h) * (|y_q - y_k| + |x_q - x_k|)`` with ``y = n // W`` and ``x = n % W``.

Where they run (:func:`flex_runs` decides, :class:`ManhattanSelfAttention` falls back to the SDPA
kernels of ``'fast'`` otherwise):

* **CUDA**: compiled (``torch.compile(..., dynamic=True)``) into fused Triton kernels, forward
  and backward, fp32, bf16 and fp16. The decay is never in memory and the float mask that keeps
  SDPA off its flash kernel is gone. Batch and token counts are symbolic, so detection batches
  that change size every step reuse one compiled variant; FlexAttention fixes the heads and the
  head dim, and torch the dtype, the grad mode and sizes of 1 (batch 1 of full MaSA), so a model
  compiles a variant per stage shape for each of those it meets (RMT-S trained in fp16 and
  validated in fp32 at batch 1: 6 decomposed, 2 full). :func:`compiled_variants` counts them.
* **CPU**: eagerly, forward only: an unfused reference that materialises the logits. It is there
  to check the kernels against the reference; compiled at RMT-S shapes it is still slower than
  SDPA (docs/benchmarks.md), so the CPU keeps ``'fast'``. FlexAttention has no CPU backward,
  so a CPU forward whose inputs need gradients takes SDPA.
* without FlexAttention in torch (an ImportError), or in another dtype (e.g. float64): SDPA.
"""

import functools
from typing import Callable, Dict

import torch
from torch import Tensor

try:
    from torch.nn.attention.flex_attention import flex_attention
except ImportError:  # torch < 2.5
    flex_attention = None

#: Whether this torch has FlexAttention.
FLEX_AVAILABLE = flex_attention is not None

#: dtypes the FlexAttention kernels take (after autocast).
FLEX_DTYPES = (torch.float32, torch.bfloat16, torch.float16)

#: Devices where :func:`flex_runs` lets FlexAttention run: compiled on CUDA, eagerly on the CPU.
FLEX_DEVICES = ("cuda", "cpu")

ScoreMod = Callable[[Tensor, Tensor, Tensor, Tensor, Tensor], Tensor]


def axis_decay_score_mod(decay: Tensor) -> ScoreMod:
    """The 1-D decay of one axis pass: ``score + log(gamma_h) * |i - j|``.

    Args:
        decay (Tensor): (heads,) float32 ``log(gamma_h)``.

    Returns:
        Callable: a FlexAttention ``score_mod``.
    """

    def score_mod(score: Tensor, batch: Tensor, head: Tensor, query: Tensor, key: Tensor):
        return score + decay[head] * (query - key).abs()

    return score_mod


def manhattan_decay_score_mod(decay: Tensor, width: int) -> ScoreMod:
    """The 2-D decay of full MaSA over raster indices of a map ``width`` tokens wide.

    ``score + log(gamma_h) * (|y_q - y_k| + |x_q - x_k|)`` with ``y = n // width``,
    ``x = n % width``.

    Args:
        decay (Tensor): (heads,) float32 ``log(gamma_h)``.
        width (int): Width ``W`` of the map (symbolic under ``dynamic=True``).

    Returns:
        Callable: a FlexAttention ``score_mod``.
    """

    def score_mod(score: Tensor, batch: Tensor, head: Tensor, query: Tensor, key: Tensor):
        distance = (query // width - key // width).abs() + (query % width - key % width).abs()
        return score + decay[head] * distance

    return score_mod


def _decomposed(q: Tensor, k: Tensor, v: Tensor, decay: Tensor, scale: float) -> Tensor:
    batch, height, width, heads, head_dim = q.shape
    score_mod = axis_decay_score_mod(decay)

    def rows(t: Tensor) -> Tensor:  # (B*H, heads, W, d)
        return t.reshape(batch * height, width, heads, head_dim).transpose(1, 2)

    def columns(t: Tensor) -> Tensor:  # (B*W, heads, H, d)
        return t.transpose(1, 2).reshape(batch * width, height, heads, head_dim).transpose(1, 2)

    out = flex_attention(rows(q), rows(k), rows(v), score_mod=score_mod, scale=scale)
    out = out.transpose(1, 2).reshape(q.shape)
    out = flex_attention(columns(q), columns(k), columns(out), score_mod=score_mod, scale=scale)
    return out.transpose(1, 2).reshape(batch, width, height, heads, head_dim).transpose(1, 2)


def _full(q: Tensor, k: Tensor, v: Tensor, decay: Tensor, scale: float) -> Tensor:
    batch, height, width, heads, head_dim = q.shape
    # The score_mod is made here, from the map's own width, so that under ``dynamic=True`` the
    # width is symbolic too: one compiled kernel for every width.
    score_mod = manhattan_decay_score_mod(decay, width)

    def tokens(t: Tensor) -> Tensor:  # (B, heads, HW, d)
        return t.flatten(1, 2).transpose(1, 2)

    out = flex_attention(tokens(q), tokens(k), tokens(v), score_mod=score_mod, scale=scale)
    return out.transpose(1, 2)


#: Compiled variants each kernel may hold (torch's default, 8 per function, is too few for the
#: variants above; past the limit torch would run the unfused eager kernel). It applies to these
#: kernels' calls only.
RECOMPILE_LIMIT = 64


@functools.lru_cache(maxsize=None)
def _compiled(kernel: Callable) -> Callable:
    compiled = torch.compile(kernel, dynamic=True)
    return torch._dynamo.config.patch(recompile_limit=RECOMPILE_LIMIT)(compiled)


def _run(kernel: Callable, q: Tensor, k: Tensor, v: Tensor, decay: Tensor, scale: float) -> Tensor:
    # Inside a compiled model the kernel is traced into the model's graph as it is.
    if v.device.type == "cuda" and not torch.compiler.is_compiling():
        kernel = _compiled(kernel)
    # Under autocast the rotation leaves q and k in its float32 tables' dtype, while v comes out
    # of a linear layer in the autocast dtype: the kernel runs in v's (as SDPA's autocast does).
    q, k = q.to(v.dtype), k.to(v.dtype)
    return kernel(q, k, v, decay.to(device=v.device, dtype=torch.float32), scale)


def flex_decomposed_attention(
    q: Tensor, k: Tensor, v: Tensor, decay: Tensor, scale: float
) -> Tensor:
    """Attend along the width, then along the height, the 1-D decays made in the kernel.

    The same function as :func:`~mmrmt.models.layers.retention.decomposed_attention`.

    Args:
        q, k, v (Tensor): (B, H, W, heads, d) rotated queries and keys, values; it runs in
            v's dtype.
        decay (Tensor): (heads,) ``log(gamma_h)``.
        scale (float): Logit scaling, ``head_dim ** -0.5``.

    Returns:
        Tensor: (B, H, W, heads, d), possibly non-contiguous.
    """
    return _run(_decomposed, q, k, v, decay, scale)


def flex_full_attention(q: Tensor, k: Tensor, v: Tensor, decay: Tensor, scale: float) -> Tensor:
    """Attend over all tokens, the Manhattan decay made in the kernel.

    The same function as :func:`~mmrmt.models.layers.retention.full_attention`.

    Args:
        q, k, v (Tensor): (B, H, W, heads, d); it runs in v's dtype.
        decay (Tensor): (heads,) ``log(gamma_h)``.
        scale (float): Logit scaling.

    Returns:
        Tensor: (B, HW, heads, d).
    """
    return _run(_full, q, k, v, decay, scale)


def flex_runs(q: Tensor, k: Tensor, v: Tensor) -> bool:
    """Whether the FlexAttention kernels can take these queries, keys and values.

    Args:
        q, k, v (Tensor): The attention inputs; the kernels run in v's dtype.

    Returns:
        bool: False without FlexAttention, when v's dtype is not in :data:`FLEX_DTYPES`, on a
        device outside :data:`FLEX_DEVICES`, and on the CPU when an input needs gradients
        (FlexAttention has no CPU backward).
    """
    if not FLEX_AVAILABLE or v.dtype not in FLEX_DTYPES or v.device.type not in FLEX_DEVICES:
        return False
    return v.device.type != "cpu" or not (q.requires_grad or k.requires_grad or v.requires_grad)


def compiled_variants() -> Dict[str, int]:
    """How many compiled variants each FlexAttention kernel holds (CUDA compiles them).

    A count that grows with every new input size means recompiling per size; run with
    ``TORCH_LOGS=recompiles`` to see which guard failed. Past :data:`RECOMPILE_LIMIT` variants
    a kernel runs uncompiled.

    Returns:
        dict: ``{'decomposed': n, 'full': n}``.
    """
    # Imported here: torch._dynamo takes seconds to import, and only counting needs it.
    from torch._dynamo.eval_frame import _debug_get_cache_entry_list

    return {
        name: len(_debug_get_cache_entry_list(kernel.__code__))
        for name, kernel in (("decomposed", _decomposed), ("full", _full))
    }
