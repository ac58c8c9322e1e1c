# UperNet with an RMT backbone on ADE20K, the authors' recipe (segmentation/configs/RMT/
# RMT_Uper_*_2x.py in qhfan/RMT, which follows UniFormer and CSWin): 160k iterations of 2 images
# on each of 8 GPUs (batch 16), 512x512 crops, AdamW lr 6e-5, weight decay 0.01 and none on
# norms, linear warm-up over 1500 iterations then poly decay (power 1) to 0, an auxiliary FCN
# head on stage 3. The arch configs set the backbone preset, its drop-path rate, widths and
# ImageNet checkpoint.
_base_ = [
    "mmseg::_base_/models/upernet_swin.py",
    "mmseg::_base_/datasets/ade20k.py",
    "mmseg::_base_/default_runtime.py",
    "mmseg::_base_/schedules/schedule_160k.py",
    "../../_base_/rmt_backbone.py",
]
custom_imports = dict(imports=["mmrmt"], allow_failed_imports=False)

crop_size = (512, 512)
data_preprocessor = dict(size=crop_size)
# SyncBN as in the authors' backbone, trained (see fpn_rmt_ade20k.py); the Runner turns it into
# BN without distributed training.
norm_cfg = dict(type="SyncBN", requires_grad=True)
model = dict(
    data_preprocessor=data_preprocessor,
    backbone={{_base_.rmt_backbone}},
    decode_head=dict(num_classes=150, norm_cfg=norm_cfg),
    auxiliary_head=dict(num_classes=150, norm_cfg=norm_cfg),
)

# The authors exempt `norm` layers, `absolute_pos_embed` and `relative_position_bias_table` from
# weight decay; RMT has neither table, and norm_decay_mult covers every norm layer's weight and
# bias (LayerNorms, the BN of stem and downsampling, the heads' BN).
optim_wrapper = dict(
    _delete_=True,
    type="OptimWrapper",
    optimizer=dict(type="AdamW", lr=6e-5, betas=(0.9, 0.999), weight_decay=0.01),
    paramwise_cfg=dict(norm_decay_mult=0.0),
)
param_scheduler = [
    dict(type="LinearLR", start_factor=1e-6, by_epoch=False, begin=0, end=1500),
    dict(type="PolyLR", eta_min=0.0, power=1.0, begin=1500, end=160000, by_epoch=False),
]
train_cfg = dict(max_iters=160000, val_interval=8000)
# Atomic checkpoint writes: a run killed mid-save keeps its previous checkpoint; the test metrics
# JSON is written once, by rank 0, atomically.
default_hooks = dict(
    logger=dict(type="AtomicLoggerHook"),
    checkpoint=dict(
        type="AtomicCheckpointHook",
        by_epoch=False,
        interval=8000,
        max_keep_ckpts=1,
        save_best="mIoU",
    ),
)

train_dataloader = dict(batch_size=2, num_workers=2)
val_dataloader = dict(batch_size=1, num_workers=2)
test_dataloader = val_dataloader
# 8 GPUs x 2 images; `--auto-scale-lr` rescales the lr for another total batch size.
auto_scale_lr = dict(enable=False, base_batch_size=16)
