# Mask R-CNN + FPN with an RMT backbone, 1x schedule (12 epochs, lr steps at 8 and 11).
# Final configs set the arch, its ImageNet checkpoint and the FPN input channels.
_base_ = [
    "mmdet::_base_/models/mask-rcnn_r50_fpn.py",
    "mmdet::_base_/datasets/coco_instance.py",
    "./rmt_runtime.py",
]

model = dict(
    backbone=dict(
        _delete_=True,
        type="RMT",
        arch="t",
        out_indices=(0, 1, 2, 3),
        norm_cfg=dict(type="SyncBN", requires_grad=True),  # BN trains: see rmt_runtime.py
        norm_eval=False,
        init_cfg=dict(type="Pretrained", checkpoint="checkpoints/RMT-T.pth"),
    ),
    neck=dict(in_channels=[64, 128, 256, 512]),
)
