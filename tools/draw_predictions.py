"""Draw a model's predictions on images: boxes and masks (mmdet) or class maps (mmseg).

    python tools/draw_predictions.py IMAGE_OR_FOLDER CONFIG --weights CKPT [--out-dir DIR]
        [--score-thr 0.3]

Uses mmdet's ``DetInferencer`` (``DetLocalVisualizer``) or mmseg's ``MMSegInferencer`` by the
config's ``default_scope`` (see :func:`mmrmt.visualization.draw_predictions`); the pictures go to
``OUT_DIR/vis/`` at the images' size. Without ``--weights`` the model keeps its random initial
weights (useful only to check that a config runs end to end).
"""

import argparse
import os
import sys
import warnings
from typing import List, Optional

from mmrmt.utils import (
    add_config_args,
    check_checkpoint_file,
    config_scope,
    debug_requested,
    load_config,
    run_with_user_errors,
)
from mmrmt.visualization import draw_predictions, list_images


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description="Draw predictions of an mmdet / mmseg model")
    parser.add_argument("inputs", help="an image file or a folder of images")
    parser.add_argument("config", help="config file")
    parser.add_argument("--weights", help="checkpoint; without it the weights are random")
    parser.add_argument("--out-dir", default="work_dirs/demo_out", help="output folder")
    parser.add_argument("--device", default="cpu", help="e.g. cpu or cuda:0")
    parser.add_argument(
        "--score-thr", type=float, default=0.3, help="detection: draw boxes above this score"
    )
    add_config_args(parser)
    return parser.parse_args(argv)


def demo(args: argparse.Namespace) -> None:
    """Draw the predictions and list the pictures."""
    images = list_images(args.inputs)
    cfg = load_config(args.config, args.cfg_options)
    config_scope(cfg)
    check_checkpoint_file(args.weights, "weights", "Pass a checkpoint written by tools/train.py")
    if args.weights is None:
        print("draw_predictions.py: no --weights given, drawing the predictions of random weights")
    with warnings.catch_warnings():
        # The inferencers warn at length about random weights and missing palettes.
        if not debug_requested(args.debug):
            warnings.simplefilter("ignore")
        pictures = draw_predictions(
            cfg,
            args.weights,
            images,
            os.path.join(args.out_dir, "vis"),
            score_thr=args.score_thr,
            device=args.device,
        )
    for path in pictures:
        print(f"wrote {path}")


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point; returns the exit code."""
    return run_with_user_errors(demo, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
