# Mask R-CNN + FPN with an RMT backbone, 1x schedule (12 epochs, lr steps at 8 and 11).
# Final configs set the arch, its ImageNet checkpoint and the FPN input channels.
_base_ = [
    "mmdet::_base_/models/mask-rcnn_r50_fpn.py",
    "mmdet::_base_/datasets/coco_instance.py",
    "./rmt_runtime.py",
    "../../_base_/rmt_backbone.py",
]

model = dict(
    backbone={{_base_.rmt_backbone}},
    neck=dict(in_channels=[64, 128, 256, 512]),
)
