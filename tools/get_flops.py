"""Parameters and FLOPs of a detection or segmentation config at a given input size.

    python tools/get_flops.py CONFIG [--shape 1280 800] [--cfg-options ...]

The counting method and the paper's convention are described in :mod:`mmrmt.analysis.flops`.
"""

import argparse
import sys
from typing import List, Optional, Tuple

import torch

from mmrmt.analysis.flops import build_counting_model, count, report
from mmrmt.utils import (
    UserError,
    add_config_args,
    config_scope,
    load_config,
    run_with_user_errors,
)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description="Count parameters and FLOPs of a config")
    parser.add_argument("config", help="config file")
    parser.add_argument(
        "--shape", type=int, nargs="+", default=[1280, 800], help="input H W (or one size)"
    )
    add_config_args(parser)
    return parser.parse_args(argv)


def input_size(shape: List[int]) -> Tuple[int, int]:
    """``--shape`` as (H, W): one value means a square input."""
    if len(shape) not in (1, 2) or min(shape) <= 0:
        raise UserError(f"--shape takes one or two positive sizes (H W), got {shape}")
    return (shape[0], shape[0]) if len(shape) == 1 else (shape[0], shape[1])


def get_flops(args: argparse.Namespace) -> None:
    """Count and print params and FLOPs of ``args.config``."""
    height, width = input_size(args.shape)
    cfg = load_config(args.config, args.cfg_options)
    scope = config_scope(cfg)
    model = build_counting_model(cfg)
    with torch.no_grad():
        analyzer, roi_counts = count(model, scope, height, width)
    print(report(model, analyzer, roi_counts, (height, width)))


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point; returns the exit code."""
    return run_with_user_errors(get_flops, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
