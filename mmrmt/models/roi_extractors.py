"""RoI pooling in float32 under autocast, for bf16 training of two-stage detectors.

mmdet's ``SingleRoIExtractor`` casts the RoIs to the features' dtype and runs mmcv's RoIAlign in
it. Under bf16 autocast that fails: mmcv 2.1.0's RoIAlign kernels (CPU and CUDA) have no bf16
version. It would also be inexact if they had one: bf16 keeps 8 significant bits, so a box edge
near x=1000 moves to a multiple of 4 pixels. :class:`Fp32SingleRoIExtractor` runs mmdet's
pooling in float32 and returns the features' dtype; for float32 features it is
``SingleRoIExtractor`` exactly.

Not imported by ``import mmrmt`` (it needs mmdet): ``tools/train.py --amp --amp-dtype bf16`` adds
``'mmrmt.models.roi_extractors'`` to the config's ``custom_imports`` and selects it.
"""

from typing import Optional, Tuple

import torch
from mmdet.models.roi_heads.roi_extractors import SingleRoIExtractor
from mmdet.registry import MODELS
from torch import Tensor

#: The feature dtypes pooled as they are; any other is pooled in float32.
FULL_PRECISION = (torch.float32, torch.float64)


@MODELS.register_module()
class Fp32SingleRoIExtractor(SingleRoIExtractor):
    """``SingleRoIExtractor`` that pools half-precision features in float32.

    Takes ``SingleRoIExtractor``'s arguments (``roi_layer``, ``out_channels``,
    ``featmap_strides``, ``finest_scale``, ``init_cfg``) and has no weights of its own, so
    checkpoints load either way.
    """

    def forward(
        self, feats: Tuple[Tensor], rois: Tensor, roi_scale_factor: Optional[float] = None
    ) -> Tensor:
        """Pool each RoI from the pyramid level its scale maps to.

        Args:
            feats (tuple[Tensor]): Pyramid features, each (N, C, H_i, W_i).
            rois (Tensor): (K, 5) RoIs: batch index, x1, y1, x2, y2 in input pixels.
            roi_scale_factor (float | None): Scales the RoIs about their centres first.

        Returns:
            Tensor: (K, C, *output_size) pooled features, in the dtype of ``feats``.
        """
        dtype = feats[0].dtype
        if dtype in FULL_PRECISION:
            return super().forward(feats, rois, roi_scale_factor)
        # mmdet's pooling on float32 copies, which also keeps the RoIs in float32 (it casts them
        # to the features' dtype). The copies only live during the call: RoIAlign's backward
        # keeps the RoIs, not its input.
        levels = tuple(level.float() for level in feats)
        return super().forward(levels, rois.float(), roi_scale_factor).to(dtype)
