"""Evaluate a checkpoint with an mmdet or mmseg config (the config's default_scope picks).

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out FILE_OR_DIR] [--show-dir DIR]
        [--tta] [--cfg-options KEY=VALUE ...] [--launcher pytorch]

``--out``: detection dumps the predictions to a ``.pkl`` file, segmentation writes the predicted
maps to a folder. ``--show-dir``: pictures of the predictions (under the run's work dir).
``--tta``: flip test-time augmentation (detection: box heads only, as mmdet's ``DetTTAModel``).
Expected mistakes end with a one-line message and exit code 1; ``--debug`` shows the traceback.
"""

import argparse
import sys
from typing import List, Optional

from mmrmt.engine import setup_launcher
from mmrmt.utils import (
    add_config_args,
    add_launcher_args,
    build_runner,
    check_checkpoint_file,
    check_data_files,
    config_scope,
    load_config,
    run_with_user_errors,
    set_local_rank_env,
    set_work_dir,
)
from mmrmt.utils.test_options import (
    check_out_path,
    dump_det_predictions,
    enable_tta,
    enable_visualization,
    keep_seg_predictions,
)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse the command line (mmdet's and mmseg's ``tools/test.py`` options)."""
    parser = argparse.ArgumentParser(description="Evaluate an mmdet / mmseg model with mmrmt")
    parser.add_argument("config", help="config file")
    parser.add_argument("checkpoint", help="checkpoint file")
    parser.add_argument("--work-dir", help="where the metrics file goes")
    parser.add_argument(
        "--out", help="detection: .pkl file for the raw predictions; segmentation: a folder"
    )
    parser.add_argument("--show-dir", help="save pictures of the predictions here")
    parser.add_argument("--tta", action="store_true", help="flip test-time augmentation")
    add_config_args(parser)
    add_launcher_args(parser)
    args = parser.parse_args(argv)
    set_local_rank_env(args.local_rank)
    return args


def test(args: argparse.Namespace) -> None:
    """Build the config and the Runner from ``args`` and evaluate the checkpoint."""
    cfg = load_config(args.config, args.cfg_options)
    scope = config_scope(cfg)
    set_work_dir(cfg, args.config, args.work_dir)
    check_checkpoint_file(
        args.checkpoint,
        "checkpoint",
        "Pass a .pth written by tools/train.py, or an authors' checkpoint converted with "
        "tools/convert_ckpt.py",
    )
    cfg.load_from = args.checkpoint
    if args.out:
        check_out_path(scope, args.out)
    if args.show_dir:
        enable_visualization(cfg, scope, args.show_dir)
    if args.tta:
        enable_tta(cfg, scope)
    check_data_files(cfg, ["test_dataloader", "test_evaluator"])
    if args.out and scope == "mmseg":
        keep_seg_predictions(cfg, args.out)
    setup_launcher(cfg, args.launcher)
    runner = build_runner(cfg)
    if args.out and scope == "mmdet":
        dump_det_predictions(runner, args.out)
    runner.test()


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point; returns the exit code."""
    args = parse_args(argv)
    return run_with_user_errors(test, args)


if __name__ == "__main__":
    sys.exit(main())
