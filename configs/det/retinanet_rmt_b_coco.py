# RetinaNet RMT-B 1x on COCO (paper: 49.1 box AP, 63M params).
_base_ = "./_base_/retinanet_rmt_1x.py"

model = dict(
    backbone=dict(arch="b", init_cfg=dict(checkpoint="checkpoints/RMT-B.pth")),
    neck=dict(in_channels=[160, 320, 512]),
)
