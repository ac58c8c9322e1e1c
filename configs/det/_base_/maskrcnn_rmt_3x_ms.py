# Mask R-CNN + FPN with an RMT backbone, 3x schedule with multi-scale training and random crop.
_base_ = [
    "mmdet::_base_/models/mask-rcnn_r50_fpn.py",
    "./ms_crop_3x.py",
]

model = dict(
    backbone=dict(
        _delete_=True,
        type="RMT",
        arch="s",
        out_indices=(0, 1, 2, 3),
        norm_cfg=dict(type="SyncBN", requires_grad=True),  # BN trains: see rmt_runtime.py
        norm_eval=False,
        init_cfg=dict(type="Pretrained", checkpoint="checkpoints/RMT-S.pth"),
    ),
    neck=dict(in_channels=[64, 128, 256, 512]),
)
