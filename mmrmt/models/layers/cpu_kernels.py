"""``mmrmt._ext``, the package's compiled CPU kernels, and the one switch that lets them run.

Two kernels live in ``mmrmt/csrc`` (compiled by ``pip install`` / ``make install``;
``MMRMT_WITH_OPS=0`` skips them): the depthwise convs' weight gradient
(:mod:`~mmrmt.models.layers.depthwise_conv`) and MaSA with its decay made inside the kernel
(:mod:`~mmrmt.models.layers.decay_attention`). Each computes the same function as the PyTorch ops
it replaces, which run wherever a kernel does not: without the extension, off the CPU, in other
dtypes, under CPU autocast, in traced graphs, or when switched off here.
"""

import contextlib
from types import ModuleType
from typing import Iterator, Optional

import torch
from torch import Tensor

from .position import in_traced_graph

try:
    from mmrmt import _ext
except ImportError:  # installed without the compiled ops
    _ext = None

_enabled = True


def cpu_kernels_available() -> bool:
    """Whether ``mmrmt._ext``, the compiled CPU kernels, could be imported."""
    return _ext is not None


def extension() -> Optional[ModuleType]:
    """``mmrmt._ext``, or None where it was not built."""
    return _ext


def set_cpu_kernels(enabled: bool) -> bool:
    """Let the layers use ``mmrmt._ext``'s kernels (the default), or not.

    Args:
        enabled (bool): Whether the kernels may run (where :func:`cpu_kernels_allowed` says so).

    Returns:
        bool: The previous setting.
    """
    global _enabled
    previous, _enabled = _enabled, bool(enabled)
    return previous


@contextlib.contextmanager
def use_cpu_kernels(enabled: bool) -> Iterator[None]:
    """:func:`set_cpu_kernels` inside the block, the previous setting after it.

    Args:
        enabled (bool): Whether the layers may use ``mmrmt._ext``.
    """
    previous = set_cpu_kernels(enabled)
    try:
        yield
    finally:
        set_cpu_kernels(previous)


def cpu_kernels_allowed(x: Tensor) -> bool:
    """What every kernel of ``mmrmt._ext`` needs of an input ``x``: the extension built and
    switched on, a CPU tensor, no CPU autocast (which picks the ops' dtypes itself), and no
    tracer recording (ONNX, torch.export, torch.compile, jit keep the plain ops their backends
    and counters know)."""
    if _ext is None or not _enabled or x.device.type != "cpu":
        return False
    if torch.is_autocast_enabled("cpu"):
        return False
    return not in_traced_graph()
