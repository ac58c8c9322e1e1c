"""Multi-scale deformable attention kept in fp32 under autocast (AMP).

DINO's encoder and decoder and Mask2Former's pixel decoder use mmcv's
``MultiScaleDeformableAttention``. Under AMP, autocast turns its value, offset and weight
projections to fp16 or bf16, and the sampling op then runs on half-precision inputs: mmcv's CUDA
kernel has no half version (mmdet #6082, mmcv #2167), and in bf16 the sampling locations (in
[0, 1], 8 significant bits) move by up to half a pixel at stride 4 on a 1024-pixel side.

:func:`keep_deformable_attention_fp32` switches every such module of a model to
:class:`FP32MultiScaleDeformableAttention`: the same parameters and state dict, whose forward
casts its floating inputs to fp32 and runs with autocast off. The rest of the model keeps AMP.
The query-based configs apply it through ``DeformableAttentionFP32Hook``
(:mod:`mmrmt.engine.precision`).
"""

from typing import Any

import torch
from mmcv.ops import MultiScaleDeformableAttention
from torch import Tensor, nn


def _to_fp32(value: Any) -> Any:
    if isinstance(value, Tensor) and value.is_floating_point():
        return value.float()
    return value


class FP32MultiScaleDeformableAttention(MultiScaleDeformableAttention):
    """mmcv's ``MultiScaleDeformableAttention`` that always computes in fp32.

    Without autocast it is mmcv's module unchanged. Under autocast, floating tensor arguments
    are cast to fp32 and the forward runs with autocast disabled on their device, so the
    projections and the sampling op see fp32; the output (fp32) returns to the autocast region.
    """

    def forward(self, *args: Any, **kwargs: Any) -> Tensor:
        """mmcv's forward (same arguments: ``query``, ``value``, ``reference_points``, ...)."""
        query = kwargs.get("query", args[0] if args else None)
        device_type = query.device.type if isinstance(query, Tensor) else "cpu"
        if not torch.is_autocast_enabled(device_type):
            return super().forward(*args, **kwargs)
        args = tuple(_to_fp32(value) for value in args)
        kwargs = {key: _to_fp32(value) for key, value in kwargs.items()}
        with torch.autocast(device_type=device_type, enabled=False):
            return super().forward(*args, **kwargs)


def keep_deformable_attention_fp32(model: nn.Module) -> int:
    """Make every mmcv ``MultiScaleDeformableAttention`` in ``model`` compute in fp32.

    The modules keep their parameters, buffers and state-dict keys; only their class changes to
    :class:`FP32MultiScaleDeformableAttention` (idempotent).

    Args:
        model (nn.Module): Any model, possibly wrapped (DDP).

    Returns:
        int: How many modules now run in fp32.
    """
    count = 0
    for module in model.modules():
        if isinstance(module, MultiScaleDeformableAttention):
            module.__class__ = FP32MultiScaleDeformableAttention
            count += 1
    return count
