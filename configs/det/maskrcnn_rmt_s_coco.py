# Mask R-CNN RMT-S 1x on COCO (paper: 49.0 box AP / 43.9 mask AP, 46M params).
_base_ = "./_base_/maskrcnn_rmt_1x.py"

model = dict(
    backbone=dict(arch="s", init_cfg=dict(checkpoint="checkpoints/RMT-S.pth")),
    neck=dict(in_channels=[64, 128, 256, 512]),
)
