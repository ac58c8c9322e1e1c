"""What RMT is compared with: mmdet's Swin-T, the baseline of the benchmark and the ERF figures.

Settings only (no model): :mod:`mmrmt.benchmark.candidates` builds it as a backbone or puts it
into a config, :mod:`mmrmt.visualization.erf` builds it with one returned stage.
"""

#: mmdet's Swin-T (``mask-rcnn_swin-t-p4-w7_fpn_1x_coco.py``); mmseg's Swin takes the same keys.
SWIN_T = dict(
    type="SwinTransformer",
    embed_dims=96,
    depths=[2, 2, 6, 2],
    num_heads=[3, 6, 12, 24],
    window_size=7,
    mlp_ratio=4,
    qkv_bias=True,
    qk_scale=None,
    drop_rate=0.0,
    attn_drop_rate=0.0,
    drop_path_rate=0.2,
    patch_norm=True,
    out_indices=(0, 1, 2, 3),
    with_cp=False,
)
#: Channels of Swin-T's four stage outputs.
SWIN_T_DIMS = [96, 192, 384, 768]


def swin_t_kwargs(**overrides) -> dict:
    """:data:`SWIN_T` as keyword arguments of mmdet's ``SwinTransformer`` (no ``type``).

    Args:
        **overrides: Settings that differ, e.g. ``out_indices=(2,)``.

    Returns:
        dict: The arguments.
    """
    return {key: value for key, value in dict(SWIN_T, **overrides).items() if key != "type"}
