"""The toy demo end to end: toy data, training, evaluation, pictures, learning curves, summary.

The config's ``default_scope`` picks the task (``mmdet``: boxes and masks, bbox/segm mAP;
``mmseg``: class maps, mIoU). Training and evaluation run the repository's ``tools/train.py`` and
``tools/test.py`` in subprocesses, so the demo exercises the real command line. The work dir
receives the training run (logs, checkpoints), ``test/`` (the evaluation run), ``predictions/``
(pictures of a few validation images), ``curves.png`` (training loss and the validation metric
over training) and ``summary.json``.

Re-running is idempotent: a finished training run (its final checkpoint exists) is reused and
only evaluation, pictures and plot are redone; an interrupted run resumes from its last
checkpoint; ``retrain`` deletes the work dir and trains from scratch.
"""

import glob
import json
import os
import os.path as osp
import shutil
import subprocess
import sys
import time
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from mmengine.config import Config

from ..errors import StepFailedError
from ..package_data import mim_path
from ..toy_data import make_toy_ade, make_toy_coco
from ..utils import config_scope, load_config, parse_cfg_options
from ..visualization import draw_predictions, list_images
from .curves import plot_curves, read_scalars
from .report import previous_train_seconds, summary_lines, write_summary

#: Validation metrics plotted and reported, per scope (the first is the headline figure).
METRIC_KEYS: Dict[str, Tuple[str, ...]] = {
    "mmdet": ("coco/bbox_mAP", "coco/segm_mAP"),
    "mmseg": ("mIoU",),
}
#: Detectors whose boxes are derived from their masks: their headline is the mask mAP.
MASK_FIRST_MODELS = ("Mask2Former", "MaskFormer")


def metric_keys(cfg: Config, scope: str) -> Tuple[str, ...]:
    """The validation metrics to plot and report for ``cfg``, the headline first.

    mmseg configs report ``mIoU``. mmdet configs report the COCO mAPs their evaluator computes
    (``bbox`` for DINO; ``bbox`` and ``segm`` for Mask R-CNN), the mask mAP first for
    Mask2Former, whose boxes are those of its masks.
    """
    if scope == "mmseg":
        return METRIC_KEYS["mmseg"]
    evaluator = cfg.val_evaluator
    metrics = evaluator.get("metric", "bbox") if isinstance(evaluator, dict) else "bbox"
    metrics = [metrics] if isinstance(metrics, str) else list(metrics)
    keys = [key for key in METRIC_KEYS["mmdet"] if key.split("/")[1].split("_")[0] in metrics]
    if cfg.model.type in MASK_FIRST_MODELS:
        keys.sort(key=lambda key: key != "coco/segm_mAP")
    return tuple(keys)


#: Where each scope's images live in its dataset's ``data_prefix``.
IMAGE_PREFIX_KEY = {"mmdet": "img", "mmseg": "img_path"}


def use_threads(threads: int) -> None:
    """Run this process and the tools it starts on ``threads`` CPU threads.

    Sets ``OMP_NUM_THREADS`` and ``MKL_NUM_THREADS`` in this process's environment, which the
    subprocesses inherit, and torch's thread count here.
    """
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(threads)
    torch.set_num_threads(threads)


def ensure_toy_data(cfg: Config, scope: str) -> str:
    """Generate the config's toy dataset if it is missing; returns the generator's summary."""
    make = make_toy_coco if scope == "mmdet" else make_toy_ade
    return make(cfg.train_dataloader.dataset.data_root.rstrip("/"))


def final_checkpoint(cfg: Config, work_dir: str) -> str:
    """Path of the checkpoint that mmengine's CheckpointHook writes at the end of training."""
    train_cfg = cfg.train_cfg
    if "max_epochs" in train_cfg:
        return osp.join(work_dir, f"epoch_{train_cfg.max_epochs}.pth")
    return osp.join(work_dir, f"iter_{train_cfg.max_iters}.pth")


def run_script(script: str, args: Sequence[str]) -> None:
    """Run the package's ``tools/<script>`` (``mmrmt/.mim/tools``) with this interpreter.

    Raises:
        FileNotFoundError: The package data lacks the script.
        StepFailedError: The script failed; it has printed its own messages.
    """
    path = mim_path("tools", script)
    returncode = subprocess.run([sys.executable, path, *args]).returncode
    if returncode != 0:
        raise StepFailedError(f"tools/{script} failed with exit code {returncode} (see above)")


def train(
    config: str, cfg: Config, work_dir: str, extra: Sequence[str]
) -> Tuple[str, Optional[float]]:
    """Train unless the final checkpoint exists; resume an interrupted run.

    Args:
        config (str): Config file, for ``tools/train.py``.
        cfg (Config): The config as read (with ``extra``'s overrides).
        work_dir (str): The training work dir.
        extra (Sequence[str]): More ``tools/train.py`` arguments, e.g. ``--cfg-options ...``.

    Returns:
        tuple: The final checkpoint and the seconds this call spent training (None when the
        finished run is reused; a resumed run counts only its resumed part).
    """
    checkpoint = final_checkpoint(cfg, work_dir)
    if osp.isfile(checkpoint):
        print(f"toy_demo: reusing the finished training run in {work_dir}")
        return checkpoint, None
    resume = ["--resume"] if osp.isfile(osp.join(work_dir, "last_checkpoint")) else []
    start = time.time()
    run_script("train.py", [config, "--work-dir", work_dir, *resume, *extra])
    return checkpoint, time.time() - start


def evaluate(config: str, checkpoint: str, work_dir: str, extra: Sequence[str]) -> Dict:
    """Evaluate ``checkpoint`` with ``tools/test.py`` in ``work_dir/test``.

    Returns:
        dict: The metrics it logged, e.g. ``{'coco/bbox_mAP': 0.5, ...}``.
    """
    test_dir = osp.join(work_dir, "test")
    run_script("test.py", [config, checkpoint, "--work-dir", test_dir, *extra])
    # mmengine's LoggerHook dumps the test metrics to <work_dir>/<timestamp>/<timestamp>.json.
    runs = sorted(glob.glob(osp.join(test_dir, "*", "*.json")))
    if not runs:
        raise FileNotFoundError(f"tools/test.py wrote no metrics file under {test_dir}")
    with open(runs[-1]) as f:
        return json.load(f)


def val_images(cfg: Config, scope: str, count: int) -> List[str]:
    """The first ``count`` validation images (sorted by name)."""
    dataset = cfg.val_dataloader.dataset
    folder = osp.join(dataset.data_root, dataset.data_prefix[IMAGE_PREFIX_KEY[scope]])
    return list_images(folder)[:count]


def run_toy_demo(
    config: str,
    work_dir: str,
    cfg_options: Sequence[str] = (),
    retrain: bool = False,
    num_images: int = 6,
    score_thr: float = 0.5,
    display_size: int = 384,
) -> Dict:
    """Run the demo in ``work_dir``, print its report and return the summary.

    Args:
        config (str): A toy config, e.g. ``configs/det/maskrcnn_rmt_t_toy.py``.
        work_dir (str): Output folder.
        cfg_options (Sequence[str]): ``KEY=VALUE`` overrides, passed on to the tools as they are.
        retrain (bool): Delete ``work_dir`` first and train from scratch.
        num_images (int): Validation images to draw.
        score_thr (float): Detection: draw boxes above this score.
        display_size (int): Short side the pictures are enlarged towards.

    Returns:
        dict: What ``summary.json`` holds.

    Raises:
        FileNotFoundError: The config is missing.
        InvalidValueError: The config is outside mmdet/mmseg.
        StepFailedError: A tool failed.
    """
    cfg = load_config(config, parse_cfg_options(cfg_options))
    scope = config_scope(cfg)
    metrics_shown = metric_keys(cfg, scope)
    if retrain:
        shutil.rmtree(work_dir, ignore_errors=True)
    print(ensure_toy_data(cfg, scope))

    extra = ["--cfg-options", *cfg_options] if cfg_options else []
    checkpoint, train_seconds = train(config, cfg, work_dir, extra)
    summary_file = osp.join(work_dir, "summary.json")
    if train_seconds is None:
        train_seconds = previous_train_seconds(summary_file)
    metrics = evaluate(config, checkpoint, work_dir, extra)
    pictures = draw_predictions(
        cfg,
        checkpoint,
        val_images(cfg, scope, num_images),
        osp.join(work_dir, "predictions"),
        score_thr,
        display_size,
    )
    train_records, val_records = read_scalars(work_dir)
    by_epoch = "max_epochs" in cfg.train_cfg
    plot = plot_curves(
        train_records,
        val_records,
        metrics_shown,
        osp.join(work_dir, "curves.png"),
        "epoch" if by_epoch else "iteration",
    )
    summary = dict(
        config=config,
        checkpoint=checkpoint,
        train_seconds=train_seconds,
        test_metrics={k: metrics[k] for k in metrics_shown if k in metrics},
        val_curve=[
            {"step": r["step"], **{k: r[k] for k in metrics_shown if k in r}} for r in val_records
        ],
        pictures=pictures,
        plot=plot,
    )
    write_summary(summary, summary_file)
    for line in summary_lines(summary, metrics_shown[0], "epoch" if by_epoch else "iter"):
        print(f"toy_demo: {line}")
    return summary
