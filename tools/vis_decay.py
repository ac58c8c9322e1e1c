"""Draw RMT's spatial prior: each head's decay ``gamma_h ** (|dy| + |dx|)`` around a query token.

    python tools/vis_decay.py [--arch t] [--stage N] [--point Y X] [--size H W] [--out DIR]

One figure per stage (``DIR/decay_stage{N}.png``), one panel per head with its gamma. Decomposed
stages show the width pass, the height pass and the decay they induce together; full stages the
2-D mask. The values are the stage's own position tables
(:class:`mmrmt.models.layers.RetentionPosition`), see :mod:`mmrmt.visualization.decay`.
"""

import argparse
import sys
from typing import List, Optional

from mmrmt.utils import run_with_user_errors
from mmrmt.visualization.decay import draw_stage_decays


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description="Draw the decay maps of RMT's MaSA")
    parser.add_argument("--arch", default="t", help="RMT preset: t, s, b or l (default: t)")
    parser.add_argument("--stage", type=int, help="one stage (default: every stage)")
    parser.add_argument(
        "--point", type=int, nargs=2, metavar=("Y", "X"), help="query token (default: centre)"
    )
    parser.add_argument(
        "--size",
        type=int,
        nargs=2,
        default=[15, 15],
        metavar=("H", "W"),
        help="feature grid in tokens (default: 15 15)",
    )
    parser.add_argument("--out", default="work_dirs/vis", help="output folder")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of user errors")
    return parser.parse_args(argv)


def vis_decay(args: argparse.Namespace) -> None:
    """Draw the figures and list them."""
    stages = None if args.stage is None else [args.stage]
    query = None if args.point is None else tuple(args.point)
    for path in draw_stage_decays(args.arch, stages, tuple(args.size), query, args.out):
        print(f"wrote {path}")


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point; returns the exit code."""
    return run_with_user_errors(vis_decay, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
