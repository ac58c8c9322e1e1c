"""Let ``torch.load(weights_only=True)`` read mmengine and the authors' checkpoints.

Since torch 2.6, ``torch.load`` defaults to ``weights_only=True``, whose unpickler only builds
allow-listed types. mmengine's ``load_checkpoint`` and ``Runner.resume`` then fail on what
mmengine itself writes: numpy scalars and arrays in ``meta`` and the ``HistoryBuffer`` objects of
the message hub. This module allow-lists exactly those data types. Nothing that can run code
(``os.system``, ``eval``, arbitrary ``__reduce__`` callables) is added, so a checkpoint carrying
pickled code is still refused before any of it runs.

``HistoryBuffer`` pickles its statistics methods as ``getattr(HistoryBuffer, 'mean')``. Rather
than allow-listing ``getattr`` itself, the name ``builtins.getattr`` is bound to
:func:`history_buffer_method`, which only looks up those methods.
"""

import argparse
import pickle
from typing import Callable, List

import numpy as np
import torch


def _numpy_globals() -> List:
    """numpy's pickle entry points for arrays, dtypes and scalars (both numpy 1 and 2 names)."""
    found = [np.ndarray, np.dtype]
    for module_name in ("numpy.core.multiarray", "numpy._core.multiarray"):
        try:
            module = __import__(module_name, fromlist=["scalar", "_reconstruct"])
        except ImportError:
            continue
        for name in ("scalar", "_reconstruct"):
            # numpy 2 keeps numpy.core as an alias whose objects pickle under numpy._core:
            # register the object under the name it pickles as.
            obj = getattr(module, name)
            found.append((obj, f"{module_name}.{name}"))
    # Concrete dtype classes (numpy.dtypes.Float64DType, ...) are pickled with dtypes.
    found.extend(type(np.dtype(code)) for code in "?bBhHiIlLqQefdgFDGSUV")
    found.extend(np.sctypeDict[name] for name in ("float64", "float32", "int64", "int32", "bool"))
    return found


def history_buffer_method(owner: type, name: str) -> Callable:
    """``getattr`` restricted to the statistics methods of mmengine's ``HistoryBuffer``.

    Args:
        owner (type): Must be ``HistoryBuffer`` (or a subclass).
        name (str): A public method name such as ``'mean'``.

    Returns:
        Callable: the method.

    Raises:
        pickle.UnpicklingError: for any other object or attribute.
    """
    from mmengine.logging import HistoryBuffer

    is_buffer_class = isinstance(owner, type) and issubclass(owner, HistoryBuffer)
    method = getattr(owner, name, None) if is_buffer_class else None
    if (
        not is_buffer_class
        or not isinstance(name, str)
        or name.startswith("_")
        or not callable(method)
        or getattr(method, "__qualname__", "").split(".")[0] != owner.__name__
    ):
        raise pickle.UnpicklingError(
            f"Refusing getattr({owner!r}, {name!r}) while loading a checkpoint: only "
            "HistoryBuffer statistics methods may be looked up"
        )
    return method


def _mmengine_globals() -> List:
    from mmengine.logging import HistoryBuffer

    return [HistoryBuffer, (history_buffer_method, "builtins.getattr")]


def safe_checkpoint_globals() -> List:
    """Return the data-only types that mmengine and the authors' checkpoints pickle."""
    # argparse.Namespace: DeiT-style ImageNet checkpoints store the training ``args`` as one.
    return [*_numpy_globals(), *_mmengine_globals(), argparse.Namespace]


def register_safe_globals() -> None:
    """Allow-list :func:`safe_checkpoint_globals` for every ``weights_only`` load."""
    add = getattr(torch.serialization, "add_safe_globals", None)
    if add is None:  # torch < 2.4 loads with weights_only=False by default: nothing to do.
        return
    add(safe_checkpoint_globals())
