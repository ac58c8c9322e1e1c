# Mask2Former RMT-S, COCO panoptic segmentation, 50e LSJ. Recipe: _base_/mask2former_rmt_lsj_50e_panoptic.py.
_base_ = "./_base_/mask2former_rmt_lsj_50e_panoptic.py"

model = dict(
    backbone=dict(arch="s", init_cfg=dict(checkpoint="checkpoints/RMT-S.pth")),
    panoptic_head=dict(in_channels=[64, 128, 256, 512]),
)
