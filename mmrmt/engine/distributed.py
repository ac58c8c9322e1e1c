"""Distributed runs without a GPU: gloo process group and a DDP wrapper for CPU modules.

mmengine's ``init_dist`` calls ``torch.cuda.set_device`` and its DDP wrapper passes
``device_ids``; both fail on a machine without CUDA. :func:`setup_launcher` prepares a gloo run
instead, and :class:`CPUDistributedDataParallel` (registered in mmengine's ``MODEL_WRAPPERS`` when
:mod:`mmrmt` is imported) wraps the model.
"""

import datetime
from typing import List, Optional

import torch
import torch.distributed as torch_dist
from mmengine.config import Config
from mmengine.model import MMDistributedDataParallel, revert_sync_batchnorm
from mmengine.registry import MODEL_WRAPPERS

from ..errors import InvalidValueError


@MODEL_WRAPPERS.register_module()
class CPUDistributedDataParallel(MMDistributedDataParallel):
    """``MMDistributedDataParallel`` for processes without a GPU (gloo backend).

    The Runner passes ``device_ids=[LOCAL_RANK]``, which DDP refuses for a CPU module, and
    ``SyncBatchNorm`` only runs on accelerators; this wrapper drops the ids and turns SyncBN
    layers back into plain BN.

    Args:
        module (nn.Module): The model.
        device_ids (list | None): Ignored.
        **kwargs: Passed to :class:`MMDistributedDataParallel`.
    """

    def __init__(self, module, device_ids: Optional[List[int]] = None, **kwargs) -> None:
        super().__init__(module=revert_sync_batchnorm(module), device_ids=None, **kwargs)


def setup_launcher(cfg: Config, launcher: str) -> None:
    """Record the launcher; without CUDA, prepare a gloo run the Runner can use.

    mmengine's ``init_dist`` calls ``torch.cuda.set_device``, which fails without CUDA, so the
    gloo process group is started here (the Runner then reuses it), ``env_cfg.dist_cfg.backend``
    becomes ``'gloo'`` and the model is wrapped by :class:`CPUDistributedDataParallel`.

    Args:
        cfg (Config): The run's config; modified in place.
        launcher (str): ``'none'``, ``'pytorch'``, ``'slurm'`` or ``'mpi'``.

    Raises:
        InvalidValueError: a CPU-only distributed run with another launcher than ``pytorch``.
    """
    cfg.launcher = launcher
    if launcher == "none" or torch.cuda.is_available():
        return
    if launcher != "pytorch":
        raise InvalidValueError(
            f"--launcher {launcher} needs CUDA; without a GPU use --launcher pytorch "
            "(tools/dist_train.sh, tools/dist_test.sh)"
        )
    env_cfg = cfg.setdefault("env_cfg", {})
    dist_cfg = env_cfg.setdefault("dist_cfg", {})
    dist_cfg["backend"] = "gloo"
    if not torch_dist.is_initialized():
        timeout = datetime.timedelta(seconds=dist_cfg.get("timeout", 1800))
        torch_dist.init_process_group(backend="gloo", timeout=timeout)
    if cfg.get("model_wrapper_cfg") is None:
        cfg.model_wrapper_cfg = dict(
            type="CPUDistributedDataParallel",
            broadcast_buffers=False,
            find_unused_parameters=cfg.get("find_unused_parameters", False),
        )
