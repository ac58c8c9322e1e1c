"""How the options of ``tools/train.py`` change a config: ``--amp``, ``--auto-scale-lr``,
``--resume``."""

from typing import Optional

import torch
from mmengine.config import Config

from .data_files import check_checkpoint_file
from .errors import UserError


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
