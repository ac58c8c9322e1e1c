# What the query-based RMT configs (DINO, Mask2Former) share: mmrmt's atomic hooks, and the
# optimizer keys of mmdet's and mmseg's Swin Mask2Former configs, written for RMT's modules.
#
# The backbone learns at 0.1x the lr, and none of its norm layers is decayed. A custom key that
# matches a parameter overrides norm_decay_mult (mmengine's DefaultOptimWrapperConstructor takes
# the longest matching key), so each RMT norm is listed: the stem's BN layers
# (patch_embed.proj.1/4/7/10), the blocks' two LayerNorms, the downsampling BN and the output
# norms. RMT has no position-embedding or bias tables to exempt: its decay and rotary tables are
# buffers, and its CPE and LePE are depthwise convs, decayed as in the authors' recipes.
# tests/test_query_configs.py checks that these keys reach the backbone's norms and nothing else.
rmt_backbone_norm_multi = dict(lr_mult=0.1, decay_mult=0.0)
rmt_backbone_custom_keys = {
    "backbone": dict(lr_mult=0.1, decay_mult=1.0),
    "backbone.extra_norms": rmt_backbone_norm_multi,
    "backbone.patch_embed.proj.1.": rmt_backbone_norm_multi,
    "backbone.patch_embed.proj.4.": rmt_backbone_norm_multi,
    "backbone.patch_embed.proj.7.": rmt_backbone_norm_multi,
    "backbone.patch_embed.proj.10.": rmt_backbone_norm_multi,
    "downsample.norm": rmt_backbone_norm_multi,
    "retention_layer_norm": rmt_backbone_norm_multi,
    "final_layer_norm": rmt_backbone_norm_multi,
}
# The heads' learned query and level embeddings are not decayed either (Mask2Former's
# query_embed/query_feat/level_embed; DINO's query_embedding/level_embed).
rmt_embed_multi = dict(lr_mult=1.0, decay_mult=0.0)
rmt_mask2former_custom_keys = dict(
    rmt_backbone_custom_keys,
    query_embed=rmt_embed_multi,
    query_feat=rmt_embed_multi,
    level_embed=rmt_embed_multi,
)
rmt_dino_custom_keys = dict(
    rmt_backbone_custom_keys,
    query_embedding=rmt_embed_multi,
    level_embed=rmt_embed_multi,
)

# Checkpoints and the resume pointer are written atomically (a run killed mid-save keeps its
# previous checkpoint); the test metrics JSON is written once, by rank 0, atomically.
rmt_atomic_hooks = dict(
    checkpoint=dict(type="AtomicCheckpointHook"), logger=dict(type="AtomicLoggerHook")
)
# The same for iteration-based schedules that mmdet's bases log by epoch (Mask2Former on COCO):
# validation metrics at their iteration, or every point of a learning curve lands on epoch 0.
rmt_atomic_iteration_hooks = dict(
    checkpoint=dict(type="AtomicCheckpointHook"),
    logger=dict(type="AtomicLoggerHook", log_metric_by_epoch=False),
)
