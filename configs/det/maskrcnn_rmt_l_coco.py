# Mask R-CNN RMT-L 1x on COCO (paper: 51.6 box AP / 45.9 mask AP, 114M params).
_base_ = "./_base_/maskrcnn_rmt_1x.py"

model = dict(
    backbone=dict(arch="l", init_cfg=dict(checkpoint="checkpoints/RMT-L.pth")),
    neck=dict(in_channels=[112, 224, 448, 640]),
)

# The authors train RMT-L with half the learning rate here.
optim_wrapper = dict(optimizer=dict(lr=2e-4))
