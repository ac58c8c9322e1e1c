# DINO 4-scale RMT-S 12e on COCO. Recipe: _base_/dino_rmt_4scale_12e.py.
_base_ = "./_base_/dino_rmt_4scale_12e.py"

model = dict(
    backbone=dict(arch="s", init_cfg=dict(checkpoint="checkpoints/RMT-S.pth")),
    neck=dict(in_channels=[128, 256, 512]),
)
