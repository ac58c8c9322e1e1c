# Mask2Former RMT-B on ADE20K, 160k iterations. Recipe: _base_/mask2former_rmt_ade20k.py.
_base_ = "./_base_/mask2former_rmt_ade20k.py"

model = dict(
    backbone=dict(arch="b", init_cfg=dict(checkpoint="checkpoints/RMT-B.pth")),
    decode_head=dict(in_channels=[80, 160, 320, 512]),
)
