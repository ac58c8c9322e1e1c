# Mask2Former RMT-L on ADE20K, 160k iterations. Recipe: _base_/mask2former_rmt_ade20k.py.
_base_ = "./_base_/mask2former_rmt_ade20k.py"

model = dict(
    backbone=dict(arch="l", init_cfg=dict(checkpoint="checkpoints/RMT-L.pth")),
    decode_head=dict(in_channels=[112, 224, 448, 640]),
)
