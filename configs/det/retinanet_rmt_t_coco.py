# RetinaNet RMT-T 1x on COCO (paper: 45.1 box AP, 23M params).
_base_ = "./_base_/retinanet_rmt_1x.py"

model = dict(
    backbone=dict(arch="t", init_cfg=dict(checkpoint="checkpoints/RMT-T.pth")),
    neck=dict(in_channels=[128, 256, 512]),
)
