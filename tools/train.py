"""Train a detector or segmentor from an mmdet or mmseg config (the config's default_scope picks).

    python tools/train.py configs/det/maskrcnn_rmt_s_coco.py [--work-dir DIR]
        [--amp [--amp-dtype {fp16,bf16}]]
        [--resume [CKPT]] [--auto-scale-lr] [--cfg-options KEY=VALUE ...] [--launcher pytorch]

Expected mistakes (a missing config, dataset file or ImageNet checkpoint) end with a one-line
message and exit code 1; ``--debug`` or ``MMRMT_DEBUG=1`` shows the traceback.
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
from mmrmt.utils.train_options import AMP_DTYPES, enable_amp, enable_auto_scale_lr, set_resume


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse the command line (mmdet's and mmseg's ``tools/train.py`` options)."""
    parser = argparse.ArgumentParser(description="Train an mmdet / mmseg model with mmrmt")
    parser.add_argument("config", help="config file")
    parser.add_argument("--work-dir", help="where logs and checkpoints go")
    parser.add_argument("--amp", action="store_true", help="automatic mixed precision")
    parser.add_argument(
        "--amp-dtype",
        choices=sorted(AMP_DTYPES),
        help="--amp autocast dtype: fp16 (with a dynamic loss scale; the default) or bf16",
    )
    parser.add_argument(
        "--auto-scale-lr",
        action="store_true",
        help="scale the lr by (GPUs x images per GPU) / auto_scale_lr.base_batch_size",
    )
    parser.add_argument(
        "--resume",
        nargs="?",
        const="auto",
        help="resume from CKPT, or without a value from the latest checkpoint in the work dir",
    )
    add_config_args(parser)
    add_launcher_args(parser)
    args = parser.parse_args(argv)
    if args.amp_dtype and not args.amp:
        parser.error("--amp-dtype needs --amp")
    set_local_rank_env(args.local_rank)
    return args


def train(args: argparse.Namespace) -> None:
    """Build the config and the Runner from ``args`` and train."""
    cfg = load_config(args.config, args.cfg_options)
    config_scope(cfg)
    set_work_dir(cfg, args.config, args.work_dir)
    if args.amp:
        enable_amp(cfg, args.amp_dtype or "fp16")
    if args.auto_scale_lr:
        enable_auto_scale_lr(cfg)
    set_resume(cfg, args.resume)
    if not cfg.get("resume"):
        check_checkpoint_file(
            cfg.get("load_from"), "load_from checkpoint", "Fix it with --cfg-options load_from=PATH"
        )
    validates = cfg.get("val_cfg") is not None
    check_data_files(
        cfg, ["train_dataloader"] + (["val_dataloader", "val_evaluator"] if validates else [])
    )
    setup_launcher(cfg, args.launcher)
    build_runner(cfg).train()


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point; returns the exit code."""
    args = parse_args(argv)
    return run_with_user_errors(train, args)


if __name__ == "__main__":
    sys.exit(main())
