"""How the options of ``tools/train.py`` change a config: ``--amp`` (``--amp-dtype``),
``--auto-scale-lr``, ``--resume``."""

from typing import Optional

import torch
from mmengine.config import Config
from mmengine.utils import import_modules_from_strings

from .config import config_dicts
from .data_files import check_checkpoint_file
from .errors import UserError

#: ``--amp-dtype`` choices and the dtype names mmengine's ``AmpOptimWrapper`` takes.
AMP_DTYPES = {"fp16": "float16", "bf16": "bfloat16"}

#: The module that registers ``Fp32SingleRoIExtractor`` in mmdet's ``MODELS``.
FP32_ROI_MODULE = "mmrmt.models.roi_extractors"

#: How configs name the extractor it replaces.
MMDET_ROI_EXTRACTOR = ("SingleRoIExtractor", "mmdet.SingleRoIExtractor")


def enable_amp(cfg: Config, dtype: str = "fp16") -> None:
    """Switch the optimizer wrapper to mmengine's ``AmpOptimWrapper``, autocasting to ``dtype``.

    fp16 gets a dynamic loss scale (small fp16 gradients underflow without one); bf16, which has
    float32's exponent range, a constant scale of 1. Either way mmengine skips a step whose
    gradients hold inf or nan. A ``loss_scale`` already in the config is kept. bf16 also pools
    RoIs in float32 (:func:`pool_rois_in_fp32`): mmcv's RoIAlign has no bf16 kernel.

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
    if dtype == "bf16":
        pool_rois_in_fp32(cfg)


def pool_rois_in_fp32(cfg: Config) -> int:
    """Swap every ``SingleRoIExtractor`` in ``cfg.model`` for ``Fp32SingleRoIExtractor``.

    Also imports the module that registers it and adds that module to ``custom_imports``, so
    the config dumped into the work dir (and every distributed worker) builds the same model.

    Args:
        cfg (Config): The config, changed in place.

    Returns:
        int: How many extractors were swapped (0 for a model without RoI heads).
    """
    extractors = [
        node for node in config_dicts(cfg.model) if node.get("type") in MMDET_ROI_EXTRACTOR
    ]
    for extractor in extractors:
        extractor["type"] = "Fp32SingleRoIExtractor"
    if extractors:
        import_modules_from_strings([FP32_ROI_MODULE])
        custom = cfg.setdefault("custom_imports", dict(imports=[], allow_failed_imports=False))
        if FP32_ROI_MODULE not in custom.imports:
            custom.imports = [*custom.imports, FP32_ROI_MODULE]
    return len(extractors)


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
