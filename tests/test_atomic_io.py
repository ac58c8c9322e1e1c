"""Checkpoint writes through mmengine are atomic once mmrmt is imported."""

import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from mmengine.fileio import get_file_backend
from mmengine.runner.checkpoint import save_checkpoint

import mmrmt  # noqa: F401  (registers the atomic backend)
from mmrmt.engine import AtomicLocalBackend, atomic_write_bytes


def test_mmengine_uses_atomic_backend_for_local_paths(tmp_path):
    assert isinstance(get_file_backend(str(tmp_path / "x.pth")), AtomicLocalBackend)
    save_checkpoint({"state_dict": {"w": torch.ones(3)}}, str(tmp_path / "epoch_1.pth"))
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
    save_checkpoint(state, sys.argv[1])
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
