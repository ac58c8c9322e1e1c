"""Linear layers with their element-wise neighbours folded in: GELU, layer scale, residual add.

RMT's blocks follow most linear layers with one more pass over the same tensor: GELU after the
FFN's ``fc1``, the residual add after ``fc2`` and after the attention's ``out_proj``, and (RMT-B/L)
the layer-scale multiplication. :func:`fused_linear` computes ``residual + scale * act(x W^T + b)``
with as few passes as the backend allows:

* the layer scale is folded into the weight and bias (``scale * W``, ``scale * b``), always;
* on the CPU, when nothing needs gradients, the GELU or the residual add runs as a post-op of
  oneDNN's matrix product (``torch.ops.mkldnn._linear_pointwise``, the kernel Inductor's CPU
  fusions call), so the product's output is written once and never read back;
* otherwise (training, CUDA, export, compile, tracing) it runs ``F.linear`` and the element-wise ops
  one by one, the same function.
"""

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from .position import in_traced_graph

#: dtypes whose oneDNN post-op kernels :func:`fused_linear` uses on the CPU.
ONEDNN_DTYPES = (torch.float32,)


def onednn_fusion_runs(x: Tensor, weight: Tensor) -> bool:
    """Whether :func:`fused_linear` may use oneDNN's fused kernels for ``x W^T``.

    They have no backward, so only where autograd records nothing.
    """
    if x.device.type != "cpu" or x.dtype not in ONEDNN_DTYPES or weight.dtype != x.dtype:
        return False
    if torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad):
        return False
    if in_traced_graph():
        return False
    return torch.backends.mkldnn.is_available()


def fused_linear(
    x: Tensor,
    weight: Tensor,
    bias: Optional[Tensor],
    gelu: bool = False,
    residual: Optional[Tensor] = None,
    scale: Optional[Tensor] = None,
) -> Tensor:
    """``residual + scale * act(x W^T + b)``, ``act`` GELU or identity, in the fewest passes.

    Args:
        x (Tensor): (..., in_features).
        weight (Tensor): (out_features, in_features), e.g. an ``nn.Linear``'s.
        bias (Tensor | None): (out_features,).
        gelu (bool): Apply the exact (erf) GELU to the layer's output.
        residual (Tensor | None): (..., out_features) added to the result.
        scale (Tensor | None): Layer scale, ``out_features`` values in any shape; it scales the
            layer's output (before ``residual`` is added).

    Returns:
        Tensor: (..., out_features).

    Raises:
        ValueError: GELU together with a residual (no block of RMT needs both).
    """
    if gelu and residual is not None:
        raise ValueError("fused_linear() applies GELU or adds a residual, not both")
    if scale is not None:
        scale = scale.reshape(-1)
        weight = weight * scale[:, None]
        bias = bias * scale if bias is not None else None
    if onednn_fusion_runs(x, weight):
        if residual is not None:
            residual = residual.contiguous()
            return torch.ops.mkldnn._linear_pointwise.binary(x, residual, weight, bias, "add")
        if gelu:
            return torch.ops.mkldnn._linear_pointwise(x, weight, bias, "gelu", [], "none")
        return torch.ops.mkldnn._linear_pointwise(x, weight, bias, "none", [], "")
    out = F.linear(x, weight, bias)
    if gelu:
        out = F.gelu(out)
    return out if residual is None else residual + out
