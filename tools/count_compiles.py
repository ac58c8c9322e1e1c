"""How many times torch.compile compiles a config's backbone over a multi-scale training run.

    python tools/count_compiles.py CONFIG [--batches 40] [--last-batch 1] [--cfg-options ...]

The batch shapes come from the config's own train transforms on common COCO photo sizes, padded
as the data preprocessor pads them; see :mod:`mmrmt.analysis.compile_counts`.
"""

import argparse
import sys
from typing import List, Optional

import torch

from mmrmt.analysis.compile_counts import batch_shapes, count_compiles, report
from mmrmt.utils import UserError, add_config_args, load_config, load_model, run_with_user_errors


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description="Count torch.compile compiles over batch shapes")
    parser.add_argument("config", help="training config (detection or segmentation)")
    parser.add_argument("--batches", type=int, default=40, help="batches to run (default 40)")
    parser.add_argument(
        "--last-batch",
        type=int,
        default=1,
        help="size of a shorter last batch, as an epoch's leftover images make (0: none)",
    )
    parser.add_argument("--backend", default="eager", help="compiler behind the counter")
    parser.add_argument("--seed", type=int, default=0, help="seed of the drawn sizes")
    add_config_args(parser)
    return parser.parse_args(argv)


def count(args: argparse.Namespace) -> None:
    """Make the batch shapes, run the compiled backbone over them and print the report."""
    if args.batches < 1 or args.last_batch < 0:
        raise UserError("--batches must be at least 1 and --last-batch at least 0")
    cfg = load_config(args.config, args.cfg_options)
    shapes = batch_shapes(cfg, args.batches, seed=args.seed)
    if args.last_batch:
        shapes.append((args.last_batch, *shapes[-1][1:]))
    torch.manual_seed(args.seed)
    # The backbone with seeded random weights: the compiles do not depend on their values.
    backbone = load_model(cfg, mode="train", backbone_only=True)
    print(report(count_compiles(backbone, shapes, args.backend)))


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point; returns the exit code."""
    return run_with_user_errors(count, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
