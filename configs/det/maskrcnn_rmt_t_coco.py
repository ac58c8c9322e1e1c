# Mask R-CNN RMT-T 1x on COCO (paper: 47.1 box AP / 42.6 mask AP, 33M params).
_base_ = "./_base_/maskrcnn_rmt_1x.py"

model = dict(
    backbone=dict(arch="t", init_cfg=dict(checkpoint="checkpoints/RMT-T.pth")),
    neck=dict(in_channels=[64, 128, 256, 512]),
)
