"""Evaluate an ONNX file written by tools/export_onnx.py the way tools/test.py evaluates a
checkpoint: the config's test dataset, pipeline, data preprocessor and metrics, with onnxruntime
(CPU) running the exported graphs and mmdet's / mmseg's own code the post-processing.

    python tools/test_onnx.py CONFIG FILE [--work-dir DIR] [--cfg-options KEY=VALUE ...]

FILE is the main file of a detector or segmentor export of CONFIG's model (a two-stage
detector's RoI head files lie beside it). Needs the deploy extra: ``pip install -e .[deploy]``.
Expected mistakes end with a one-line message and exit code 1; ``--debug`` shows the traceback.
"""

import argparse
import os
import sys
from typing import List, Optional

from mmrmt.deploy import onnx_test_config
from mmrmt.deploy.dependencies import require
from mmrmt.utils import (
    UserError,
    add_config_args,
    build_runner,
    check_data_files,
    config_scope,
    load_config,
    run_with_user_errors,
    set_work_dir,
)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description="Evaluate an exported ONNX model")
    parser.add_argument("config", help="config file the model was exported from")
    parser.add_argument("file", help="the .onnx file written by tools/export_onnx.py")
    parser.add_argument("--work-dir", help="where the metrics file goes")
    add_config_args(parser)
    return parser.parse_args(argv)


def test(args: argparse.Namespace) -> None:
    """Put the ONNX model in the config's place and run the config's test loop."""
    cfg = load_config(args.config, args.cfg_options)
    config_scope(cfg)
    require("onnxruntime")
    if not os.path.isfile(args.file):
        raise UserError(f"ONNX file not found: {args.file}. Write one with tools/export_onnx.py")
    set_work_dir(cfg, args.config, args.work_dir)
    check_data_files(cfg, ["test_dataloader", "test_evaluator"])
    runner = build_runner(onnx_test_config(cfg, args.file))
    runner.test()


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point; returns the exit code."""
    return run_with_user_errors(test, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
