"""Hooks whose files survive kills and concurrent ranks.

* ``AtomicCheckpointHook``: mmengine's ``CheckpointHook`` whose local writes are atomic. The RMT
  configs select it (``default_hooks.checkpoint.type='AtomicCheckpointHook'``), so a run killed at
  any moment leaves only complete checkpoints and a ``last_checkpoint`` pointer that ``--resume``
  can follow. Its options are ``CheckpointHook``'s.
* ``AtomicLoggerHook``: mmengine's ``LoggerHook`` whose test-metrics JSON is written once, by
  rank 0, in one rename (``default_hooks.logger.type='AtomicLoggerHook'``). Its options are
  ``LoggerHook``'s.
"""

import builtins
import contextlib
import io
import os
import os.path as osp
import re
from typing import Iterator, Optional

from mmengine.dist import is_main_process
from mmengine.fileio import dump
from mmengine.fileio.backends import LocalBackend
from mmengine.hooks import CheckpointHook, LoggerHook
from mmengine.hooks import checkpoint_hook as checkpoint_hook_module
from mmengine.logging import print_log
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

    def before_run(self, runner) -> None:
        """Before an automatic resume, point ``last_checkpoint`` at the newest checkpoint.

        A checkpoint and its pointer are two files: a run killed after the checkpoint's rename
        and before the pointer's leaves a pointer one checkpoint behind (or none at all), and
        mmengine's ``--resume`` would redo that epoch, or start over. The checkpoints this hook
        wrote in the work dir are complete (atomic), so the newest of them is where to resume.
        """
        super().before_run(runner)
        if not runner.cfg.get("resume") or runner.cfg.get("load_from") or self.out_dir is not None:
            return  # no automatic resume, or checkpoints outside the work dir
        newest = newest_checkpoint(runner.work_dir, self.filename_tmpl)
        pointer = osp.join(runner.work_dir, LAST_CHECKPOINT)
        current = None
        if osp.isfile(pointer):
            with open(pointer) as file:
                current = file.read().strip()
        reachable = current is not None and osp.isfile(current)
        current_step = checkpoint_step(current, self.filename_tmpl) if reachable else -1
        if newest is None or checkpoint_step(newest, self.filename_tmpl) <= current_step:
            return
        atomic_write_bytes(newest.encode("utf-8"), pointer)
        print_log(
            f"{LAST_CHECKPOINT} pointed at {current}; resuming from the newer {newest}, "
            "which the previous run saved before it stopped",
            logger="current",
        )

    def _save_checkpoint_with_step(self, runner, step: int, meta: Optional[dict]) -> None:
        with _atomic_pointer_writes(osp.join(runner.work_dir, LAST_CHECKPOINT)):
            super()._save_checkpoint_with_step(runner, step, meta)


def checkpoint_step(path: str, filename_tmpl: str) -> int:
    """The step (epoch or iteration) in a checkpoint's file name, or -1 if it has none.

    Args:
        path (str): A checkpoint path.
        filename_tmpl (str): The hook's file name template, e.g. ``'epoch_{}.pth'``.
    """
    pattern = re.escape(filename_tmpl).replace(re.escape("{}"), r"(\d+)")
    match = re.fullmatch(pattern, osp.basename(path))
    return int(match.group(1)) if match else -1


def newest_checkpoint(folder: str, filename_tmpl: str) -> Optional[str]:
    """The checkpoint of ``folder`` named by ``filename_tmpl`` with the highest step, if any."""
    steps = {
        name: checkpoint_step(name, filename_tmpl)
        for name in os.listdir(folder)
        if osp.isfile(osp.join(folder, name))
    }
    steps = {name: step for name, step in steps.items() if step >= 0}
    if not steps:
        return None
    return osp.join(folder, max(steps, key=steps.get))


@HOOKS.register_module()
class AtomicLoggerHook(LoggerHook):
    """mmengine's ``LoggerHook``; the test metrics file is written by rank 0 only, atomically.

    ``LoggerHook.after_test_epoch`` dumps ``<timestamp>.json`` on every rank, and every rank of
    a distributed test shares the timestamp and the log folder: two ranks writing one file at
    once can interleave into invalid JSON (``Extra data``), on a local disk as on a cluster file
    system. Here every rank logs the metrics line as before, and only the main process writes
    the file, through a temporary file and a rename, so a reader never sees a partial file.
    Takes every argument of ``LoggerHook``.
    """

    def after_test_epoch(self, runner, metrics: Optional[dict] = None) -> None:
        """Log the test metrics; rank 0 writes them to ``<log_dir>/<timestamp>.json``."""
        tag, log_str = runner.log_processor.get_log_after_epoch(
            runner, len(runner.test_dataloader), "test", with_non_scalar=True
        )
        runner.logger.info(log_str)
        if is_main_process():
            text = dump(self._process_tags(tag), file_format="json")
            atomic_write_bytes(text.encode("utf-8"), osp.join(runner.log_dir, self.json_log_path))
