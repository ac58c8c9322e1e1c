"""The toy demo behind ``tools/toy_demo.py``: train, evaluate, draw and plot in one work dir.

Not imported by ``import mmrmt``: it needs the repository's ``tools/`` and matplotlib.
"""

from .curves import plot_curves, read_scalars
from .pipeline import (
    METRIC_KEYS,
    ensure_toy_data,
    evaluate,
    final_checkpoint,
    metric_keys,
    run_script,
    run_toy_demo,
    train,
    use_threads,
    val_images,
)
from .report import previous_train_seconds, summary_lines, write_summary

__all__ = [
    "METRIC_KEYS",
    "ensure_toy_data",
    "evaluate",
    "final_checkpoint",
    "metric_keys",
    "plot_curves",
    "previous_train_seconds",
    "read_scalars",
    "run_toy_demo",
    "run_script",
    "summary_lines",
    "train",
    "use_threads",
    "val_images",
    "write_summary",
]
