"""Register mmrmt's models into the registries of whichever of mmdet / mmseg is installed.

``backbone=dict(type='RMT')`` is then found under ``default_scope='mmdet'`` and
``default_scope='mmseg'`` alike, after ``custom_imports=dict(imports=['mmrmt'])``.
"""

import importlib
from typing import List

from mmengine.registry import Registry

DOWNSTREAM_REGISTRIES = ("mmdet.registry", "mmseg.registry")


def downstream_model_registries() -> List[Registry]:
    """Return the ``MODELS`` registries of the installed downstream libraries."""
    registries = []
    for module_name in DOWNSTREAM_REGISTRIES:
        try:
            registries.append(importlib.import_module(module_name).MODELS)
        except ImportError:
            continue
    return registries


def register_models() -> List[Registry]:
    """Register :class:`~mmrmt.models.RMT` in every downstream ``MODELS`` registry.

    Returns:
        list[Registry]: the registries it was added to.
    """
    from .models import RMT

    registries = downstream_model_registries()
    for registry in registries:
        if registry.module_dict.get("RMT") is not RMT:
            registry.register_module(name="RMT", module=RMT, force=True)
    return registries
