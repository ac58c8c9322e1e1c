"""Train a detector or segmentor from an mmdet or mmseg config (the config's default_scope picks).

    python tools/train.py configs/det/maskrcnn_rmt_s_coco.py [--work-dir DIR] [--amp]
        [--resume [CKPT]] [--auto-scale-lr] [--cfg-options KEY=VALUE ...] [--launcher pytorch]

Expected mistakes (a missing config, dataset file or ImageNet checkpoint) end with a one-line
message and exit code 1; ``--debug`` or ``MMRMT_DEBUG=1`` shows the traceback.
"""

import argparse
import sys
from typing import List, Optional

import torch
from mmengine.config import Config

from mmrmt.cli import (
    UserError,
    add_config_args,
    add_launcher_args,
    build_runner,
    check_checkpoint_file,
    check_data_files,
    config_scope,
    load_config,
    run_tool,
    set_local_rank_env,
    set_work_dir,
    setup_launcher,
)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse the command line (mmdet's and mmseg's ``tools/train.py`` options)."""
    parser = argparse.ArgumentParser(description="Train an mmdet / mmseg model with mmrmt")
    parser.add_argument("config", help="config file")
    parser.add_argument("--work-dir", help="where logs and checkpoints go")
    parser.add_argument("--amp", action="store_true", help="automatic mixed precision")
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
    set_local_rank_env(args.local_rank)
    return args


def enable_amp(cfg: Config) -> None:
    """Switch the optimizer wrapper to ``AmpOptimWrapper`` with a dynamic loss scale."""
    if not torch.cuda.is_available():
        raise UserError("--amp needs a GPU: mmengine's AmpOptimWrapper does not run on the CPU")
    wrapper = cfg.optim_wrapper.get("type", "OptimWrapper")
    if wrapper == "AmpOptimWrapper":
        return
    if wrapper != "OptimWrapper":
        raise UserError(
            f"--amp needs optim_wrapper.type='OptimWrapper', the config has {wrapper!r}"
        )
    cfg.optim_wrapper.type = "AmpOptimWrapper"
    cfg.optim_wrapper.setdefault("loss_scale", "dynamic")


def enable_auto_scale_lr(cfg: Config) -> None:
    """Turn on mmengine's linear lr scaling from ``auto_scale_lr.base_batch_size``."""
    if "base_batch_size" not in cfg.get("auto_scale_lr", {}):
        raise UserError("--auto-scale-lr needs auto_scale_lr=dict(base_batch_size=N) in the config")
    cfg.auto_scale_lr.enable = True


def set_resume(cfg: Config, resume: Optional[str]) -> None:
    """``--resume``: ``'auto'`` resumes from the work dir's latest checkpoint, a path from it."""
    if resume is None:
        return
    cfg.resume = True
    if resume == "auto":
        cfg.load_from = None
    else:
        check_checkpoint_file(resume, "checkpoint to resume from", "Pass an existing .pth file")
        cfg.load_from = resume


def train(args: argparse.Namespace) -> None:
    """Build the config and the Runner from ``args`` and train."""
    cfg = load_config(args.config, args.cfg_options)
    config_scope(cfg)
    set_work_dir(cfg, args.config, args.work_dir)
    if args.amp:
        enable_amp(cfg)
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
    return run_tool(train, args)


if __name__ == "__main__":
    sys.exit(main())
