# Mask2Former RMT-B, COCO panoptic segmentation, 50e LSJ. Recipe: _base_/mask2former_rmt_lsj_50e_panoptic.py.
_base_ = "./_base_/mask2former_rmt_lsj_50e_panoptic.py"

model = dict(
    backbone=dict(arch="b", init_cfg=dict(checkpoint="checkpoints/RMT-B.pth")),
    panoptic_head=dict(in_channels=[80, 160, 320, 512]),
)
