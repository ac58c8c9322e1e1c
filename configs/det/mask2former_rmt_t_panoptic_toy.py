# Mask2Former + RMT-T for panoptic segmentation on the toy COCO set: the toy instance model
# (mask2former_rmt_t_toy.py's shrunk head) over mask2former_rmt_s_coco_panoptic.py's recipe,
# with 3 thing classes (circle, square, triangle) and 1 stuff class (background). Its panoptic
# annotations are derived from the instance set (mmrmt.toy_data.coco_panoptic, `make toy-data`).
# mmdet's panoptic loader and PQ metric need panopticapi, which is not on the package index:
# the loader is replaced by mmrmt's LoadPanopticAnnotationsWithoutApi, and validation reports
# the model's instance masks with CocoMetric (bbox and segm mAP of the thing classes) instead
# of PQ. Tests run a few training steps of it; it is not part of the toy demo.
_base_ = ["./mask2former_rmt_s_coco_panoptic.py"]
custom_imports = dict(imports=["mmrmt", "mmrmt.datasets.panoptic"], allow_failed_imports=False)

image_size = 96
channels = 128
things = ("circle", "square", "triangle")
stuff = ("background",)
num_classes = len(things) + len(stuff)

model = dict(
    data_preprocessor=dict(
        batch_augments=[
            dict(
                type="BatchFixedSizePad",
                size=(image_size, image_size),
                img_pad_value=0,
                pad_mask=True,
                mask_pad_value=0,
                pad_seg=True,
                seg_pad_value=255,
            )
        ]
    ),
    backbone=dict(
        arch="t", norm_cfg=dict(type="BN", requires_grad=True), drop_path_rate=0.0, init_cfg=None
    ),
    panoptic_head=dict(
        feat_channels=channels,
        out_channels=channels,
        num_things_classes=len(things),
        num_stuff_classes=len(stuff),
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
    ),
    panoptic_fusion_head=dict(num_things_classes=len(things), num_stuff_classes=len(stuff)),
    train_cfg=dict(num_points=1024),
    test_cfg=dict(panoptic_on=False, instance_on=True, max_per_image=20),
)

data_root = "data/toy_coco/"
metainfo = dict(classes=things + stuff, thing_classes=things, stuff_classes=stuff)
train_pipeline = [
    dict(type="LoadImageFromFile", to_float32=True),
    dict(type="LoadPanopticAnnotationsWithoutApi", with_bbox=True, with_mask=True, with_seg=True),
    dict(type="Resize", scale=(image_size, image_size), keep_ratio=True),
    dict(type="RandomFlip", prob=0.5),
    dict(type="PackDetInputs"),
]
test_pipeline = [
    dict(type="LoadImageFromFile", to_float32=True),
    dict(type="Resize", scale=(image_size, image_size), keep_ratio=True),
    dict(type="LoadPanopticAnnotationsWithoutApi", with_bbox=True, with_mask=True, with_seg=True),
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
        ann_file="annotations/panoptic_train.json",
        data_prefix=dict(img="train/", seg="annotations/panoptic_train/"),
        pipeline=train_pipeline,
    ),
)
val_dataloader = dict(
    batch_size=8,
    num_workers=1,
    dataset=dict(
        data_root=data_root,
        metainfo=metainfo,
        ann_file="annotations/panoptic_val.json",
        data_prefix=dict(img="val/", seg="annotations/panoptic_val/"),
        pipeline=test_pipeline,
    ),
)
test_dataloader = val_dataloader
val_evaluator = dict(
    _delete_=True,
    type="CocoMetric",
    ann_file=data_root + "annotations/instances_val.json",
    metric=["bbox", "segm"],
)
test_evaluator = val_evaluator

max_iters = 1200
train_cfg = dict(max_iters=max_iters, val_interval=200, dynamic_intervals=None)
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
    checkpoint=dict(interval=200, max_keep_ckpts=-1),
)
log_processor = dict(window_size=10)
randomness = dict(seed=0)
