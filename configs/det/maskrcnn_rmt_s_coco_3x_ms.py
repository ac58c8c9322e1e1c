# Mask R-CNN RMT-S 3x + multi-scale on COCO (paper: 50.7 box AP / 44.9 mask AP, 46M params).
_base_ = "./_base_/maskrcnn_rmt_3x_ms.py"

model = dict(
    backbone=dict(arch="s", init_cfg=dict(checkpoint="checkpoints/RMT-S.pth")),
    neck=dict(in_channels=[64, 128, 256, 512]),
)
