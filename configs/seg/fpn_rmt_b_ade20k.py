# Semantic FPN + RMT-B on ADE20K, 80k iterations, batch 16 (8 GPUs x 2): 56.88M parameters,
# 50.4 mIoU in the paper (table 5). Recipe in _base_/fpn_rmt_ade20k.py.
_base_ = ["./_base_/fpn_rmt_ade20k.py"]

model = dict(
    backbone=dict(
        arch="b",
        drop_path_rate=0.4,
        init_cfg=dict(type="Pretrained", checkpoint="checkpoints/RMT-B.pth"),
    ),
    neck=dict(in_channels=[80, 160, 320, 512]),
)
