"""Checks, before a run starts, that the files a config reads exist: named in one line if not."""

import os
from typing import Iterator, Optional, Sequence, Tuple

from mmengine.config import Config

from ..checkpoint.loading import is_missing_local_file


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
        FileNotFoundError: for the first missing annotation file or data folder, with the config key
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
                raise FileNotFoundError(
                    f"{what} not found: {path} (config key {key}). Put the dataset there "
                    f"(README: Data) or point the config at your copy: --cfg-options {fix}"
                )


def check_checkpoint_file(path: Optional[str], role: str, remedy: str) -> None:
    """Raise a ``FileNotFoundError`` naming ``path`` when a local checkpoint file is missing."""
    if path and is_missing_local_file(path):
        raise FileNotFoundError(f"{role} not found: {path}. {remedy}")
