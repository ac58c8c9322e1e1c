# Cascade Mask R-CNN RMT-S 3x + multi-scale on COCO (paper: 53.2 box AP / 46.1 mask AP, 83M params).
_base_ = "./_base_/cascade_maskrcnn_rmt_3x_ms.py"

model = dict(
    backbone=dict(arch="s", init_cfg=dict(checkpoint="checkpoints/RMT-S.pth")),
    neck=dict(in_channels=[64, 128, 256, 512]),
)
