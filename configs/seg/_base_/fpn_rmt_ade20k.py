# Semantic FPN with an RMT backbone on ADE20K, the authors' recipe (segmentation/configs/RMT/
# RMT_FPN_*_1x.py in qhfan/RMT): 80k iterations of 2 images on each of 8 GPUs (batch 16),
# 512x512 crops, AdamW lr 1e-4, weight decay 1e-4, poly decay (power 0.9) to 1e-6.
# The arch configs set the backbone preset, its drop-path rate, widths and ImageNet checkpoint.
_base_ = [
    "mmseg::_base_/models/fpn_r50.py",
    "mmseg::_base_/datasets/ade20k.py",
    "mmseg::_base_/default_runtime.py",
    "mmseg::_base_/schedules/schedule_80k.py",
    "../../_base_/rmt_backbone.py",
]
custom_imports = dict(imports=["mmrmt"], allow_failed_imports=False)

crop_size = (512, 512)
data_preprocessor = dict(size=crop_size)
# SyncBN as in the authors' backbone; their norm_eval test looks for nn.BatchNorm2d and so never
# freezes SyncBatchNorm: the BN layers train. Without distributed training mmengine's Runner
# turns SyncBN into BN.
norm_cfg = dict(type="SyncBN", requires_grad=True)
model = dict(
    data_preprocessor=data_preprocessor,
    pretrained=None,
    backbone={{_base_.rmt_backbone}},
    neck=dict(out_channels=256, num_outs=4),
    decode_head=dict(num_classes=150, norm_cfg=norm_cfg),
)

optim_wrapper = dict(
    _delete_=True,
    type="OptimWrapper",
    optimizer=dict(type="AdamW", lr=1e-4, betas=(0.9, 0.999), weight_decay=1e-4),
)
param_scheduler = [dict(type="PolyLR", eta_min=1e-6, power=0.9, begin=0, end=80000, by_epoch=False)]
train_cfg = dict(max_iters=80000, val_interval=4000)
# Atomic checkpoint writes: a run killed mid-save keeps its previous checkpoint; the test metrics
# JSON is written once, by rank 0, atomically.
default_hooks = dict(
    checkpoint=dict(type="AtomicCheckpointHook", by_epoch=False, interval=4000),
    logger=dict(type="AtomicLoggerHook"),
)

train_dataloader = dict(batch_size=2, num_workers=2)
val_dataloader = dict(batch_size=1, num_workers=2)
test_dataloader = val_dataloader
# 8 GPUs x 2 images; `--auto-scale-lr` rescales the lr for another total batch size.
auto_scale_lr = dict(enable=False, base_batch_size=16)
