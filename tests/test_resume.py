"""Nothing is lost: a SIGKILLed toy training resumes and finishes; same seed, same losses."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import mmrmt  # noqa: F401  (lets torch.load read mmengine's checkpoints with weights_only)

REPO = Path(__file__).resolve().parents[1]
TOY_CONFIG = REPO / "configs/det/maskrcnn_rmt_t_toy.py"

# A short schedule of the toy detector: 12 images, batch 4 -> 3 iterations an epoch, a checkpoint
# every epoch, no validation, a loss logged every iteration.
SHORT_SCHEDULE = [
    "train_dataloader.dataset.indices=12",
    "train_dataloader.batch_size=4",
    "train_dataloader.num_workers=0",
    "train_dataloader.persistent_workers=False",
    "val_cfg=None",
    "val_dataloader=None",
    "val_evaluator=None",
    "default_hooks.checkpoint.interval=1",
    "default_hooks.logger.interval=1",
]


def _train_command(work_dir: Path, max_epochs: int, *extra: str, options=()) -> list:
    return [
        sys.executable,
        str(REPO / "tools/train.py"),
        str(TOY_CONFIG),
        "--work-dir",
        str(work_dir),
        *extra,
        "--cfg-options",
        *SHORT_SCHEDULE,
        f"train_cfg.max_epochs={max_epochs}",
        *options,
    ]


def _losses(work_dir: Path) -> list:
    """Per-iteration (iter, loss) of the latest run in ``work_dir``, from mmengine's scalar log."""
    latest_run = sorted(work_dir.glob("*/vis_data/scalars.json"))[-1]
    records = [json.loads(line) for line in latest_run.read_text().splitlines()]
    return [(record["iter"], record["loss"]) for record in records if "loss" in record]


@pytest.fixture(scope="module", autouse=True)
def _toy_data():
    if not (REPO / "data/toy_coco/annotations/instances_train.json").exists():
        subprocess.run([sys.executable, str(REPO / "tools/make_toy_data.py")], cwd=REPO, check=True)


def test_sigkill_then_resume_continues_from_the_saved_epoch(tmp_path):
    work_dir = tmp_path / "run"
    first = subprocess.Popen(
        _train_command(work_dir, max_epochs=4),
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 600
    while not (work_dir / "epoch_2.pth").exists() and first.poll() is None:
        assert time.time() < deadline, "toy training did not reach epoch 2 in 10 minutes"
        time.sleep(0.2)
    assert first.poll() is None, "the first run ended before it could be killed"
    first.send_signal(signal.SIGKILL)
    first.wait()
    for checkpoint in work_dir.glob("epoch_*.pth"):  # every checkpoint left behind loads
        assert "state_dict" in torch.load(checkpoint, map_location="cpu")
    saved_epoch = max(int(path.stem.split("_")[1]) for path in work_dir.glob("epoch_*.pth"))

    resumed = subprocess.run(
        _train_command(work_dir, 4, "--resume"), cwd=REPO, capture_output=True, text=True
    )
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert f"resumed epoch: {saved_epoch}" in resumed.stdout + resumed.stderr
    final = torch.load(work_dir / "epoch_4.pth", map_location="cpu")
    assert final["meta"]["epoch"] == 4 and final["meta"]["iter"] == 12
    resumed_iterations = [iteration for iteration, _ in _losses(work_dir)]
    # It continues after the saved epoch (3 iterations each) instead of starting over.
    assert resumed_iterations == list(range(3 * saved_epoch + 1, 13))


def test_resume_after_a_kill_between_checkpoint_and_pointer(tmp_path):
    """The window SIGKILL can hit by chance above, made certain: epoch 2's checkpoint is saved,
    the pointer still names epoch 1."""
    work_dir = tmp_path / "run"
    first = subprocess.run(_train_command(work_dir, 2), cwd=REPO, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr[-3000:]
    (work_dir / "last_checkpoint").write_text(str(work_dir / "epoch_1.pth"))
    resumed = subprocess.run(
        _train_command(work_dir, 3, "--resume"), cwd=REPO, capture_output=True, text=True
    )
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert "resumed epoch: 2" in resumed.stdout + resumed.stderr
    assert [iteration for iteration, _ in _losses(work_dir)] == [7, 8, 9]


def test_same_seed_gives_identical_first_losses(tmp_path):
    runs = []
    for name in ("a", "b"):
        work_dir = tmp_path / name
        result = subprocess.run(
            _train_command(work_dir, 1, options=["randomness.deterministic=True"]),
            cwd=REPO,
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        runs.append(_losses(work_dir))
    assert len(runs[0]) == 3
    assert runs[0] == runs[1]
    assert os.path.exists(tmp_path / "a" / "epoch_1.pth")
