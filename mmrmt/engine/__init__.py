"""Runtime helpers for mmengine: atomic checkpoint writes."""

from .atomic_io import AtomicLocalBackend, atomic_write_bytes, register_atomic_local_backend

__all__ = ["AtomicLocalBackend", "atomic_write_bytes", "register_atomic_local_backend"]
