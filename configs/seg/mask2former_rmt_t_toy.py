# Mask2Former + RMT-T trained from scratch on the toy ADE20K-format set (`make toy-data` writes
# data/toy_ade: ~190x145 scenes of 5 classes), sized for a 2-core CPU. The model is
# mask2former_rmt_t_ade20k.py's: the full RMT-T, the deformable-attention pixel decoder and the
# masked-attention transformer decoder with point-sampled mask losses. What is shrunk for the toy
# task: 128-dim pixel decoder (2 encoder layers) and transformer decoder (3 layers, FFN 512),
# 20 queries, 1024 sampled points per mask, BN instead of SyncBN, no stochastic depth, the
# backbone at the full lr, AdamW lr 4e-4 with a short warm-up, 128x128 crops (the toy FPN's
# data pipeline, fpn_rmt_t_toy.py), 8 images per batch.
_base_ = ["./mask2former_rmt_t_ade20k.py"]

data_root = "data/toy_ade"
# The toy set uses the first five ADE20K classes: png values 1..5 (0 = other, ignored) become
# labels 0..4 through reduce_zero_label.
metainfo = dict(
    classes=("wall", "building", "sky", "floor", "tree"),
    palette=[[120, 120, 120], [180, 120, 120], [6, 230, 230], [80, 50, 50], [4, 200, 3]],
)
num_classes = 5
crop_size = (128, 128)
image_scale = (208, 160)
channels = 128

model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(norm_cfg=dict(type="BN", requires_grad=True), drop_path_rate=0.0, init_cfg=None),
    decode_head=dict(
        feat_channels=channels,
        out_channels=channels,
        num_classes=num_classes,
        num_queries=20,
        pixel_decoder=dict(
            norm_cfg=dict(type="GN", num_groups=16),
            encoder=dict(
                num_layers=2,
                layer_cfg=dict(
                    self_attn_cfg=dict(embed_dims=channels),
                    ffn_cfg=dict(embed_dims=channels, feedforward_channels=4 * channels),
                ),
            ),
            positional_encoding=dict(num_feats=channels // 2),
        ),
        positional_encoding=dict(num_feats=channels // 2),
        transformer_decoder=dict(
            num_layers=3,
            layer_cfg=dict(
                self_attn_cfg=dict(embed_dims=channels),
                cross_attn_cfg=dict(embed_dims=channels),
                ffn_cfg=dict(embed_dims=channels, feedforward_channels=4 * channels),
            ),
        ),
        loss_cls=dict(class_weight=[1.0] * num_classes + [0.1]),
        train_cfg=dict(num_points=1024),
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

max_iters = 600
# Every parameter at the full lr (from scratch), norms undecayed.
optim_wrapper = dict(
    optimizer=dict(lr=4e-4), paramwise_cfg=dict(_delete_=True, norm_decay_mult=0.0)
)
param_scheduler = [
    dict(type="LinearLR", start_factor=0.01, by_epoch=False, begin=0, end=40),
    dict(type="PolyLR", eta_min=0.0, power=1.0, begin=40, end=max_iters, by_epoch=False),
]
train_cfg = dict(max_iters=max_iters, val_interval=100)
default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(interval=100, max_keep_ckpts=2),
)
auto_scale_lr = dict(base_batch_size=8)
randomness = dict(seed=0)
