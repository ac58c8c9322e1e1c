"""Building blocks of RMT: position tables and Manhattan Self-Attention."""

from .depthwise_conv import DepthwiseConv2d, depthwise_kernels, depthwise_kernels_available
from .flex_attention import FLEX_AVAILABLE, compiled_variants
from .position import (
    RetentionPosition,
    RetentionTables,
    axis_distance,
    head_decay_rates,
    manhattan_distance,
    rotary_frequencies,
)
from .retention import ManhattanSelfAttention, rotate_every_two, theta_shift

__all__ = [
    "DepthwiseConv2d",
    "FLEX_AVAILABLE",
    "ManhattanSelfAttention",
    "RetentionPosition",
    "RetentionTables",
    "axis_distance",
    "compiled_variants",
    "depthwise_kernels",
    "depthwise_kernels_available",
    "head_decay_rates",
    "manhattan_distance",
    "rotary_frequencies",
    "rotate_every_two",
    "theta_shift",
]
