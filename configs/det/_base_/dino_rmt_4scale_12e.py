# DINO 4-scale with an RMT backbone, 12 epochs on COCO: mmdet's DINO recipe
# (dino-4scale_r50_8xb2-12e_coco.py, which its Swin-L configs keep): AdamW lr 1e-4, weight decay
# 1e-4, gradients clipped at 0.1, the backbone at 0.1x the lr, one lr step at epoch 11, the
# multi-scale resize-and-crop pipeline, 8 GPUs x 2 images. Added, as mmdet's Swin Mask2Former
# configs do: no weight decay on norm layers and on the learned query and level embeddings
# (../../_base_/rmt_query_based.py).
#
# The encoder reads strides 8, 16, 32 from stages 1-3 and ChannelMapper adds a stride-64 level:
# neck in_channels are the widths of out_indices, num_outs = num_feature_levels = 4 = the
# encoder's and decoder's num_levels (tests/test_query_configs.py keeps them equal).
_base_ = [
    "mmdet::dino/dino-4scale_r50_8xb2-12e_coco.py",
    "../../_base_/rmt_backbone.py",
    "../../_base_/rmt_query_based.py",
]
custom_imports = dict(imports=["mmrmt"], allow_failed_imports=False)

model = dict(
    backbone={{_base_.rmt_backbone_from_stride_8}},
    neck=dict(in_channels=[128, 256, 512]),
)
optim_wrapper = dict(
    paramwise_cfg=dict(custom_keys={{_base_.rmt_dino_custom_keys}}, norm_decay_mult=0.0)
)
default_hooks = {{_base_.rmt_atomic_hooks}}
# Multi-scale deformable attention stays in fp32 under --amp (mmrmt.engine.precision).
custom_hooks = [dict(type="DeformableAttentionFP32Hook")]
