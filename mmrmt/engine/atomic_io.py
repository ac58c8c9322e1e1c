"""Atomic local writes, so a kill during a checkpoint save loses nothing.

mmengine writes checkpoints with ``LocalBackend.put``, which opens the final path and writes into
it: a run killed mid-save leaves a truncated file, possibly its only checkpoint.
:func:`atomic_write_bytes` writes to a temporary file in the same folder, flushes it to disk and
renames it over the target (``os.replace`` is atomic on POSIX and Windows), so every path a
reader can see holds a complete file.

:class:`AtomicLocalBackend` is registered in mmengine's file backends under its own name,
``'atomic_local'``: nothing is replaced, and only code that asks for it with
``backend_args=dict(backend='atomic_local')`` gets it (:class:`~mmrmt.engine.AtomicCheckpointHook`
does, for local work dirs).
"""

import contextlib
import glob
import os
import os.path as osp
import tempfile
from pathlib import Path
from typing import Union

from mmengine.fileio.backends import LocalBackend, register_backend

TEMP_SUFFIX = ".partial"
#: The name :class:`AtomicLocalBackend` is registered under in mmengine's file backends.
ATOMIC_BACKEND = "atomic_local"


def atomic_write_bytes(data: bytes, filepath: Union[str, Path]) -> None:
    """Write ``data`` to ``filepath`` so that readers see the old file or the whole new one.

    Args:
        data (bytes): File content.
        filepath (str | Path): Destination; its folder is created if missing.
    """
    filepath = str(filepath)
    folder = osp.dirname(osp.abspath(filepath))
    os.makedirs(folder, exist_ok=True)
    prefix = f".{osp.basename(filepath)}."
    _remove_stale_temp_files(folder, prefix)
    # The pid in the name tells later writers whether the file's owner is still alive: several
    # ranks of a distributed run may write the same path at once.
    handle, temp_path = tempfile.mkstemp(
        prefix=f"{prefix}{os.getpid()}.", suffix=TEMP_SUFFIX, dir=folder
    )
    try:
        # mkstemp creates 0600 files; give the result the permissions open() would have.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temp_path, 0o666 & ~umask)
        with os.fdopen(handle, "wb") as temp_file:
            temp_file.write(data)
            temp_file.flush()
            os.fsync(temp_file.fileno())
        os.replace(temp_path, filepath)
    except BaseException:
        if osp.exists(temp_path):
            os.remove(temp_path)
        raise


def _remove_stale_temp_files(folder: str, prefix: str) -> None:
    """Delete temporary files that killed writers of this path left behind."""
    for stale in glob.glob(osp.join(folder, glob.escape(prefix) + "*" + TEMP_SUFFIX)):
        owner = osp.basename(stale)[len(prefix) :].split(".")[0]
        if owner.isdigit() and _process_alive(int(owner)):
            continue
        with contextlib.suppress(FileNotFoundError):
            os.remove(stale)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


class AtomicLocalBackend(LocalBackend):
    """mmengine's local file backend with atomic ``put`` and ``put_text``."""

    def put(self, obj: bytes, filepath: Union[str, Path]) -> None:
        """Write bytes to ``filepath`` atomically."""
        atomic_write_bytes(obj, filepath)

    def put_text(self, obj: str, filepath: Union[str, Path], encoding: str = "utf-8") -> None:
        """Write text to ``filepath`` atomically."""
        atomic_write_bytes(obj.encode(encoding), filepath)


def register_atomic_local_backend() -> None:
    """Register :class:`AtomicLocalBackend` as mmengine backend ``'atomic_local'``.

    No URI prefix is given, so plain local paths keep mmengine's own ``LocalBackend``.
    """
    register_backend(ATOMIC_BACKEND, AtomicLocalBackend, force=True)
