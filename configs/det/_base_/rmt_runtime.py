# Runtime shared by the RMT detection configs: mmdet's 1x schedule and runtime, mmrmt's registration
# and the authors' AdamW (detect/configs/RMT/*.py in qhfan/RMT).
#
# Backbone BN layers (stem and downsampling) are SyncBN and train, as in the authors' runs: their
# backbone hard-codes nn.SyncBatchNorm and its norm_eval test looks for nn.BatchNorm2d, which
# SyncBatchNorm is not, so norm_eval=True never froze anything. Runs without distributed training
# get plain BN (mmengine's Runner and mmrmt's CPU DDP wrapper convert SyncBN back).
#
# Switches:
#   AMP (the authors trained in fp16):  tools/train.py CONFIG --amp
#   Plain BN in the backbone:  --cfg-options model.backbone.norm_cfg.type=BN
#   SyncBN for every other BN layer too (distributed runs):  --cfg-options sync_bn=torch
#   Frozen backbone BN statistics:  --cfg-options model.backbone.norm_eval=True
#   Another total batch size: --auto-scale-lr scales lr linearly from base_batch_size=16.
_base_ = [
    "mmdet::_base_/schedules/schedule_1x.py",
    "mmdet::_base_/default_runtime.py",
]

custom_imports = dict(imports=["mmrmt"], allow_failed_imports=False)

# Checkpoints and the resume pointer are written atomically: a run killed mid-save keeps its
# previous checkpoint (mmrmt.engine.AtomicCheckpointHook; CheckpointHook's options apply). The test
# metrics JSON is written once, by rank 0, atomically (mmrmt.engine.AtomicLoggerHook).
default_hooks = dict(
    checkpoint=dict(type="AtomicCheckpointHook"), logger=dict(type="AtomicLoggerHook")
)

# AdamW, lr 4e-4, weight decay 0.05; no decay on any norm layer. The authors exclude parameters
# whose name contains 'norm' (LayerNorms, the downsampling BN, the output norms);
# norm_decay_mult=0 covers those and the stem's BN layers too (the authors' cascade recipe).
optim_wrapper = dict(
    type="OptimWrapper",
    optimizer=dict(_delete_=True, type="AdamW", lr=4e-4, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(norm_decay_mult=0.0),
)

# The recipes assume 16 images per iteration: 8 GPUs x 2 images (mmdet's COCO bases load 2 per GPU).
auto_scale_lr = dict(enable=False, base_batch_size=16)
