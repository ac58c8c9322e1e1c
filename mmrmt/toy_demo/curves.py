"""Learning curves: mmengine's scalar logs read back, and plotted to a PNG."""

import glob
import json
import os
import os.path as osp
from typing import Dict, List, Sequence, Tuple

from matplotlib.figure import Figure


def read_scalars(work_dir: str) -> Tuple[List[Dict], List[Dict]]:
    """Training and validation records from mmengine's ``vis_data/scalars.json`` logs.

    Every training run (a resumed run adds one) under ``work_dir`` is read in time order; a
    later record replaces an earlier one at the same step.

    Args:
        work_dir (str): The training work dir.

    Returns:
        tuple: (train records with ``loss``, validation records), each sorted by ``step``.
    """
    train: Dict[int, Dict] = {}
    val: Dict[int, Dict] = {}
    # The run folders are named by their start time, so sorting them orders the runs.
    for path in sorted(glob.glob(osp.join(work_dir, "*", "vis_data", "scalars.json"))):
        with open(path) as f:
            for line in f:
                record = json.loads(line)
                (train if "loss" in record else val)[record["step"]] = record
    return [train[s] for s in sorted(train)], [val[s] for s in sorted(val)]


def plot_curves(
    train_records: List[Dict],
    val_records: List[Dict],
    metric_keys: Sequence[str],
    out_file: str,
    val_step_label: str = "epoch",
) -> str:
    """Plot training loss (left) and validation metrics (right) to a 1000x400 PNG.

    Args:
        train_records (list[dict]): Records with ``step`` (iteration) and ``loss``.
        val_records (list[dict]): Records with ``step`` and some of ``metric_keys``.
        metric_keys (Sequence[str]): Validation metrics to draw, e.g. ``coco/bbox_mAP``.
        out_file (str): PNG path (its folder is created).
        val_step_label (str): What a validation ``step`` counts: ``'epoch'`` or ``'iteration'``.

    Returns:
        str: ``out_file``.
    """
    # A Figure without pyplot: no global backend to choose, nothing to close afterwards.
    fig = Figure(figsize=(10, 4))
    loss_ax, metric_ax = fig.subplots(1, 2)
    loss_ax.plot([r["step"] for r in train_records], [r["loss"] for r in train_records])
    loss_ax.set(xlabel="iteration", ylabel="loss", title="training loss")
    for key in metric_keys:
        points = [(r["step"], r[key]) for r in val_records if key in r]
        if points:
            steps, values = zip(*points)
            metric_ax.plot(steps, values, marker="o", label=key)
    metric_ax.set(xlabel=val_step_label, title="validation")
    if metric_ax.get_legend_handles_labels()[0]:
        metric_ax.legend()
    fig.tight_layout()
    os.makedirs(osp.dirname(osp.abspath(out_file)), exist_ok=True)
    fig.savefig(out_file, dpi=100)
    return out_file
