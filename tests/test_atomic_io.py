"""Atomic writes: the ``'atomic_local'`` backend, ``AtomicCheckpointHook`` and ``AtomicLoggerHook``,
which the RMT configs select; importing mmrmt leaves mmengine's own local backend in place."""

import json
import os
import signal
import subprocess
import sys
import time
from unittest import mock

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.fileio import get_file_backend
from mmengine.fileio.backends import LocalBackend
from mmengine.registry import HOOKS
from mmengine.runner.checkpoint import save_checkpoint

import mmrmt  # noqa: F401  (registers the atomic backend and hook)
from mmrmt.engine import (
    ATOMIC_BACKEND,
    AtomicCheckpointHook,
    AtomicLocalBackend,
    atomic_write_bytes,
)
from mmrmt.engine import hooks as hooks_module
from mmrmt.engine.hooks import checkpoint_step
from tests.helpers import REPO

ATOMIC = dict(backend=ATOMIC_BACKEND)


def test_importing_mmrmt_keeps_mmengines_local_backend(tmp_path):
    assert type(get_file_backend(str(tmp_path / "x.pth"))) is LocalBackend


def test_atomic_backend_is_selected_by_name(tmp_path):
    assert isinstance(
        get_file_backend(str(tmp_path / "x.pth"), backend_args=ATOMIC), AtomicLocalBackend
    )
    save_checkpoint(
        {"state_dict": {"w": torch.ones(3)}}, str(tmp_path / "epoch_1.pth"), backend_args=ATOMIC
    )
    assert torch.equal(torch.load(tmp_path / "epoch_1.pth")["state_dict"]["w"], torch.ones(3))
    assert sorted(os.listdir(tmp_path)) == ["epoch_1.pth"]  # no temporary file left
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(tmp_path / "epoch_1.pth").st_mode & 0o777 == 0o666 & ~umask


def test_failed_write_keeps_previous_file(tmp_path, monkeypatch):
    target = tmp_path / "last_checkpoint"
    atomic_write_bytes(b"epoch_1.pth", target)

    def crash(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_bytes(b"epoch_2.pth (half written", target)
    assert target.read_bytes() == b"epoch_1.pth"
    assert os.listdir(tmp_path) == ["last_checkpoint"]


_WRITER = """
import sys, torch, mmrmt
from mmengine.runner.checkpoint import save_checkpoint
state = {"state_dict": {"w": torch.randn(12_000_000)}}
for step in range(1000):
    state["meta"] = {"iter": step}
    save_checkpoint(state, sys.argv[1], backend_args=dict(backend="atomic_local"))
    print(step, flush=True)
"""


def test_sigkill_during_saves_never_leaves_a_corrupt_checkpoint(tmp_path):
    target = tmp_path / "iter.pth"
    for delay in (0.05, 0.13, 0.29):
        writer = subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(target)], stdout=subprocess.PIPE, text=True
        )
        while not writer.stdout.readline().strip().isdigit():
            pass  # skip log lines until the first checkpoint is complete
        time.sleep(delay)  # then kill it at some point of a later write
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        loaded = torch.load(target)
        assert loaded["state_dict"]["w"].numel() == 12_000_000
        assert isinstance(loaded["meta"]["iter"], int)


def test_stale_temp_files_of_dead_writers_are_removed_live_ones_kept(tmp_path):
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    dead_temp = tmp_path / f".metrics.json.{dead.stdout.strip()}.abc.partial"
    live_temp = tmp_path / f".metrics.json.{os.getppid()}.def.partial"
    dead_temp.write_bytes(b"half")
    live_temp.write_bytes(b"writing")
    atomic_write_bytes(b"{}", tmp_path / "metrics.json")
    assert not dead_temp.exists()
    assert live_temp.exists()
    assert (tmp_path / "metrics.json").read_bytes() == b"{}"


# -- the hook ------------------------------------------------------------------------------------
def fake_runner(work_dir) -> mock.Mock:
    """What CheckpointHook reads of a Runner, saving through mmengine's save_checkpoint."""
    runner = mock.Mock(work_dir=str(work_dir), epoch=0, iter=0, max_epochs=2, max_iters=10)
    runner.message_hub.get_info.return_value = None

    def save(out_dir, filename, *args, backend_args=None, **kwargs):
        save_checkpoint(
            {"w": torch.ones(2)}, os.path.join(out_dir, filename), backend_args=backend_args
        )

    runner.save_checkpoint.side_effect = save
    return runner


def test_hook_writes_checkpoints_and_resume_pointer_atomically(tmp_path, monkeypatch):
    hook = HOOKS.build(dict(type="AtomicCheckpointHook", interval=1))
    runner = fake_runner(tmp_path)
    hook.before_train(runner)
    assert hook.backend_args == ATOMIC and isinstance(hook.file_backend, AtomicLocalBackend)
    written = []
    real_write = hooks_module.atomic_write_bytes

    def spy(data, path):
        written.append(os.path.basename(str(path)))
        real_write(data, path)

    monkeypatch.setattr(hooks_module, "atomic_write_bytes", spy)
    monkeypatch.setattr("mmrmt.engine.atomic_io.atomic_write_bytes", spy)
    hook._save_checkpoint_with_step(runner, 1, meta={})
    assert written == ["epoch_1.pth", "last_checkpoint"]
    assert (tmp_path / "last_checkpoint").read_text() == str(tmp_path / "epoch_1.pth")
    assert torch.equal(torch.load(tmp_path / "epoch_1.pth")["w"], torch.ones(2))
    assert not hasattr(hooks_module.checkpoint_hook_module, "open")  # the redirect is undone


def save_epochs(folder, *epochs) -> None:
    for epoch in epochs:
        torch.save({"epoch": epoch}, folder / f"epoch_{epoch}.pth")


def resuming_runner(work_dir, **cfg) -> mock.Mock:
    runner = fake_runner(work_dir)
    runner.cfg = Config(dict(dict(resume=True, load_from=None), **cfg))
    return runner


@pytest.mark.parametrize("pointer", [None, "epoch_1.pth", "epoch_9.pth"])
def test_resume_follows_a_checkpoint_saved_after_the_last_pointer(tmp_path, pointer):
    """Killed between a checkpoint's rename and its pointer's: the pointer is behind, missing,
    or names a file that is gone."""
    save_epochs(tmp_path, 1, 2, 10)
    (tmp_path / ".epoch_11.pth.123.abc.partial").write_bytes(b"half")  # a killed writer's
    (tmp_path / "epoch_10.pth").unlink()
    if pointer is not None:
        (tmp_path / "last_checkpoint").write_text(str(tmp_path / pointer))
    AtomicCheckpointHook(interval=1).before_run(resuming_runner(tmp_path))
    assert (tmp_path / "last_checkpoint").read_text() == str(tmp_path / "epoch_2.pth")


@pytest.mark.parametrize(
    "cfg",
    [dict(), dict(resume=False), dict(load_from="other.pth")],
    ids=["pointer-is-newest", "no-resume", "explicit-checkpoint"],
)
def test_resume_pointer_is_left_alone_otherwise(tmp_path, cfg):
    save_epochs(tmp_path, 1, 2)
    pointer = tmp_path / "last_checkpoint"
    pointer.write_text(str(tmp_path / ("epoch_2.pth" if not cfg else "epoch_1.pth")))
    before = pointer.read_text()
    AtomicCheckpointHook(interval=1).before_run(resuming_runner(tmp_path, **cfg))
    assert pointer.read_text() == before


def test_checkpoints_outside_the_work_dir_are_not_searched(tmp_path):
    save_epochs(tmp_path, 1)
    AtomicCheckpointHook(interval=1, out_dir=str(tmp_path / "out")).before_run(
        resuming_runner(tmp_path)
    )
    assert not (tmp_path / "last_checkpoint").exists()


def test_checkpoint_step_reads_the_hooks_file_names():
    assert checkpoint_step("/w/epoch_12.pth", "epoch_{}.pth") == 12
    assert checkpoint_step("/w/iter_4000.pth", "iter_{}.pth") == 4000
    assert checkpoint_step("/w/best_coco_bbox_mAP_epoch_3.pth", "epoch_{}.pth") == -1
    assert checkpoint_step("/w/.epoch_3.pth.1.x.partial", "epoch_{}.pth") == -1


def test_hook_leaves_a_configured_backend_alone(tmp_path):
    hook = AtomicCheckpointHook(interval=1, backend_args=dict(backend="local"))
    hook.before_train(fake_runner(tmp_path))
    assert type(hook.file_backend) is LocalBackend


@pytest.mark.parametrize(
    "config",
    [
        "configs/det/maskrcnn_rmt_s_coco.py",
        "configs/det/cascade_maskrcnn_rmt_s_coco_3x_ms.py",
        "configs/det/retinanet_rmt_t_coco.py",
        "configs/det/maskrcnn_rmt_t_toy.py",
        "configs/seg/fpn_rmt_s_ade20k.py",
        "configs/seg/upernet_rmt_s_ade20k.py",
        "configs/seg/fpn_rmt_t_toy.py",
    ],
)
def test_rmt_configs_select_the_atomic_hooks(config):
    cfg = Config.fromfile(str(REPO / config))
    assert cfg.default_hooks.checkpoint.type == "AtomicCheckpointHook"
    assert cfg.default_hooks.logger.type == "AtomicLoggerHook"
    assert cfg.default_hooks.logger.interval in (10, 50)  # the base's options are kept


# -- the logger hook -------------------------------------------------------------------------------
def metrics_runner(log_dir) -> mock.Mock:
    """What LoggerHook.after_test_epoch reads of a Runner: numpy values, as mmdet's metrics are."""
    runner = mock.Mock(log_dir=str(log_dir), timestamp="20261202_000000", iter=0)
    runner.test_dataloader = [0, 1]
    tag = {"coco/bbox_mAP": np.float64(0.25), "coco/segm_mAP": 0.5, "time": 0.1}
    runner.log_processor.get_log_after_epoch.return_value = (tag, "bbox_mAP: 0.2500")
    return runner


def test_logger_hook_writes_the_metrics_file_of_mmengines_hook(tmp_path):
    ours, stock = tmp_path / "ours", tmp_path / "stock"
    for folder, name in ((ours, "AtomicLoggerHook"), (stock, "LoggerHook")):
        folder.mkdir()
        hook, runner = HOOKS.build(dict(type=name)), metrics_runner(folder)
        hook.before_run(runner)
        hook.after_test_epoch(runner)
        runner.logger.info.assert_called_once_with("bbox_mAP: 0.2500")
    written = (ours / "20261202_000000.json").read_text()
    assert json.loads(written) == json.loads((stock / "20261202_000000.json").read_text())
    assert json.loads(written)["coco/bbox_mAP"] == 0.25
    assert os.listdir(ours) == ["20261202_000000.json"]  # no temporary file left behind


def test_logger_hook_writes_metrics_on_rank_zero_only(tmp_path, monkeypatch):
    monkeypatch.setattr(hooks_module, "is_main_process", lambda: False)
    hook, runner = HOOKS.build(dict(type="AtomicLoggerHook")), metrics_runner(tmp_path)
    hook.before_run(runner)
    hook.after_test_epoch(runner)
    runner.logger.info.assert_called_once_with("bbox_mAP: 0.2500")  # every rank still logs
    assert os.listdir(tmp_path) == []


def test_logger_hook_writes_the_metrics_file_in_one_rename(tmp_path, monkeypatch):
    written = []
    monkeypatch.setattr(
        hooks_module, "atomic_write_bytes", lambda data, path: written.append((data, str(path)))
    )
    hook, runner = HOOKS.build(dict(type="AtomicLoggerHook")), metrics_runner(tmp_path)
    hook.before_run(runner)
    hook.after_test_epoch(runner)
    [(data, path)] = written
    assert path == str(tmp_path / "20261202_000000.json")
    assert json.loads(data)["coco/segm_mAP"] == 0.5
