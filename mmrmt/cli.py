"""What the scripts in ``tools/`` share: config loading, the config's scope, checks of the files a
run needs, CPU-only distributed runs, and one-line messages for mistakes a user can fix.

A config's ``default_scope`` (``'mmdet'`` or ``'mmseg'``) decides which library's registries the
Runner uses, so one ``tools/train.py`` / ``tools/test.py`` pair serves both tasks.
"""

import argparse
import datetime
import importlib
import os
import re
import sys
from typing import Callable, Iterator, List, Optional, Sequence, Tuple

import torch
import torch.distributed as torch_dist
from mmengine.config import Config, DictAction
from mmengine.model import MMDistributedDataParallel, revert_sync_batchnorm
from mmengine.registry import MODEL_WRAPPERS
from mmengine.runner import Runner

from .checkpoint import CheckpointError
from .checkpoint.loading import is_missing_local_file

#: Environment variable that, like ``--debug``, shows the traceback of a user error.
DEBUG_ENV = "MMRMT_DEBUG"
SCOPES = ("mmdet", "mmseg")


class UserError(Exception):
    """A mistake the user can fix (a wrong path, a wrong option): reported in one line."""


#: What the tools report in one line instead of a traceback.
USER_ERRORS = (UserError, FileNotFoundError, CheckpointError)

_NO_SUCH_FILE = re.compile(r"No such file or directory: '([^']+)'")


def add_config_args(parser: argparse.ArgumentParser) -> None:
    """Add ``--cfg-options`` and ``--debug`` to ``parser``."""
    parser.add_argument(
        "--cfg-options",
        nargs="+",
        action=DictAction,
        help="override config settings, key=value (e.g. model.backbone.init_cfg=None)",
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        help=f"show the full traceback of user errors (or set {DEBUG_ENV}=1)",
    )


def add_launcher_args(parser: argparse.ArgumentParser) -> None:
    """Add ``--launcher`` and ``--local_rank`` (mmdet's and mmseg's distributed options)."""
    parser.add_argument(
        "--launcher", choices=["none", "pytorch", "slurm", "mpi"], default="none", help="launcher"
    )
    # torch.distributed.launch passes --local-rank; torchrun sets LOCAL_RANK instead.
    parser.add_argument("--local_rank", "--local-rank", type=int, default=0)


def load_config(path: str, cfg_options: Optional[dict] = None) -> Config:
    """Read a config and apply ``--cfg-options``.

    Args:
        path (str): Config file.
        cfg_options (dict | None): Parsed ``--cfg-options``.

    Returns:
        Config: The merged config.

    Raises:
        UserError: ``path`` is not a file, or an option does not fit the config.
    """
    if not os.path.isfile(path):
        raise UserError(
            f"config file not found: {path}. Pass a config such as "
            "configs/det/maskrcnn_rmt_s_coco.py"
        )
    cfg = Config.fromfile(path)
    if cfg_options:
        try:
            cfg.merge_from_dict(cfg_options)
        except (KeyError, TypeError) as error:
            raise UserError(f"--cfg-options does not fit {path}: {error}") from error
    return cfg


def config_scope(cfg: Config) -> str:
    """Return the config's ``default_scope``, which must be one of :data:`SCOPES`."""
    scope = cfg.get("default_scope")
    if scope not in SCOPES:
        raise UserError(
            f"config default_scope is {scope!r}; expected one of {list(SCOPES)} "
            "(inherit mmdet's or mmseg's _base_/default_runtime.py)"
        )
    return scope


def set_work_dir(cfg: Config, config_path: str, work_dir: Optional[str]) -> None:
    """Set ``cfg.work_dir``: ``--work-dir``, else the config's, else ``work_dirs/<config name>``."""
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get("work_dir") is None:
        name = os.path.splitext(os.path.basename(config_path))[0]
        cfg.work_dir = os.path.join("work_dirs", name)


def _is_remote(path: str, backend_args: Optional[dict]) -> bool:
    """Whether ``path`` is read through a URL or a non-local file backend (not checked here)."""
    backend = (backend_args or {}).get("backend")
    return "://" in path or backend not in (None, "local")


def _joined(data_root: Optional[str], path: str) -> str:
    # mmengine's BaseDataset joins relative paths to data_root the same way.
    return os.path.join(data_root, path) if data_root and not os.path.isabs(path) else path


def _dataset_paths(dataset: dict, key: str) -> Iterator[Tuple[str, str, str, str]]:
    """Yield (what, path, config key, --cfg-options fix) for each local path a dataset reads."""
    if not isinstance(dataset, dict):
        return
    for child in ("dataset", "datasets"):  # wrappers: RepeatDataset, ConcatDataset, ...
        inner = dataset.get(child)
        if isinstance(inner, (list, tuple)):
            for index, item in enumerate(inner):
                yield from _dataset_paths(item, f"{key}.{child}.{index}")
        else:
            yield from _dataset_paths(inner, f"{key}.{child}")
    data_root = dataset.get("data_root")
    if _is_remote(str(data_root or ""), dataset.get("backend_args")):
        return
    fix = f"{key}.data_root=DIR/"
    if dataset.get("ann_file"):
        yield "annotation file", _joined(data_root, dataset["ann_file"]), f"{key}.ann_file", fix
    prefixes = dataset.get("data_prefix")
    for name, prefix in prefixes.items() if isinstance(prefixes, dict) else []:
        if isinstance(prefix, str):
            yield "data folder", _joined(data_root, prefix), f"{key}.data_prefix.{name}", fix


def _evaluator_paths(evaluator, key: str) -> Iterator[Tuple[str, str, str, str]]:
    """Yield (what, path, config key, --cfg-options fix) for the evaluators' annotation files."""
    listed = isinstance(evaluator, (list, tuple))
    for index, metric in enumerate(evaluator if listed else [evaluator]):
        ann_file = metric.get("ann_file") if isinstance(metric, dict) else None
        if ann_file and not _is_remote(ann_file, metric.get("backend_args")):
            metric_key = f"{key}.{index}.ann_file" if listed else f"{key}.ann_file"
            yield "annotation file", ann_file, metric_key, f"{metric_key}=FILE"


def check_data_files(cfg: Config, sections: Sequence[str]) -> None:
    """Fail early, naming the file, when a dataset or evaluator of ``sections`` lacks a file.

    Args:
        cfg (Config): The run's config.
        sections (Sequence[str]): Config keys to check, e.g. ``('train_dataloader',
            'val_dataloader', 'val_evaluator')``; missing or None sections are skipped.

    Raises:
        UserError: for the first missing annotation file or data folder, with the config key
            that names it and the ``--cfg-options`` that would point it elsewhere.
    """
    for section in sections:
        value = cfg.get(section)
        if value is None:
            continue
        if section.endswith("_dataloader"):
            found = _dataset_paths(value.get("dataset"), f"{section}.dataset")
        else:
            found = _evaluator_paths(value, section)
        for what, path, key, fix in found:
            if not os.path.exists(path):
                raise UserError(
                    f"{what} not found: {path} (config key {key}). Put the dataset there "
                    f"(README: Data) or point the config at your copy: --cfg-options {fix}"
                )


def check_checkpoint_file(path: Optional[str], role: str, remedy: str) -> None:
    """Raise a :class:`UserError` naming ``path`` when a local checkpoint file is missing."""
    if path and is_missing_local_file(path):
        raise UserError(f"{role} not found: {path}. {remedy}")


def debug_requested(flag: bool = False) -> bool:
    """Whether to show tracebacks: ``--debug`` or ``MMRMT_DEBUG`` set to something but 0."""
    return flag or os.environ.get(DEBUG_ENV, "") not in ("", "0")


def describe_error(error: BaseException) -> str:
    """One line for a user error.

    Messages written for users (mmrmt's, e.g. the backbone's missing checkpoint) pass through;
    a bare ``[Errno 2]`` from deeper code is reduced to its path, with a pointer to ``--debug``
    since only the traceback tells which part of the run wanted the file.
    """
    message = " ".join(str(error).split())
    if isinstance(error, FileNotFoundError):
        path = error.filename
        if path is None:
            match = _NO_SUCH_FILE.search(message)
            path = match.group(1) if match else None
        if path is not None:
            return f"file not found: {path} (--debug shows which step needed it)"
    return message


def run_tool(tool: Callable[[argparse.Namespace], None], args: argparse.Namespace) -> int:
    """Run ``tool(args)``; report :data:`USER_ERRORS` in one line unless debugging.

    Args:
        tool (Callable): The tool's body.
        args (argparse.Namespace): Parsed arguments; ``args.debug`` shows tracebacks.

    Returns:
        int: 0 on success, 1 after a user error.
    """
    try:
        tool(args)
    except USER_ERRORS as error:
        if debug_requested(getattr(args, "debug", False)):
            raise
        prog = os.path.basename(sys.argv[0]) or "mmrmt"
        print(f"{prog}: error: {describe_error(error)}", file=sys.stderr)
        return 1
    return 0


def set_local_rank_env(local_rank: int) -> None:
    """Export ``LOCAL_RANK`` for launchers that pass ``--local_rank`` instead of setting it."""
    os.environ.setdefault("LOCAL_RANK", str(local_rank))


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
        UserError: a CPU-only distributed run with another launcher than ``pytorch``.
    """
    cfg.launcher = launcher
    if launcher == "none" or torch.cuda.is_available():
        return
    if launcher != "pytorch":
        raise UserError(
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


def build_runner(cfg: Config) -> Runner:
    """Build mmengine's Runner, or ``cfg.runner_type`` from the config scope's ``RUNNERS``."""
    if "runner_type" not in cfg:
        return Runner.from_cfg(cfg)
    registry = importlib.import_module(f"{config_scope(cfg)}.registry").RUNNERS
    return registry.build(cfg)
