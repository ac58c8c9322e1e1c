"""Draw where a query pixel looks in each RMT stage: MaSA's attention weights over the image.

    python tools/vis_attention.py CONFIG [CHECKPOINT] IMAGE --point Y X [--out DIR]

IMAGE is an image file or one of scikit-image's photographs (astronaut, chelsea, coffee, ...).
``DIR/attention_{IMAGE}.png`` shows every stage's weights averaged over heads and
``DIR/attention_{IMAGE}_stage{N}.png`` each head; decomposed stages show the effective 2-D
weights of the width pass followed by the height pass. Without CHECKPOINT the weights are random.
The weights are read from the reference MaSA path (:mod:`mmrmt.visualization.attention`).
"""

import argparse
import sys
from typing import List, Optional

from mmrmt.utils import add_config_args, run_with_user_errors
from mmrmt.visualization.figure_models import rmt_from_config, weights_label
from mmrmt.visualization.gallery import AttentionQuery, attention_on_photo, prepare_photo


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description="Draw MaSA attention maps of an RMT model")
    parser.add_argument("config", help="config of a model with an RMT backbone")
    parser.add_argument("checkpoint", nargs="?", help="its checkpoint (default: random weights)")
    parser.add_argument("image", help="image file, or a scikit-image photograph such as astronaut")
    parser.add_argument(
        "--point",
        type=int,
        nargs=2,
        required=True,
        metavar=("Y", "X"),
        help="query pixel, in the image's own coordinates",
    )
    parser.add_argument(
        "--size", type=int, default=384, help="longer image side the model sees (default: 384)"
    )
    parser.add_argument(
        "--block", type=int, default=-1, help="block of each stage (default: -1, the last)"
    )
    parser.add_argument("--out", default="work_dirs/vis", help="output folder")
    add_config_args(parser)
    return parser.parse_args(argv)


def vis_attention(args: argparse.Namespace) -> None:
    """Draw the figures and list them."""
    photo = prepare_photo(AttentionQuery(args.image, tuple(args.point)), args.size)
    model, backbone = rmt_from_config(args.config, args.checkpoint, args.cfg_options)
    weights = weights_label(args.checkpoint)
    for path in attention_on_photo(backbone, model, photo, args.out, weights, args.block):
        print(f"wrote {path}")


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point; returns the exit code."""
    return run_with_user_errors(vis_attention, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
