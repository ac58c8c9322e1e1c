"""Export a detector, a segmentor or an RMT backbone to ONNX and check it in onnxruntime.

    python tools/export_onnx.py CONFIG [CHECKPOINT] --out FILE [--shape H W] [--opset N]
        [--static] [--backbone-only] [--cfg-options KEY=VALUE ...]
    python tools/export_onnx.py --arch t [CHECKPOINT] --out FILE ...

The file takes the data preprocessor's output (normalised, padded images (B, 3, H, W)), with a
dynamic batch, height and width unless ``--static``. Segmentors: the logits of the decode head.
Detectors: the dense heads' raw outputs (two-stage: the neck's features and the RPN's, and one
more file per learned RoI head, beside FILE); ``tools/test_onnx.py`` runs mmdet's
post-processing on them. ``--backbone-only`` (or ``--arch``): the backbone's feature maps.
No CHECKPOINT: random weights. Prints each file, its size, the opset and the parity check
(onnxruntime vs PyTorch). Needs the deploy extra: ``pip install -e .[deploy]``.
"""

import argparse
import sys
from typing import List, Optional

from mmrmt.deploy import DEFAULT_OPSET, DEFAULT_SHAPE, export_model, model_kind
from mmrmt.deploy.graphs import BACKBONE
from mmrmt.utils import UserError, add_config_args, load_model, load_rmt, run_with_user_errors


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description="Export an mmdet / mmseg model to ONNX")
    parser.add_argument(
        "inputs",
        nargs="*",
        metavar="CONFIG [CHECKPOINT]",
        help="config and checkpoint; with --arch only the (optional) checkpoint",
    )
    parser.add_argument("--arch", help="export an RMT preset backbone (t, s, b, l) instead")
    parser.add_argument("--out", required=True, help="the .onnx file to write")
    parser.add_argument(
        "--shape",
        nargs=2,
        type=int,
        default=list(DEFAULT_SHAPE),
        metavar=("H", "W"),
        help="example input size to trace on and check with (default: %(default)s)",
    )
    parser.add_argument(
        "--opset", type=int, default=DEFAULT_OPSET, help="ONNX opset (default: %(default)s)"
    )
    parser.add_argument("--static", action="store_true", help="fix batch 1 and --shape")
    parser.add_argument("--backbone-only", action="store_true", help="export the backbone alone")
    add_config_args(parser)
    return parser.parse_args(argv)


def export(args: argparse.Namespace) -> None:
    """Build the model from ``args``, export it and print the report."""
    if args.arch:
        if len(args.inputs) > 1:
            raise UserError(f"--arch takes at most a checkpoint, got {args.inputs}")
        checkpoint = args.inputs[0] if args.inputs else None
        model, kind = load_rmt(args.arch, checkpoint), BACKBONE
    else:
        if len(args.inputs) not in (1, 2):
            raise UserError(f"pass CONFIG [CHECKPOINT] or --arch NAME, got {args.inputs}")
        config, checkpoint = (args.inputs + [None])[:2]
        model = load_model(config, checkpoint, args.cfg_options, backbone_only=args.backbone_only)
        kind = BACKBONE if args.backbone_only else model_kind(model, config)
    if checkpoint is None:
        print("no checkpoint: exporting random weights")
    report = export_model(
        model, kind, args.out, tuple(args.shape), opset=args.opset, dynamic=not args.static
    )
    print("\n".join(report.lines()))


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point; returns the exit code."""
    return run_with_user_errors(export, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
