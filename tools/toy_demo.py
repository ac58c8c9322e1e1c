"""Run a toy job end to end: toy data, training, evaluation, pictures and a learning-curve plot.

    python tools/toy_demo.py configs/det/maskrcnn_rmt_t_toy.py --work-dir work_dirs/demo
    python tools/toy_demo.py configs/seg/fpn_rmt_t_toy.py --work-dir work_dirs/demo_seg

The config's ``default_scope`` picks the task (``mmdet``: boxes and masks, bbox/segm mAP;
``mmseg``: class maps, mIoU). Training and evaluation run ``tools/train.py`` and
``tools/test.py`` in subprocesses. The work dir receives the training run (logs, checkpoints),
``test/``, ``predictions/``, ``curves.png`` and ``summary.json`` (see :mod:`mmrmt.toy_demo`).

Re-running is idempotent: a finished training run is reused and only evaluation, pictures and
plot are redone; an interrupted run resumes from its last checkpoint; ``--retrain`` deletes the
work dir and trains from scratch.

Every process runs on ``--threads`` CPU threads (default ``$OMP_NUM_THREADS``, else 1), which is
also what the subprocesses get as ``OMP_NUM_THREADS``. Mistakes (a config outside mmdet/mmseg, a
failing tool) end with a one-line message and exit code 1; ``--debug`` shows the traceback.
"""

import argparse
import os
import sys
from typing import List, Optional

from mmrmt.toy_demo import run_toy_demo, use_threads
from mmrmt.utils import run_with_user_errors


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description="Toy data, training, evaluation and plots")
    parser.add_argument("config", help="a toy config, e.g. configs/det/maskrcnn_rmt_t_toy.py")
    parser.add_argument("--work-dir", default="work_dirs/demo", help="output folder")
    parser.add_argument("--retrain", action="store_true", help="delete the work dir and retrain")
    parser.add_argument("--num-images", type=int, default=6, help="validation images to draw")
    parser.add_argument(
        "--score-thr", type=float, default=0.5, help="detection: draw boxes above this score"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=int(os.environ.get("OMP_NUM_THREADS", 1)),
        help="CPU threads per process (default: $OMP_NUM_THREADS, else 1)",
    )
    # Kept as words, not parsed: they are passed on to train.py and test.py as they are.
    parser.add_argument(
        "--cfg-options",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="config overrides, passed on to train.py and test.py as they are",
    )
    parser.add_argument("--debug", action="store_true", help="show the traceback of mistakes")
    return parser.parse_args(argv)


def demo(args: argparse.Namespace) -> None:
    """Run the demo on the requested threads."""
    # One thread by default: the toy model's many small ops gain little from a second thread,
    # and on a busy machine two OpenMP threads made training steps up to 20x slower.
    use_threads(args.threads)
    run_toy_demo(
        args.config,
        args.work_dir,
        cfg_options=args.cfg_options,
        retrain=args.retrain,
        num_images=args.num_images,
        score_thr=args.score_thr,
    )


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point; returns the exit code."""
    return run_with_user_errors(demo, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
