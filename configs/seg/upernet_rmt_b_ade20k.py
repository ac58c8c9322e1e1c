# UperNet + RMT-B on ADE20K, 160k iterations, batch 16 (8 GPUs x 2): 83.12M parameters,
# 52.0 mIoU in the paper (table 5). Recipe in _base_/upernet_rmt_ade20k.py.
_base_ = ["./_base_/upernet_rmt_ade20k.py"]

model = dict(
    backbone=dict(
        arch="b",
        drop_path_rate=0.4,
        init_cfg=dict(type="Pretrained", checkpoint="checkpoints/RMT-B.pth"),
    ),
    decode_head=dict(in_channels=[80, 160, 320, 512]),
    auxiliary_head=dict(in_channels=320),
)
