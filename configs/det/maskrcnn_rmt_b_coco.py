# Mask R-CNN RMT-B 1x on COCO (paper: 51.1 box AP / 45.5 mask AP, 73M params).
_base_ = "./_base_/maskrcnn_rmt_1x.py"

model = dict(
    backbone=dict(arch="b", init_cfg=dict(checkpoint="checkpoints/RMT-B.pth")),
    neck=dict(in_channels=[80, 160, 320, 512]),
)
