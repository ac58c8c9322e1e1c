# Mask2Former RMT-T, COCO instance segmentation, 50e LSJ. Recipe: _base_/mask2former_rmt_lsj_50e_instance.py.
_base_ = "./_base_/mask2former_rmt_lsj_50e_instance.py"

model = dict(
    backbone=dict(arch="t", init_cfg=dict(checkpoint="checkpoints/RMT-T.pth")),
    panoptic_head=dict(in_channels=[64, 128, 256, 512]),
)
