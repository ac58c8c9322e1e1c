"""Configs and the models they describe: reading, the scope, building the model or the Runner.

A config's ``default_scope`` (``'mmdet'`` or ``'mmseg'``) decides which library's registries
build its model and Runner, so one ``tools/train.py`` / ``tools/test.py`` pair serves both tasks
and every tool builds its model through :func:`build_model`.
"""

import importlib
import os
from typing import Any, Collection, Iterator, Optional

from mmengine.config import Config
from mmengine.model import revert_sync_batchnorm
from mmengine.registry import Registry, init_default_scope
from mmengine.runner import Runner
from torch import nn

from ..errors import InvalidValueError
from ..package_data import resolve_config

#: The libraries whose configs mmrmt's tools run.
SCOPES = ("mmdet", "mmseg")


def config_dicts(node: Any, skip_keys: Collection[str] = ()) -> Iterator[dict]:
    """Every dict in a config tree, depth first, each before what it holds.

    A dict may be changed when it is yielded; its values are walked after that.

    Args:
        node: A config (or part of one): dicts, lists and tuples of them, and leaves.
        skip_keys (Collection[str]): Keys whose values are not walked, e.g. ``('backbone',)``.

    Yields:
        dict: ``node`` itself if it is a dict, then every dict below it.
    """
    if isinstance(node, dict):
        yield node
        for key, value in node.items():
            if key not in skip_keys:
                yield from config_dicts(value, skip_keys)
    elif isinstance(node, (list, tuple)):
        for item in node:
            yield from config_dicts(item, skip_keys)


def load_config(path: str, cfg_options: Optional[dict] = None) -> Config:
    """Read a config and apply ``--cfg-options``.

    Args:
        path (str): Config file; ``mmrmt::det/...`` or a ``configs/...`` path outside the
            checkout name the package's own (:func:`mmrmt.package_data.resolve_config`).
        cfg_options (dict | None): Parsed ``--cfg-options``.

    Returns:
        Config: The merged config.

    Raises:
        FileNotFoundError: ``path`` is not a file.
        InvalidValueError: an option does not fit the config.
    """
    path = resolve_config(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"config file not found: {path}. Pass a config such as "
            "configs/det/maskrcnn_rmt_s_coco.py"
        )
    cfg = Config.fromfile(path)
    if cfg_options:
        try:
            cfg.merge_from_dict(cfg_options)
        except (KeyError, TypeError) as error:
            raise InvalidValueError(f"--cfg-options does not fit {path}: {error}") from error
    return cfg


def config_scope(cfg: Config) -> str:
    """Return the config's ``default_scope``: one of :data:`SCOPES`, else InvalidValueError."""
    scope = cfg.get("default_scope")
    if scope not in SCOPES:
        raise InvalidValueError(
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


def scope_registry(scope: str, name: str = "MODELS") -> Registry:
    """Return registry ``name`` (``MODELS``, ``RUNNERS``, ``VISUALIZERS``...) of ``scope``."""
    return getattr(importlib.import_module(f"{scope}.registry"), name)


def build_model(cfg: Config, model_cfg: Optional[dict] = None) -> nn.Module:
    """Build the config's model (or ``model_cfg``) in the config's scope, for use outside a Runner.

    SyncBN layers become BN (a single process has no group to sync with); weights stay as the
    model's ``__init__`` made them (call ``init_weights()`` or load a checkpoint next).

    Args:
        cfg (Config): The config; its ``default_scope`` picks mmdet's or mmseg's ``MODELS``.
        model_cfg (dict | None): What to build instead of ``cfg.model``, e.g. its backbone.

    Returns:
        nn.Module: The model, in training mode as built.

    Raises:
        InvalidValueError: the config's scope is not one of :data:`SCOPES`.
    """
    scope = config_scope(cfg)
    init_default_scope(scope)
    model = scope_registry(scope).build(cfg.model if model_cfg is None else model_cfg)
    return revert_sync_batchnorm(model)


def build_runner(cfg: Config) -> Runner:
    """Build mmengine's Runner, or ``cfg.runner_type`` from the config scope's ``RUNNERS``."""
    if "runner_type" not in cfg:
        return Runner.from_cfg(cfg)
    return scope_registry(config_scope(cfg), "RUNNERS").build(cfg)
