"""``AtomicCheckpointHook``: mmengine's ``CheckpointHook`` whose local writes are atomic.

The RMT configs select it (``default_hooks.checkpoint.type='AtomicCheckpointHook'``), so a run
killed at any moment leaves only complete checkpoints and a ``last_checkpoint`` pointer that
``--resume`` can follow. Any other config can select it the same way; its options are
``CheckpointHook``'s.
"""

import builtins
import contextlib
import io
import os.path as osp
from typing import Iterator, Optional

from mmengine.fileio.backends import LocalBackend
from mmengine.hooks import CheckpointHook
from mmengine.hooks import checkpoint_hook as checkpoint_hook_module
from mmengine.registry import HOOKS

from .atomic_io import ATOMIC_BACKEND, AtomicLocalBackend, atomic_write_bytes

LAST_CHECKPOINT = "last_checkpoint"


class _AtomicTextFile(io.StringIO):
    """A text file that reaches ``path`` in one atomic rename when it is closed."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path

    def close(self) -> None:
        if not self.closed:
            atomic_write_bytes(self.getvalue().encode("utf-8"), self.path)
        super().close()


@contextlib.contextmanager
def _atomic_pointer_writes(pointer: str) -> Iterator[None]:
    """Within the block, mmengine's hook module opens ``pointer`` for writing atomically.

    ``CheckpointHook`` writes the ``last_checkpoint`` pointer with a bare ``open(path, 'w')``
    (truncate, then write); a kill in between leaves an empty pointer that ``--resume`` cannot
    follow. Only that module's ``open`` name and only that path are redirected, and only here.
    """

    def open_pointer(file, mode="r", *args, **kwargs):
        if osp.abspath(str(file)) == osp.abspath(pointer) and mode == "w":
            return _AtomicTextFile(pointer)
        return builtins.open(file, mode, *args, **kwargs)

    previous = vars(checkpoint_hook_module).get("open")
    checkpoint_hook_module.open = open_pointer
    try:
        yield
    finally:
        if previous is None:
            del checkpoint_hook_module.open
        else:
            checkpoint_hook_module.open = previous


@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """mmengine's ``CheckpointHook``; checkpoints and the resume pointer are written atomically.

    For a local ``out_dir`` without ``backend_args``, checkpoints go through
    :class:`~mmrmt.engine.atomic_io.AtomicLocalBackend`; other backends (``s3://``, ...) are left
    as configured. Takes every argument of ``CheckpointHook``.
    """

    def before_train(self, runner) -> None:
        """Resolve the output folder, then switch local writes to the atomic backend."""
        super().before_train(runner)
        if self.backend_args is None and type(self.file_backend) is LocalBackend:
            self.backend_args = dict(backend=ATOMIC_BACKEND)
            self.file_backend = AtomicLocalBackend()

    def _save_checkpoint_with_step(self, runner, step: int, meta: Optional[dict]) -> None:
        with _atomic_pointer_writes(osp.join(runner.work_dir, LAST_CHECKPOINT)):
            super()._save_checkpoint_with_step(runner, step, meta)
