# Semantic FPN + RMT-S on ADE20K, 80k iterations, batch 16 (8 GPUs x 2): 29.67M parameters,
# 49.4 mIoU in the paper (table 5). Recipe in _base_/fpn_rmt_ade20k.py.
_base_ = ["./_base_/fpn_rmt_ade20k.py"]

model = dict(
    backbone=dict(
        arch="s",
        drop_path_rate=0.15,
        init_cfg=dict(type="Pretrained", checkpoint="checkpoints/RMT-S.pth"),
    ),
    neck=dict(in_channels=[64, 128, 256, 512]),
)
