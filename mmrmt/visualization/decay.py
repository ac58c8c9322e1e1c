"""RMT's spatial prior as pictures: each head's decay ``gamma_h ** (|dy| + |dx|)`` around a query.

Full MaSA adds ``log(gamma_h) * (|dy| + |dx|)`` to the logits: one 2-D decay map per head.
Decomposed MaSA applies the prior one axis at a time: the width pass decays along the query's
row (``gamma_h ** |dx|``), the height pass along its column (``gamma_h ** |dy|``), and chained
they weigh the token ``(y', x')`` by ``gamma_h ** |dy| * gamma_h ** |dx|``, the same Manhattan
decay. The values are read from the stage's own
:class:`~mmrmt.models.layers.RetentionPosition`, the tables the attention uses.
"""

import os
from typing import List, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from ..arch_zoo import resolve_arch
from ..errors import InvalidValueError
from ..models.layers import RetentionPosition
from .drawing import Panel, draw_panels, wrap_panels


class DecayMaps(NamedTuple):
    """Each head's decay around one query token of a stage.

    Attributes:
        gammas (np.ndarray): (heads,) decay rate ``gamma_h`` of each head.
        query (tuple[int, int]): (y, x) query token.
        decomposed (bool): Whether the stage attends one axis at a time.
        width_pass (np.ndarray | None): (heads, H, W) ``gamma ** |dx|`` on the query's row, zero
            elsewhere: what the width pass lets the query see; None for a full stage.
        height_pass (np.ndarray | None): (heads, H, W) ``gamma ** |dy|`` on the query's column,
            zero elsewhere; None for a full stage.
        combined (np.ndarray): (heads, H, W) the decay over every token: full MaSA's mask, or
            the product of the two passes.
    """

    gammas: np.ndarray
    query: Tuple[int, int]
    decomposed: bool
    width_pass: Optional[np.ndarray]
    height_pass: Optional[np.ndarray]
    combined: np.ndarray


def arch_settings(arch: Union[str, dict]) -> dict:
    """:func:`~mmrmt.arch_zoo.resolve_arch`, with an :class:`InvalidValueError` for a bad arch."""
    try:
        return resolve_arch(arch)
    except (ValueError, TypeError) as error:
        raise InvalidValueError(str(error)) from error


def stage_position(arch: Union[str, dict], stage: int) -> RetentionPosition:
    """The position module of stage ``stage`` of an RMT arch, as the backbone builds it.

    Args:
        arch (str | dict): A preset name (``'t'``, ``'s'``, ...) or an arch dict.
        stage (int): Stage index.

    Returns:
        RetentionPosition: The stage's decay and rotary tables.

    Raises:
        InvalidValueError: unknown arch, or no such stage.
    """
    settings = arch_settings(arch)
    check_stage(stage, len(settings["depths"]))
    return RetentionPosition(
        settings["embed_dims"][stage],
        settings["num_heads"][stage],
        settings["initial_values"][stage],
        settings["heads_ranges"][stage],
        settings["decomposed"][stage],
    )


def check_stage(stage: int, num_stages: int) -> None:
    """Raise an :class:`InvalidValueError` unless ``0 <= stage < num_stages``."""
    if not 0 <= stage < num_stages:
        raise InvalidValueError(f"unknown stage {stage}: the model has stages 0..{num_stages - 1}")


def decay_maps(
    position: RetentionPosition, grid_size: Tuple[int, int], query: Tuple[int, int]
) -> DecayMaps:
    """Each head's decay around ``query`` on a ``grid_size`` feature grid.

    Args:
        position (RetentionPosition): A stage's position module.
        grid_size (tuple[int, int]): (H, W) tokens.
        query (tuple[int, int]): (y, x) query token.

    Returns:
        DecayMaps: the maps, float64.

    Raises:
        InvalidValueError: ``query`` lies outside the grid.
    """
    height, width = grid_size
    query_y, query_x = query
    if not (0 <= query_y < height and 0 <= query_x < width):
        raise InvalidValueError(f"query token {query} lies outside the {height}x{width} grid")
    tables = position.compute(height, width, torch.float64, full_mask_limit=None)
    gammas = position.decay.double().exp().numpy()
    heads = len(gammas)
    # The tables hold log-decays, one row per query.
    along_width = tables.decay_width[:, query_x, :].exp().numpy()  # (heads, W)
    along_height = tables.decay_height[:, query_y, :].exp().numpy()  # (heads, H)
    if not position.decomposed:
        query_index = query_y * width + query_x
        combined = tables.decay_full[:, query_index, :].exp().reshape(heads, height, width)
        return DecayMaps(gammas, query, False, None, None, combined.numpy())
    width_pass = np.zeros((heads, height, width))
    width_pass[:, query_y, :] = along_width
    height_pass = np.zeros((heads, height, width))
    height_pass[:, :, query_x] = along_height
    combined = along_height[:, :, None] * along_width[:, None, :]
    return DecayMaps(gammas, query, True, width_pass, height_pass, combined)


def draw_decay_maps(
    maps: DecayMaps, stage: int, arch_name: str, out_file: str, panels_per_row: int = 8
) -> str:
    """Draw one stage's decay maps, a panel per head (decomposed stages: a row per pass, then both).

    Args:
        maps (DecayMaps): From :func:`decay_maps`.
        stage (int): Stage index, for the title.
        arch_name (str): e.g. ``'RMT-T'``, for the title.
        out_file (str): PNG path.
        panels_per_row (int): Heads per row of panels.

    Returns:
        str: ``out_file``.
    """
    if maps.decomposed:
        passes = [
            ("width pass", maps.width_pass),
            ("height pass", maps.height_pass),
            ("both passes", maps.combined),
        ]
    else:
        passes = [("Manhattan decay", maps.combined)]
    rows: List[List[Panel]] = []
    for name, values in passes:
        panels = [
            Panel(f"{name}, head {head}\ngamma={gamma:.4f}", values[head], marker=maps.query)
            for head, gamma in enumerate(maps.gammas)
        ]
        rows += wrap_panels(panels, panels_per_row)
    form = "decomposed MaSA (width, then height)" if maps.decomposed else "full MaSA"
    height, width = maps.combined.shape[1:]
    title = (
        f"{arch_name} stage {stage}, {form}: decay around token {maps.query} of {height}x{width}"
    )
    return draw_panels(rows, title, out_file, "decay gamma ** distance")


def draw_stage_decays(
    arch: Union[str, dict],
    stages: Optional[Sequence[int]],
    grid_size: Tuple[int, int],
    query: Optional[Tuple[int, int]],
    out_dir: str,
) -> List[str]:
    """Draw ``decay_stage{N}.png`` for each stage of ``stages``.

    Args:
        arch (str | dict): RMT preset name or arch dict.
        stages (Sequence[int] | None): Stage indices; None for every stage.
        grid_size (tuple[int, int]): (H, W) feature grid.
        query (tuple[int, int] | None): (y, x) query token; None for the grid's centre.
        out_dir (str): Folder of the PNGs.

    Returns:
        list[str]: The PNG paths.

    Raises:
        InvalidValueError: unknown arch or stage, an empty grid, or a query outside it.
    """
    if min(grid_size) <= 0:
        raise InvalidValueError(
            f"the feature grid must have positive H and W, got {tuple(grid_size)}"
        )
    num_stages = len(arch_settings(arch)["depths"])
    stages = range(num_stages) if stages is None else stages
    for stage in stages:
        check_stage(stage, num_stages)
    if query is None:
        query = (grid_size[0] // 2, grid_size[1] // 2)
    arch_name = f"RMT-{arch[0].upper()}" if isinstance(arch, str) else "RMT"
    paths = []
    for stage in stages:
        maps = decay_maps(stage_position(arch, stage), grid_size, query)
        out_file = os.path.join(out_dir, f"decay_stage{stage}.png")
        paths.append(draw_decay_maps(maps, stage, arch_name, out_file))
    return paths
