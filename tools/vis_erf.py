"""Compare effective receptive fields: RMT-T (random and trained) and Swin-T, as in RepLKNet.

    python tools/vis_erf.py [--stage 2] [--size 224] [--images NAME_OR_PATH ...]
                            [--config CONFIG --checkpoint CKPT] [--out DIR]

The gradient of the central location of one stage's output with respect to the input, ``|grad|``
summed over channels and averaged over the images (scikit-image's photographs by default),
drawn log-scaled to ``DIR/erf.png``; the area holding 20/50/90% of the gradient mass is printed
and written to ``DIR/erf_summary.md`` and ``.json`` (:mod:`mmrmt.visualization.erf`).
"""

import argparse
import os
import sys
from typing import List, Optional

from mmrmt.utils import add_config_args, run_with_user_errors
from mmrmt.visualization.erf import compare_erfs, comparison_models, erf_images
from mmrmt.visualization.figure_models import rmt_from_config, trained_name
from mmrmt.visualization.gallery import DEMO_CONFIG
from mmrmt.visualization.photos import SAMPLE_PHOTOS


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description="Effective receptive fields of RMT-T and Swin-T")
    parser.add_argument("--stage", type=int, default=2, help="stage 0..3 (default: 2, stride 16)")
    parser.add_argument("--size", type=int, default=224, help="square input side (default: 224)")
    parser.add_argument(
        "--images",
        nargs="+",
        default=list(SAMPLE_PHOTOS),
        help="image files or scikit-image photographs (default: all of its colour photographs)",
    )
    parser.add_argument("--config", default=DEMO_CONFIG, help="config of the trained RMT-T")
    parser.add_argument("--checkpoint", help="trained checkpoint (default: none, random only)")
    parser.add_argument("--no-swin", action="store_true", help="leave Swin-T out")
    parser.add_argument("--out", default="work_dirs/vis", help="output folder")
    add_config_args(parser)
    return parser.parse_args(argv)


def vis_erf(args: argparse.Namespace) -> None:
    """Measure, draw and print the ERFs."""
    images = erf_images(args.images, args.size)
    trained, name, note = None, "", None
    if args.checkpoint is None:
        note = "no trained RMT-T (pass --checkpoint, e.g. make demo's work_dirs/demo/epoch_9.pth)"
    else:
        _, trained = rmt_from_config(args.config, args.checkpoint, args.cfg_options)
        name = trained_name(args.config, args.checkpoint)
    models = comparison_models(args.stage, trained, name, with_swin=not args.no_swin)
    print(compare_erfs(models, images, args.stage, args.out, note))
    print(f"wrote {os.path.join(args.out, 'erf.png')} and erf_summary.md/.json")


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point; returns the exit code."""
    return run_with_user_errors(vis_erf, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
