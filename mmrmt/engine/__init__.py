"""mmengine runtime parts: atomic checkpoint writes and distributed runs without a GPU.

Importing registers :class:`AtomicCheckpointHook`, :class:`AtomicLoggerHook`,
:class:`DeformableAttentionFP32Hook` (``HOOKS``) and
:class:`CPUDistributedDataParallel` (``MODEL_WRAPPERS``) in mmengine's root registries;
:func:`register_atomic_local_backend` adds the ``'atomic_local'`` file backend under its own name
(``import mmrmt`` calls it).
"""

from .atomic_io import (
    ATOMIC_BACKEND,
    AtomicLocalBackend,
    atomic_write_bytes,
    register_atomic_local_backend,
)
from .distributed import CPUDistributedDataParallel, setup_launcher
from .hooks import AtomicCheckpointHook, AtomicLoggerHook
from .precision import DeformableAttentionFP32Hook

__all__ = [
    "ATOMIC_BACKEND",
    "AtomicCheckpointHook",
    "AtomicLoggerHook",
    "AtomicLocalBackend",
    "CPUDistributedDataParallel",
    "DeformableAttentionFP32Hook",
    "atomic_write_bytes",
    "register_atomic_local_backend",
    "setup_launcher",
]
