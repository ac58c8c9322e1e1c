# Mask R-CNN + FPN with an RMT backbone, 3x schedule with multi-scale training and random crop.
_base_ = [
    "mmdet::_base_/models/mask-rcnn_r50_fpn.py",
    "./ms_crop_3x.py",
    "../../_base_/rmt_backbone.py",
]

model = dict(
    backbone={{_base_.rmt_backbone}},
    neck=dict(in_channels=[64, 128, 256, 512]),
)
