"""Draw every picture of what MaSA does into one folder (``make vis``).

    python tools/vis_all.py [--out work_dirs/vis] [--config CONFIG] [--checkpoint CKPT]

Decay maps of RMT-T's four stages, attention maps on scikit-image's astronaut and cat, and the
ERF of RMT-T and Swin-T (see :mod:`mmrmt.visualization.gallery`). Without ``--checkpoint`` the
``make demo`` checkpoint (work_dirs/demo/epoch_9.pth) is used when it exists, random weights
otherwise; the figure titles say which.
"""

import argparse
import sys
from typing import List, Optional

from mmrmt.utils import run_with_user_errors
from mmrmt.visualization.gallery import DEMO_CHECKPOINT, DEMO_CONFIG, demo_checkpoint, draw_gallery


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description="Draw decay, attention and ERF figures of RMT")
    parser.add_argument("--out", default="work_dirs/vis", help="output folder")
    parser.add_argument("--config", default=DEMO_CONFIG, help="config of the RMT model")
    parser.add_argument(
        "--checkpoint", help=f"its weights (default: {DEMO_CHECKPOINT} if it exists, else random)"
    )
    parser.add_argument(
        "--erf-size", type=int, default=224, help="square ERF input side (default: 224)"
    )
    parser.add_argument(
        "--attention-size", type=int, default=384, help="longer side for attention (default: 384)"
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks of user errors")
    return parser.parse_args(argv)


def vis_all(args: argparse.Namespace) -> None:
    """Draw the figures, list them and print the ERF summary."""
    paths, table = draw_gallery(
        args.out,
        args.config,
        demo_checkpoint(args.checkpoint),
        attention_size=args.attention_size,
        erf_size=args.erf_size,
    )
    for path in paths:
        print(f"wrote {path}")
    print(table)


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point; returns the exit code."""
    return run_with_user_errors(vis_all, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
