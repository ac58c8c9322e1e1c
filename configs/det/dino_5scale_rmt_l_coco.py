# DINO 5-scale RMT-L 12e on COCO. Recipe: _base_/dino_rmt_5scale_12e.py.
_base_ = "./_base_/dino_rmt_5scale_12e.py"

model = dict(
    backbone=dict(arch="l", init_cfg=dict(checkpoint="checkpoints/RMT-L.pth")),
    neck=dict(in_channels=[112, 224, 448, 640]),
)
