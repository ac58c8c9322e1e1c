# UperNet + RMT-S on ADE20K, 160k iterations, batch 16 (8 GPUs x 2): 55.72M parameters,
# 49.8 mIoU in the paper (table 5). Recipe in _base_/upernet_rmt_ade20k.py.
_base_ = ["./_base_/upernet_rmt_ade20k.py"]

model = dict(
    backbone=dict(
        arch="s",
        drop_path_rate=0.15,
        init_cfg=dict(type="Pretrained", checkpoint="checkpoints/RMT-S.pth"),
    ),
    decode_head=dict(in_channels=[64, 128, 256, 512]),
    auxiliary_head=dict(in_channels=256),
)
