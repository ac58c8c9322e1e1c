"""mmengine runtime parts: atomic checkpoint writes and distributed runs without a GPU.

Importing registers :class:`AtomicCheckpointHook`, :class:`AtomicLoggerHook` (``HOOKS``) and
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

__all__ = [
    "ATOMIC_BACKEND",
    "AtomicCheckpointHook",
    "AtomicLoggerHook",
    "AtomicLocalBackend",
    "CPUDistributedDataParallel",
    "atomic_write_bytes",
    "register_atomic_local_backend",
    "setup_launcher",
]
