# RetinaNet RMT-S 1x on COCO (paper: 47.8 box AP, 36M params).
_base_ = "./_base_/retinanet_rmt_1x.py"

model = dict(
    backbone=dict(arch="s", init_cfg=dict(checkpoint="checkpoints/RMT-S.pth")),
    neck=dict(in_channels=[128, 256, 512]),
)
