# Mask R-CNN RMT-B 3x + multi-scale on COCO (paper: 52.2 box AP / 46.1 mask AP, 73M params).
_base_ = "./_base_/maskrcnn_rmt_3x_ms.py"

model = dict(
    backbone=dict(arch="b", init_cfg=dict(checkpoint="checkpoints/RMT-B.pth")),
    neck=dict(in_channels=[80, 160, 320, 512]),
)

# The authors train RMT-B with half the learning rate here.
optim_wrapper = dict(optimizer=dict(lr=2e-4))
