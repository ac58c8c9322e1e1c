"""The demo's ``summary.json`` and its closing report."""

import json
import os.path as osp
from typing import Dict, List, Optional


def previous_train_seconds(summary_file: str) -> Optional[float]:
    """The training time an earlier demo recorded in ``summary_file``; None if unknown.

    A reused training run is not timed again, so its time comes from the run that trained it.
    """
    if not osp.isfile(summary_file):
        return None
    with open(summary_file) as f:
        return json.load(f).get("train_seconds")


def write_summary(summary: Dict, summary_file: str) -> None:
    """Write ``summary`` as indented JSON to ``summary_file``."""
    with open(summary_file, "w") as f:
        json.dump(summary, f, indent=2)


def summary_lines(summary: Dict, headline: str, step_name: str) -> List[str]:
    """The demo's closing report: time, final test figures, learning curve, outputs.

    Args:
        summary (dict): What :func:`mmrmt.toy_demo.run_toy_demo` writes to ``summary.json``.
        headline (str): The metric followed over training, e.g. ``coco/bbox_mAP``.
        step_name (str): What a validation step counts (``epoch`` or ``iter``).

    Returns:
        list[str]: Three lines.
    """
    seconds = summary["train_seconds"]
    duration = "time unknown (reused run)" if seconds is None else f"{seconds / 60:.1f} min"
    figures = ", ".join(f"{k} {v:.3f}" for k, v in summary["test_metrics"].items())
    curve = "; ".join(
        f"{step_name} {r['step']}: {r[headline]:.3f}" for r in summary["val_curve"] if headline in r
    )
    outputs = f"pictures {osp.dirname(summary['pictures'][0])}/, plot {summary['plot']}"
    return [
        f"training {duration}; tools/test.py on the final checkpoint: {figures}",
        f"validation {headline} over training: {curve}",
        outputs,
    ]
