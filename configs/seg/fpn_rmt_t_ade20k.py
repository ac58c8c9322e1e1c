# Semantic FPN + RMT-T on ADE20K, 80k iterations, batch 16 (8 GPUs x 2): 17.03M parameters,
# 46.4 mIoU in the paper (table 5). Recipe in _base_/fpn_rmt_ade20k.py.
_base_ = ["./_base_/fpn_rmt_ade20k.py"]

model = dict(
    backbone=dict(
        arch="t",
        drop_path_rate=0.1,
        init_cfg=dict(type="Pretrained", checkpoint="checkpoints/RMT-T.pth"),
    ),
    neck=dict(in_channels=[64, 128, 256, 512]),
)
