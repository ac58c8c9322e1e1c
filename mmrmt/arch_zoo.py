"""What an RMT is: the T/S/B/L presets, arch validation and the per-head decay formula.

This module is the spec that the model (:mod:`mmrmt.models`) and the checkpoint converters
(:mod:`mmrmt.checkpoint`) share. It imports nothing from mmrmt, so both can depend on it
without depending on each other.

RMT decays attention with the Manhattan distance between tokens: head ``h`` of ``H`` uses
``gamma_h = 1 - 2 ** (-a - b * h / H)``, ``a`` the stage's initial value and ``b`` its heads
range (:func:`head_decay_rates`).
"""

import copy
from typing import Dict, List, Union

import torch
from torch import Tensor

_STAGE_KEYS = ("embed_dims", "depths", "num_heads", "heads_ranges", "mlp_ratios", "decomposed")

ARCH_SETTINGS: Dict[str, dict] = {
    **dict.fromkeys(
        ["t", "tiny"],
        dict(
            embed_dims=[64, 128, 256, 512],
            depths=[2, 2, 8, 2],
            num_heads=[4, 4, 8, 16],
            heads_ranges=[4, 4, 6, 6],
            mlp_ratios=[3, 3, 3, 3],
            decomposed=[True, True, False, False],
            layer_scales=[False, False, False, False],
            drop_path_rate=0.1,
        ),
    ),
    **dict.fromkeys(
        ["s", "small"],
        dict(
            embed_dims=[64, 128, 256, 512],
            depths=[3, 4, 18, 4],
            num_heads=[4, 4, 8, 16],
            heads_ranges=[4, 4, 6, 6],
            mlp_ratios=[4, 4, 3, 3],
            decomposed=[True, True, True, False],
            layer_scales=[False, False, False, False],
            drop_path_rate=0.15,
        ),
    ),
    **dict.fromkeys(
        ["b", "base"],
        dict(
            embed_dims=[80, 160, 320, 512],
            depths=[4, 8, 25, 8],
            num_heads=[5, 5, 10, 16],
            heads_ranges=[5, 5, 6, 6],
            mlp_ratios=[4, 4, 3, 3],
            decomposed=[True, True, True, False],
            layer_scales=[False, False, True, True],
            drop_path_rate=0.4,
        ),
    ),
    **dict.fromkeys(
        ["l", "large"],
        dict(
            embed_dims=[112, 224, 448, 640],
            depths=[4, 8, 25, 8],
            num_heads=[7, 7, 14, 20],
            heads_ranges=[6, 6, 6, 6],
            mlp_ratios=[4, 4, 3, 3],
            decomposed=[True, True, True, False],
            layer_scales=[False, False, True, True],
            drop_path_rate=0.5,
        ),
    ),
}


def resolve_arch(arch: Union[str, dict]) -> dict:
    """Turn a preset name or a dict into a checked, complete arch dict.

    Args:
        arch (str | dict): A key of :data:`ARCH_SETTINGS` or a dict with the keys
            ``embed_dims, depths, num_heads, heads_ranges, mlp_ratios, decomposed`` (one entry per
            stage) and optionally ``layer_scales``, ``initial_values``, ``drop_path_rate``.

    Returns:
        dict: The arch with every key filled in.

    Raises:
        ValueError: unknown preset, missing keys, stage lists of different lengths, or heads that
            do not split a stage's width into even head dims.
    """
    if isinstance(arch, str):
        if arch.lower() not in ARCH_SETTINGS:
            raise ValueError(
                f"Unknown RMT arch {arch!r}; choose one of {sorted(ARCH_SETTINGS)} or pass a dict"
            )
        arch = ARCH_SETTINGS[arch.lower()]
    if not isinstance(arch, dict):
        raise TypeError(f"arch must be a preset name or a dict, got {type(arch).__name__}")
    missing = [key for key in _STAGE_KEYS if key not in arch]
    if missing:
        raise ValueError(f"RMT arch dict is missing keys {missing}; it needs {list(_STAGE_KEYS)}")
    arch = copy.deepcopy(arch)
    num_stages = len(arch["depths"])
    arch.setdefault("layer_scales", [False] * num_stages)
    arch.setdefault("initial_values", [2.0] * num_stages)
    arch.setdefault("drop_path_rate", 0.1)
    lengths = {key: len(arch[key]) for key in (*_STAGE_KEYS, "layer_scales", "initial_values")}
    if len(set(lengths.values())) != 1:
        raise ValueError(f"RMT arch lists must have one entry per stage; got lengths {lengths}")
    for stage, (dim, heads) in enumerate(zip(arch["embed_dims"], arch["num_heads"])):
        if heads <= 0 or dim % heads or (dim // heads) % 2:
            raise ValueError(
                f"RMT stage {stage}: num_heads={heads} must divide embed_dims={dim} "
                "into an even head dim"
            )
    return arch


#: One name per preset (ARCH_SETTINGS also holds the long aliases).
PRESET_NAMES = ("t", "s", "b", "l")


def head_decay_rates(num_heads: int, initial_value: float, heads_range: float) -> Tensor:
    """Return ``log(gamma_h)`` for every head.

    Args:
        num_heads (int): Number of heads ``H``.
        initial_value (float): ``a`` in ``gamma_h = 1 - 2 ** (-a - b * h / H)``.
        heads_range (float): ``b`` in the same formula.

    Returns:
        Tensor: (H,) float32, negative values.
    """
    head_index = torch.arange(num_heads, dtype=torch.float32)
    return torch.log(1 - 2 ** (-initial_value - heads_range * head_index / num_heads))


def arch_decay_rates(arch: Union[str, dict]) -> List[Tensor]:
    """Per-stage ``log(gamma)`` of every head of an arch (preset name or dict).

    Args:
        arch (str | dict): As accepted by :func:`resolve_arch`.

    Returns:
        list[Tensor]: One (num_heads,) tensor per stage, as the authors' ``Relpos.decay``
        buffers hold them.
    """
    arch = resolve_arch(arch)
    return [
        head_decay_rates(heads, initial, heads_range)
        for heads, initial, heads_range in zip(
            arch["num_heads"], arch["initial_values"], arch["heads_ranges"]
        )
    ]
