# Cascade Mask R-CNN + FPN with an RMT backbone, 3x multi-scale + crop: each of the three box
# heads has 4 shared convs (SyncBN) and 1 fc and regresses decoded boxes with a GIoU loss.
_base_ = [
    "mmdet::_base_/models/cascade-mask-rcnn_r50_fpn.py",
    "./ms_crop_3x.py",
    "../../_base_/rmt_backbone.py",
]


# The three stages differ only in the scale of their regression targets.
cascade_target_stds = [[0.1, 0.1, 0.2, 0.2], [0.05, 0.05, 0.1, 0.1], [0.033, 0.033, 0.067, 0.067]]

model = dict(
    backbone={{_base_.rmt_backbone}},
    neck=dict(in_channels=[64, 128, 256, 512]),
    roi_head=dict(
        bbox_head=[
            dict(
                type="ConvFCBBoxHead",
                num_shared_convs=4,
                num_shared_fcs=1,
                in_channels=256,
                conv_out_channels=256,
                fc_out_channels=1024,
                roi_feat_size=7,
                num_classes=80,
                bbox_coder=dict(
                    type="DeltaXYWHBBoxCoder",
                    target_means=[0.0, 0.0, 0.0, 0.0],
                    target_stds=target_stds,
                ),
                reg_class_agnostic=False,
                reg_decoded_bbox=True,
                norm_cfg=dict(type="SyncBN", requires_grad=True),
                loss_cls=dict(type="CrossEntropyLoss", use_sigmoid=False, loss_weight=1.0),
                loss_bbox=dict(type="GIoULoss", loss_weight=10.0),
            )
            for target_stds in cascade_target_stds
        ]
    ),
)
