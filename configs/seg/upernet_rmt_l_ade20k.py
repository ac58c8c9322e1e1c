# UperNet + RMT-L on ADE20K, 160k iterations, batch 16 (8 GPUs x 2): 125.56M parameters,
# 52.8 mIoU in the paper (table 5). Recipe in _base_/upernet_rmt_ade20k.py.
_base_ = ["./_base_/upernet_rmt_ade20k.py"]

model = dict(
    backbone=dict(
        arch="l",
        drop_path_rate=0.5,
        init_cfg=dict(type="Pretrained", checkpoint="checkpoints/RMT-L.pth"),
    ),
    decode_head=dict(in_channels=[112, 224, 448, 640]),
    auxiliary_head=dict(in_channels=448),
)
