# DINO 4-scale + RMT-T trained from scratch on the toy COCO set (`make toy-data` writes
# data/toy_coco: 96x96 images of circles, squares and triangles), sized for a 2-core CPU.
# The model is dino_4scale_rmt_t_coco.py's: the full RMT-T, ChannelMapper + deformable encoder
# and decoder, two-stage queries with box refinement, contrastive denoising, Hungarian matching
# with focal, L1 and GIoU costs. What is shrunk for the toy task: 3
# encoder and 3 decoder layers (FFN 1024), 100 queries and 20 denoising queries for at most 4
# objects, no stochastic depth, the backbone at the full lr (no ImageNet weights to protect),
# AdamW lr 4e-4 with a short warm-up and cosine decay, the toy pipeline (resize and flip).
_base_ = ["./dino_4scale_rmt_t_coco.py"]

image_size = 96
# mmdet's DINO decoder encodes reference points with 128 sine features per coordinate (512
# channels for 2 x embed_dims): its width stays 256.
embed_dims = 256
ffn_channels = 1024  # mmdet: 2048
classes = ("circle", "square", "triangle")

model = dict(
    num_queries=100,
    backbone=dict(norm_cfg=dict(type="BN", requires_grad=True), drop_path_rate=0.0, init_cfg=None),
    neck=dict(out_channels=embed_dims, norm_cfg=dict(type="GN", num_groups=16)),
    encoder=dict(
        num_layers=3,
        layer_cfg=dict(
            self_attn_cfg=dict(embed_dims=embed_dims),
            ffn_cfg=dict(embed_dims=embed_dims, feedforward_channels=ffn_channels),
        ),
    ),
    decoder=dict(
        num_layers=3,
        layer_cfg=dict(
            self_attn_cfg=dict(embed_dims=embed_dims),
            cross_attn_cfg=dict(embed_dims=embed_dims),
            ffn_cfg=dict(embed_dims=embed_dims, feedforward_channels=ffn_channels),
        ),
    ),
    positional_encoding=dict(num_feats=embed_dims // 2),
    bbox_head=dict(num_classes=len(classes), embed_dims=embed_dims),
    dn_cfg=dict(group_cfg=dict(num_dn_queries=20)),
    test_cfg=dict(max_per_img=50),
)

data_root = "data/toy_coco/"
metainfo = dict(classes=classes)
train_pipeline = [
    dict(type="LoadImageFromFile"),
    dict(type="LoadAnnotations", with_bbox=True),
    dict(type="Resize", scale=(image_size, image_size), keep_ratio=True),
    dict(type="RandomFlip", prob=0.5),
    dict(type="PackDetInputs"),
]
test_pipeline = [
    dict(type="LoadImageFromFile"),
    dict(type="Resize", scale=(image_size, image_size), keep_ratio=True),
    dict(type="LoadAnnotations", with_bbox=True),
    dict(
        type="PackDetInputs",
        meta_keys=("img_id", "img_path", "ori_shape", "img_shape", "scale_factor"),
    ),
]
train_dataloader = dict(
    batch_size=4,
    num_workers=1,
    dataset=dict(
        data_root=data_root,
        metainfo=metainfo,
        ann_file="annotations/instances_train.json",
        data_prefix=dict(img="train/"),
        pipeline=train_pipeline,
    ),
)
val_dataloader = dict(
    batch_size=8,
    num_workers=1,
    dataset=dict(
        data_root=data_root,
        metainfo=metainfo,
        ann_file="annotations/instances_val.json",
        data_prefix=dict(img="val/"),
        pipeline=test_pipeline,
    ),
)
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + "annotations/instances_val.json")
test_evaluator = val_evaluator

max_epochs = 12
train_cfg = dict(max_epochs=max_epochs, val_interval=2)
# Every parameter at the full lr (from scratch), norms undecayed.
optim_wrapper = dict(
    optimizer=dict(lr=4e-4), paramwise_cfg=dict(_delete_=True, norm_decay_mult=0.0)
)
param_scheduler = [
    dict(type="LinearLR", start_factor=0.01, by_epoch=False, begin=0, end=100),
    dict(type="CosineAnnealingLR", by_epoch=True, begin=0, end=max_epochs, eta_min=1e-5),
]
auto_scale_lr = dict(enable=False, base_batch_size=4)
default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(interval=2, max_keep_ckpts=-1),
)
randomness = dict(seed=0)
