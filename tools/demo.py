"""Draw a model's predictions on images: boxes and masks (mmdet) or class maps (mmseg).

    python tools/demo.py IMAGE_OR_FOLDER CONFIG --weights CKPT [--out-dir DIR] [--score-thr 0.3]

Uses mmdet's ``DetInferencer`` (``DetLocalVisualizer``) or mmseg's ``MMSegInferencer`` by the
config's ``default_scope``; the pictures go to ``OUT_DIR/vis/``. Without ``--weights`` the model
keeps its random initial weights (useful only to check that a config runs end to end).
"""

import argparse
import os
import sys
import warnings
from typing import List, Optional

from mmrmt.cli import (
    UserError,
    add_config_args,
    check_checkpoint_file,
    config_scope,
    debug_requested,
    load_config,
    run_tool,
)


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


def visualize(args: argparse.Namespace) -> List[str]:
    """Run the scope's inferencer on ``args.inputs`` and return the written pictures."""
    if not os.path.exists(args.inputs):
        raise UserError(f"input not found: {args.inputs}. Pass an image file or a folder")
    cfg = load_config(args.config, args.cfg_options)
    scope = config_scope(cfg)
    check_checkpoint_file(args.weights, "weights", "Pass a checkpoint written by tools/train.py")
    if args.weights is None:
        print("demo.py: no --weights given, drawing the predictions of random weights")
    vis_dir = os.path.join(args.out_dir, "vis")
    before = set(os.listdir(vis_dir)) if os.path.isdir(vis_dir) else set()
    with warnings.catch_warnings():
        if not debug_requested(args.debug):
            warnings.simplefilter("ignore")
        if scope == "mmdet":
            from mmdet.apis import DetInferencer

            inferencer = DetInferencer(model=cfg, weights=args.weights, device=args.device)
            inferencer(args.inputs, out_dir=args.out_dir, pred_score_thr=args.score_thr)
        else:
            from mmseg.apis import MMSegInferencer

            inferencer = MMSegInferencer(model=cfg, weights=args.weights, device=args.device)
            inferencer(args.inputs, out_dir=args.out_dir)
    written = sorted(set(os.listdir(vis_dir)) - before) if os.path.isdir(vis_dir) else []
    return [os.path.join(vis_dir, name) for name in written]


def demo(args: argparse.Namespace) -> None:
    """Draw the predictions and list the pictures."""
    for path in visualize(args):
        print(f"wrote {path}")


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point; returns the exit code."""
    return run_tool(demo, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
