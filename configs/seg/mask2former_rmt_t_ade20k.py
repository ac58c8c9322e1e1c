# Mask2Former RMT-T on ADE20K, 160k iterations. Recipe: _base_/mask2former_rmt_ade20k.py.
_base_ = "./_base_/mask2former_rmt_ade20k.py"

model = dict(
    backbone=dict(arch="t", init_cfg=dict(checkpoint="checkpoints/RMT-T.pth")),
    decode_head=dict(in_channels=[64, 128, 256, 512]),
)
