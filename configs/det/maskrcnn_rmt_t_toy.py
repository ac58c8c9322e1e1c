# Mask R-CNN + FPN with RMT-T trained from scratch on the toy COCO set (`make toy-data` writes
# data/toy_coco: 96x96 images of circles, squares and triangles), sized for a 2-core CPU:
# 9 epochs of 100 iterations (4 images each), validation and a checkpoint every 2 epochs and at
# the end. Small batches learn faster here than large ones for the same compute.
# The backbone is the full RMT-T; what is shrunk for the toy task: 128-channel FPN, anchors of
# 16..256 px (scale 4) for the small images, fewer proposals and RoIs, a 2-conv 64-channel mask
# head, a GIoU box loss (tighter boxes than L1 in this short schedule), no stochastic depth,
# AdamW lr 1e-3 with a short warm-up and cosine decay. On a shared machine run with
# OMP_NUM_THREADS=1 (tools/toy_demo.py does): two OpenMP threads fighting other jobs for the
# cores made steps up to 20x slower.
_base_ = [
    "mmdet::_base_/models/mask-rcnn_r50_fpn.py",
    "mmdet::_base_/datasets/coco_instance.py",
    "mmdet::_base_/default_runtime.py",
]
custom_imports = dict(imports=["mmrmt"], allow_failed_imports=False)

image_size = 96
channels = 128
classes = ("circle", "square", "triangle")

model = dict(
    backbone=dict(
        _delete_=True,
        type="RMT",
        arch="t",
        out_indices=(0, 1, 2, 3),
        drop_path_rate=0.0,
        init_cfg=None,
    ),
    neck=dict(in_channels=[64, 128, 256, 512], out_channels=channels),
    rpn_head=dict(in_channels=channels, feat_channels=channels, anchor_generator=dict(scales=[4])),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=channels),
        bbox_head=dict(
            in_channels=channels,
            fc_out_channels=256,
            num_classes=len(classes),
            reg_decoded_bbox=True,
            loss_bbox=dict(_delete_=True, type="GIoULoss", loss_weight=10.0),
        ),
        mask_roi_extractor=dict(out_channels=channels),
        mask_head=dict(
            num_convs=2, in_channels=channels, conv_out_channels=64, num_classes=len(classes)
        ),
    ),
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=500, max_per_img=100),
        rcnn=dict(sampler=dict(num=32)),
    ),
    test_cfg=dict(
        rpn=dict(nms_pre=300, max_per_img=50),
        rcnn=dict(max_per_img=20),
    ),
)

data_root = "data/toy_coco/"
metainfo = dict(classes=classes)
train_pipeline = [
    dict(type="LoadImageFromFile"),
    dict(type="LoadAnnotations", with_bbox=True, with_mask=True),
    dict(type="Resize", scale=(image_size, image_size), keep_ratio=True),
    dict(type="RandomFlip", prob=0.5),
    dict(type="PackDetInputs"),
]
test_pipeline = [
    dict(type="LoadImageFromFile"),
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

max_epochs = 9
train_cfg = dict(type="EpochBasedTrainLoop", max_epochs=max_epochs, val_interval=2)
val_cfg = dict(type="ValLoop")
test_cfg = dict(type="TestLoop")
optim_wrapper = dict(
    type="OptimWrapper",
    optimizer=dict(type="AdamW", lr=1e-3, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(norm_decay_mult=0.0),
    clip_grad=dict(max_norm=10.0),
)
param_scheduler = [
    dict(type="LinearLR", start_factor=0.01, by_epoch=False, begin=0, end=100),
    dict(type="CosineAnnealingLR", by_epoch=True, begin=0, end=max_epochs, eta_min=1e-5),
]
auto_scale_lr = dict(enable=False, base_batch_size=4)

default_hooks = dict(
    logger=dict(type="AtomicLoggerHook", interval=10),
    checkpoint=dict(type="AtomicCheckpointHook", interval=2, max_keep_ckpts=-1),
)
randomness = dict(seed=0)
