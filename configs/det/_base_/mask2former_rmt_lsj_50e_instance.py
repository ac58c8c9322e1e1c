# Mask2Former with an RMT backbone for COCO instance segmentation, 50 epochs (368750 iterations
# of 16 images) of large-scale jitter at 1024x1024: mmdet's Swin-T recipe
# (mask2former_swin-t-p4-w7-224_8xb2-lsj-50e_coco.py over its r50 config): AdamW lr 1e-4,
# weight decay 0.05, gradients clipped at 0.01, lr steps at iterations 327778 and 355092, the
# backbone at 0.1x the lr, no weight decay on norm layers and on the query and level embeddings
# (../../_base_/rmt_query_based.py). The pixel decoder reads all four stages (strides 4-32).
_base_ = [
    "mmdet::mask2former/mask2former_r50_8xb2-lsj-50e_coco.py",
    "../../_base_/rmt_backbone.py",
    "../../_base_/rmt_query_based.py",
]
custom_imports = dict(imports=["mmrmt"], allow_failed_imports=False)

model = dict(
    backbone={{_base_.rmt_backbone}},
    panoptic_head=dict(in_channels=[64, 128, 256, 512]),
    init_cfg=None,
)
optim_wrapper = dict(
    paramwise_cfg=dict(custom_keys={{_base_.rmt_mask2former_custom_keys}}, norm_decay_mult=0.0)
)
# mmdet's instance config inherits its panoptic base's `seg` prefix (panoptic_train2017/), which
# the instance pipeline never reads: dropped, so the data check of tools/train.py does not ask
# a COCO instance user for the panoptic folders.
train_dataloader = dict(dataset=dict(data_prefix=dict(_delete_=True, img="train2017/")))
val_dataloader = dict(dataset=dict(data_prefix=dict(_delete_=True, img="val2017/")))
test_dataloader = val_dataloader
default_hooks = {{_base_.rmt_atomic_iteration_hooks}}
# Multi-scale deformable attention stays in fp32 under --amp (mmrmt.engine.precision).
custom_hooks = [dict(type="DeformableAttentionFP32Hook")]
