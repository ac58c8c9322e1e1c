# Mask2Former + RMT-T for instance segmentation, trained from scratch on the toy COCO set
# (`make toy-data` writes data/toy_coco: 96x96 images of circles, squares and triangles), sized
# for a 2-core CPU. The model is mask2former_rmt_t_coco.py's: the full RMT-T, the
# deformable-attention pixel decoder and the masked-attention transformer decoder, Hungarian
# matching on class, mask and dice costs with point sampling. What is shrunk for the toy task:
# 128-dim pixel decoder (2 encoder layers) and transformer decoder (6 layers, two rounds over the
# 3 levels, FFN 512), 20 queries for at most 4 objects, 1024 sampled points per mask (a 24x24
# stride-4 mask has 576 pixels), no stochastic depth, the backbone at the full lr, AdamW lr 4e-4
# with a short warm-up and cosine decay, and the toy pipeline (resize and flip) instead of LSJ.
_base_ = ["./mask2former_rmt_t_coco.py"]

image_size = 96
channels = 128
classes = ("circle", "square", "triangle")

model = dict(
    data_preprocessor=dict(
        batch_augments=[
            dict(
                type="BatchFixedSizePad",
                size=(image_size, image_size),
                img_pad_value=0,
                pad_mask=True,
                mask_pad_value=0,
                pad_seg=False,
            )
        ]
    ),
    backbone=dict(norm_cfg=dict(type="BN", requires_grad=True), drop_path_rate=0.0, init_cfg=None),
    panoptic_head=dict(
        feat_channels=channels,
        out_channels=channels,
        num_things_classes=len(classes),
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
            num_layers=6,
            layer_cfg=dict(
                self_attn_cfg=dict(embed_dims=channels),
                cross_attn_cfg=dict(embed_dims=channels),
                ffn_cfg=dict(embed_dims=channels, feedforward_channels=4 * channels),
            ),
        ),
        loss_cls=dict(class_weight=[1.0] * len(classes) + [0.1]),
    ),
    panoptic_fusion_head=dict(num_things_classes=len(classes)),
    train_cfg=dict(num_points=1024),
    test_cfg=dict(max_per_image=20),
)

data_root = "data/toy_coco/"
metainfo = dict(classes=classes)
train_pipeline = [
    dict(type="LoadImageFromFile", to_float32=True),
    dict(type="LoadAnnotations", with_bbox=True, with_mask=True),
    dict(type="Resize", scale=(image_size, image_size), keep_ratio=True),
    dict(type="RandomFlip", prob=0.5),
    dict(type="PackDetInputs"),
]
test_pipeline = [
    dict(type="LoadImageFromFile", to_float32=True),
    dict(type="Resize", scale=(image_size, image_size), keep_ratio=True),
    dict(type="LoadAnnotations", with_bbox=True, with_mask=True),
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

max_iters = 2400
train_cfg = dict(max_iters=max_iters, val_interval=400, dynamic_intervals=None)
# Every parameter at the full lr (from scratch), norms undecayed.
optim_wrapper = dict(
    optimizer=dict(lr=4e-4), paramwise_cfg=dict(_delete_=True, norm_decay_mult=0.0)
)
param_scheduler = [
    dict(type="LinearLR", start_factor=0.01, by_epoch=False, begin=0, end=100),
    dict(type="CosineAnnealingLR", by_epoch=False, begin=0, end=max_iters, eta_min=1e-5),
]
auto_scale_lr = dict(enable=False, base_batch_size=4)
default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(interval=400, max_keep_ckpts=-1),
)
log_processor = dict(window_size=10)
randomness = dict(seed=0)
