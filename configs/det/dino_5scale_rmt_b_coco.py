# DINO 5-scale RMT-B 12e on COCO. Recipe: _base_/dino_rmt_5scale_12e.py.
_base_ = "./_base_/dino_rmt_5scale_12e.py"

model = dict(
    backbone=dict(arch="b", init_cfg=dict(checkpoint="checkpoints/RMT-B.pth")),
    neck=dict(in_channels=[80, 160, 320, 512]),
)
