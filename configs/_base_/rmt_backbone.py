# The RMT backbone of every detection and segmentation base, defined once. A base names it whole,
# `model = dict(backbone={{_base_.rmt_backbone}})` (mmengine substitutes whole values only, and
# `_delete_` drops the ResNet/Swin keys of mmdet's or mmseg's model base); the arch configs set
# `arch` and the ImageNet checkpoint.
# The stem and downsampling BN layers are SyncBN and train, as in the authors' runs (why:
# configs/det/_base_/rmt_runtime.py); without distributed training they become BN.
rmt_backbone = dict(
    _delete_=True,
    type="RMT",
    out_indices=(0, 1, 2, 3),
    norm_cfg=dict(type="SyncBN", requires_grad=True),
    norm_eval=False,
    init_cfg=dict(type="Pretrained", checkpoint="checkpoints/RMT-T.pth"),
)
# RetinaNet's FPN starts at stride 8: stages 1-3 only (no unused stride-4 output norm).
rmt_backbone_from_stride_8 = dict(rmt_backbone, out_indices=(1, 2, 3))
