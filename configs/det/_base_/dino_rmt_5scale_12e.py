# DINO 5-scale with an RMT backbone, 12 epochs on COCO: the 4-scale recipe
# (./dino_rmt_4scale_12e.py) with the changes of mmdet's dino-5scale_swin-l_8xb2-12e_coco.py.
# All four stages feed the encoder (strides 4-32) and ChannelMapper adds a stride-64 level, so
# num_feature_levels, the neck's num_outs and the encoder's and decoder's num_levels are all 5.
_base_ = ["./dino_rmt_4scale_12e.py"]

num_levels = 5
model = dict(
    num_feature_levels=num_levels,
    backbone=dict(out_indices=(0, 1, 2, 3)),
    neck=dict(in_channels=[64, 128, 256, 512], num_outs=num_levels),
    encoder=dict(layer_cfg=dict(self_attn_cfg=dict(num_levels=num_levels))),
    decoder=dict(layer_cfg=dict(cross_attn_cfg=dict(num_levels=num_levels))),
)
