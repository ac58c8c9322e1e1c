# Mask2Former with an RMT backbone on ADE20K, 160k iterations of 512x512 crops, 8 GPUs x 2
# images: mmseg's Swin-T recipe (mask2former_swin-t_8xb2-160k_ade20k-512x512.py over its r50
# config): AdamW lr 1e-4, weight decay 0.05, gradients clipped at 0.01, poly decay (power 0.9),
# the backbone at 0.1x the lr, no weight decay on norm layers and on the query and level
# embeddings (../../_base_/rmt_query_based.py). The pixel decoder reads all four stages.
# The head's modules are mmdet's (`mmdet.` types in mmseg's base): mmrmt registers RMT with
# both registries, so the backbone builds in either scope.
_base_ = [
    "mmseg::mask2former/mask2former_r50_8xb2-160k_ade20k-512x512.py",
    "../../_base_/rmt_backbone.py",
    "../../_base_/rmt_query_based.py",
]
custom_imports = dict(imports=["mmrmt"], allow_failed_imports=False)

model = dict(
    backbone={{_base_.rmt_backbone}},
    decode_head=dict(in_channels=[64, 128, 256, 512]),
)
optim_wrapper = dict(
    paramwise_cfg=dict(custom_keys={{_base_.rmt_mask2former_custom_keys}}, norm_decay_mult=0.0)
)
default_hooks = {{_base_.rmt_atomic_hooks}}
# Multi-scale deformable attention stays in fp32 under --amp (mmrmt.engine.precision).
custom_hooks = [dict(type="DeformableAttentionFP32Hook")]
