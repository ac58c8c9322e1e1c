# RetinaNet + FPN with an RMT backbone, 1x schedule. The authors' RetinaNet recipe: AdamW,
# lr 4e-4, weight decay 1e-4 on every parameter (no norm exclusion, unlike their Mask R-CNN).
_base_ = [
    "mmdet::_base_/models/retinanet_r50_fpn.py",
    "mmdet::_base_/datasets/coco_detection.py",
    "./rmt_runtime.py",
    "../../_base_/rmt_backbone.py",
]

# The FPN starts at stride 8, so the backbone returns stages 1-3 only (no unused stride-4 output
# norm, hence no find_unused_parameters); the FPN's weights keep the authors' key names.
model = dict(
    backbone={{_base_.rmt_backbone_from_stride_8}},
    neck=dict(in_channels=[128, 256, 512], start_level=0, num_outs=5),
)

optim_wrapper = dict(optimizer=dict(weight_decay=1e-4), paramwise_cfg=None)
