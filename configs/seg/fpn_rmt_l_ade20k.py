# Semantic FPN + RMT-L on ADE20K, 80k iterations, batch 16 (8 GPUs x 2): 98.15M parameters,
# 51.4 mIoU in the paper (table 5). Recipe in _base_/fpn_rmt_ade20k.py.
_base_ = ["./_base_/fpn_rmt_ade20k.py"]

model = dict(
    backbone=dict(
        arch="l",
        drop_path_rate=0.5,
        init_cfg=dict(type="Pretrained", checkpoint="checkpoints/RMT-L.pth"),
    ),
    neck=dict(in_channels=[112, 224, 448, 640]),
)
