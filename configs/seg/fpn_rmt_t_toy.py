# Semantic FPN + RMT-T from scratch on the toy ADE20K-format set (`make toy-data` writes
# data/toy_ade): the fpn_rmt_t_ade20k.py model, shrunk to train within minutes on a 2-core CPU.
# Differences: no ImageNet weights, BN instead of SyncBN, narrower FPN (128) and head (64),
# 5 classes, 128x128 crops of ~190x145 images, 8 images per batch, AdamW lr 1e-3 with warm-up.
_base_ = ["./fpn_rmt_t_ade20k.py"]

data_root = "data/toy_ade"
# mmseg's ADE20KDataset accepts a subset of its class names; the toy set uses its first five,
# so png values 1..5 (0 = other, ignored) become labels 0..4 through reduce_zero_label.
metainfo = dict(
    classes=("wall", "building", "sky", "floor", "tree"),
    palette=[[120, 120, 120], [180, 120, 120], [6, 230, 230], [80, 50, 50], [4, 200, 3]],
)
crop_size = (128, 128)
image_scale = (208, 160)

norm_cfg = dict(type="BN", requires_grad=True)
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(drop_path_rate=0.0, norm_cfg=norm_cfg, init_cfg=None),
    neck=dict(out_channels=128),
    decode_head=dict(
        in_channels=[128, 128, 128, 128], channels=64, num_classes=5, norm_cfg=norm_cfg
    ),
)

train_pipeline = [
    dict(type="LoadImageFromFile"),
    dict(type="LoadAnnotations", reduce_zero_label=True),
    dict(type="RandomResize", scale=image_scale, ratio_range=(0.75, 1.5), keep_ratio=True),
    dict(type="RandomCrop", crop_size=crop_size, cat_max_ratio=0.75),
    dict(type="RandomFlip", prob=0.5),
    dict(type="PhotoMetricDistortion"),
    dict(type="PackSegInputs"),
]
test_pipeline = [
    dict(type="LoadImageFromFile"),
    dict(type="Resize", scale=image_scale, keep_ratio=True),
    dict(type="LoadAnnotations", reduce_zero_label=True),
    dict(type="PackSegInputs"),
]
train_dataloader = dict(
    batch_size=8,
    num_workers=1,
    dataset=dict(
        data_root=data_root,
        metainfo=metainfo,
        data_prefix=dict(img_path="images/training", seg_map_path="annotations/training"),
        pipeline=train_pipeline,
    ),
)
val_dataloader = dict(
    batch_size=1,
    num_workers=1,
    dataset=dict(
        data_root=data_root,
        metainfo=metainfo,
        data_prefix=dict(img_path="images/validation", seg_map_path="annotations/validation"),
        pipeline=test_pipeline,
    ),
)
test_dataloader = val_dataloader

max_iters = 300
optim_wrapper = dict(optimizer=dict(lr=1e-3, weight_decay=0.01))
param_scheduler = [
    dict(type="LinearLR", start_factor=0.01, by_epoch=False, begin=0, end=40),
    dict(type="PolyLR", eta_min=0.0, power=1.0, begin=40, end=max_iters, by_epoch=False),
]
train_cfg = dict(max_iters=max_iters, val_interval=50)
default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(interval=100, max_keep_ckpts=2),
)
auto_scale_lr = dict(base_batch_size=8)
randomness = dict(seed=0)
