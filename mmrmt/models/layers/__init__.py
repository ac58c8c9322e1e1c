"""Building blocks of RMT: position tables and Manhattan Self-Attention."""

from .cpu_kernels import cpu_kernels_available, set_cpu_kernels, use_cpu_kernels
from .depthwise_conv import DepthwiseConv2d
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
    "cpu_kernels_available",
    "head_decay_rates",
    "manhattan_distance",
    "rotary_frequencies",
    "rotate_every_two",
    "set_cpu_kernels",
    "theta_shift",
    "use_cpu_kernels",
]
