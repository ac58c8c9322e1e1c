"""How the options of ``tools/train.py`` change a config: ``--amp`` (``--amp-dtype``),
``--auto-scale-lr``, ``--resume``."""

from typing import Optional

import torch
from mmengine.config import Config

from .data_files import check_checkpoint_file
from .errors import UserError

#: ``--amp-dtype`` choices and the dtype names mmengine's ``AmpOptimWrapper`` takes.
AMP_DTYPES = {"fp16": "float16", "bf16": "bfloat16"}


def enable_amp(cfg: Config, dtype: str = "fp16") -> None:
    """Switch the optimizer wrapper to mmengine's ``AmpOptimWrapper``, autocasting to ``dtype``.

    fp16 gets a dynamic loss scale (small fp16 gradients underflow without one); bf16, which has
    float32's exponent range, a constant scale of 1. Either way mmengine skips a step whose
    gradients hold inf or nan. A ``loss_scale`` already in the config is kept.

    Args:
        cfg (Config): The training config, changed in place.
        dtype (str): ``'fp16'`` or ``'bf16'`` (``--amp-dtype``). Default: ``'fp16'``.

    Raises:
        UserError: an unknown dtype, no GPU (or bf16 on a GPU without it), or an optimizer
            wrapper other than ``OptimWrapper``.
    """
    if dtype not in AMP_DTYPES:
        raise UserError(f"--amp-dtype must be one of {sorted(AMP_DTYPES)}, got {dtype!r}")
    if not torch.cuda.is_available():
        raise UserError("--amp needs a GPU: mmengine's AmpOptimWrapper does not run on the CPU")
    # Pre-Ampere GPUs only emulate bf16 (slowly), which the default check counts as support.
    if dtype == "bf16" and not torch.cuda.is_bf16_supported(including_emulation=False):
        raise UserError(
            f"--amp-dtype bf16 needs a GPU with bfloat16 (Ampere or newer), "
            f"not {torch.cuda.get_device_name()}; use --amp-dtype fp16"
        )
    wrapper = cfg.optim_wrapper.get("type", "OptimWrapper")
    if wrapper not in ("OptimWrapper", "AmpOptimWrapper"):
        raise UserError(
            f"--amp needs optim_wrapper.type='OptimWrapper', the config has {wrapper!r}"
        )
    cfg.optim_wrapper.type = "AmpOptimWrapper"
    cfg.optim_wrapper.dtype = AMP_DTYPES[dtype]
    cfg.optim_wrapper.setdefault("loss_scale", "dynamic" if dtype == "fp16" else 1.0)


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
