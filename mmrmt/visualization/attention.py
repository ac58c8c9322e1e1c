"""Where a query token looks in each RMT stage: MaSA's softmax weights, read from the model.

The weights come from the reference path of
:class:`~mmrmt.models.layers.ManhattanSelfAttention`, which hands every softmax it computes to
its ``weights_recorder`` (:func:`record_attention` sets it). Full MaSA gives each query one 2-D
map. Decomposed MaSA attends along the width, then along the height of that result::

    out(y, x) = sum_y' A_height[x](y, y') * sum_x' A_width[y'](x, x') * V(y', x')

so the query ``(y, x)`` weighs the token ``(y', x')`` by
``A_height[x](y, y') * A_width[y'](x, x')``: the effective 2-D map of the two passes, which also
sums to 1 (:func:`query_attention`).
"""

import math
import os
from contextlib import contextmanager
from typing import Dict, Iterator, List, NamedTuple, Tuple

import numpy as np
import torch
from torch import Tensor, nn

from ..errors import InvalidValueError
from ..models import RMT, set_attention_impl
from ..models.layers import ManhattanSelfAttention
from .drawing import Panel, draw_panels, wrap_panels

#: Weights recorded per MaSA module: ``{'width': ..., 'height': ...}`` or ``{'full': ...}``.
AttentionRecords = Dict[ManhattanSelfAttention, Dict[str, Tensor]]


@contextmanager
def record_attention(model: nn.Module) -> Iterator[AttentionRecords]:
    """Record the softmax weights of every MaSA module of ``model`` while the context is open.

    Each module keeps the weights of its latest forward: ``'width'`` (B, H, heads, W, W) and
    ``'height'`` (B, W, heads, H, H) for decomposed MaSA, ``'full'`` (B, heads, HW, HW)
    otherwise, detached.

    Args:
        model (nn.Module): A model whose MaSA modules run the reference path
            (``set_attention_impl(model, 'reference')``); the fast path never forms the weights.

    Yields:
        dict: MaSA module -> its weights, filled in by the forward passes.

    Raises:
        ValueError: a MaSA module of ``model`` runs another implementation.
    """
    modules = [module for module in model.modules() if isinstance(module, ManhattanSelfAttention)]
    others = sorted({module.impl for module in modules} - {"reference"})
    if others:
        raise ValueError(
            f"recording attention needs the reference path, but MaSA modules run {others}; "
            "call set_attention_impl(model, 'reference') first"
        )
    records: AttentionRecords = {}

    def recorder(module: nn.Module, axis: str, weights: Tensor) -> None:
        records.setdefault(module, {})[axis] = weights.detach()

    for module in modules:
        module.weights_recorder = recorder
    try:
        yield records
    finally:
        for module in modules:
            module.weights_recorder = None


def query_attention(
    weights: Dict[str, Tensor], grid_size: Tuple[int, int], query: Tuple[int, int]
) -> Tensor:
    """The weight that the query token gives every token, per head, for the first image.

    Args:
        weights (dict): One module's records (see :func:`record_attention`).
        grid_size (tuple[int, int]): (H, W) tokens.
        query (tuple[int, int]): (y, x) query token.

    Returns:
        Tensor: (heads, H, W); each head's map sums to 1.
    """
    height, width = grid_size
    query_y, query_x = query
    if "full" in weights:
        return weights["full"][0, :, query_y * width + query_x].reshape(-1, height, width)
    # The height pass of column x mixes the rows y' (heads, H); each row y' had mixed its
    # columns x' in the width pass, query column x (heads, H, W).
    height_pass = weights["height"][0, query_x, :, query_y, :]
    width_pass = weights["width"][0, :, :, query_x, :].transpose(0, 1)
    return height_pass[:, :, None] * width_pass


class StageAttention(NamedTuple):
    """A query's attention in one block of one stage.

    Attributes:
        stage (int): Stage index.
        block (int): Block index within the stage.
        decomposed (bool): Whether the maps combine a width and a height pass.
        stride (int): Input pixels per token.
        token (tuple[int, int]): (y, x) query token.
        maps (np.ndarray): (heads, H, W) weights per head, each summing to 1.
    """

    stage: int
    block: int
    decomposed: bool
    stride: int
    token: Tuple[int, int]
    maps: np.ndarray


def stage_attention(
    backbone: RMT, image: Tensor, point: Tuple[int, int], block: int = -1
) -> List[StageAttention]:
    """Run ``backbone`` on ``image`` and read each stage's attention of the query pixel.

    Switches ``backbone`` to eval mode and the reference MaSA path (the same function).

    Args:
        backbone (RMT): The backbone.
        image (Tensor): (1, 3, H, W) normalised image.
        point (tuple[int, int]): (y, x) query pixel of ``image``.
        block (int): Which block of each stage (negative counts from the end). Default: -1.

    Returns:
        list[StageAttention]: One per stage the backbone runs.

    Raises:
        InvalidValueError: ``point`` outside the image, or no such block in a stage.
    """
    height, width = image.shape[-2:]
    check_point(point, (height, width))
    stages = backbone.layers[: backbone.out_indices[-1] + 1]  # the forward stops there
    for stage, layer in enumerate(stages):
        depth = len(layer.blocks)
        if not -depth <= block < depth:
            raise InvalidValueError(
                f"stage {stage} has {depth} blocks; block {block} does not exist"
            )
    backbone.eval()
    set_attention_impl(backbone, "reference")
    with record_attention(backbone) as records, torch.no_grad():
        backbone(image)
    results = []
    for stage, layer in enumerate(stages):
        depth = len(layer.blocks)
        stride = 4 * 2**stage
        grid_size = (math.ceil(height / stride), math.ceil(width / stride))
        token = (
            min(point[0] // stride, grid_size[0] - 1),
            min(point[1] // stride, grid_size[1] - 1),
        )
        retention = layer.blocks[block].retention
        maps = query_attention(records[retention], grid_size, token).double().numpy()
        results.append(
            StageAttention(stage, block % depth, retention.decomposed, stride, token, maps)
        )
    return results


def check_point(point: Tuple[int, int], size: Tuple[int, int]) -> None:
    """Raise an :class:`InvalidValueError` unless the (y, x) ``point`` lies in a ``size`` image."""
    if not (0 <= point[0] < size[0] and 0 <= point[1] < size[1]):
        raise InvalidValueError(
            f"point (y, x) = {tuple(point)} lies outside the {size[0]}x{size[1]} image "
            f"(y in 0..{size[0] - 1}, x in 0..{size[1] - 1})"
        )


def _normalised(values: np.ndarray) -> np.ndarray:
    """``values`` over their maximum, so that every panel uses the whole colour map."""
    return values / max(values.max(), 1e-12)


def draw_stage_attention(
    result: StageAttention,
    image: np.ndarray,
    point: Tuple[int, int],
    title: str,
    out_file: str,
    panels_per_row: int = 6,
) -> str:
    """Draw one stage's attention over the image: the mean over heads, then each head.

    Args:
        result (StageAttention): From :func:`stage_attention`.
        image (np.ndarray): (H, W, 3) uint8 RGB image the backbone saw.
        point (tuple[int, int]): (y, x) query pixel.
        title (str): Figure title (the stage is added).
        out_file (str): PNG path.
        panels_per_row (int): Panels per row.

    Returns:
        str: ``out_file``.
    """
    maps = [("mean of heads", result.maps.mean(axis=0))]
    maps += [(f"head {head}", values) for head, values in enumerate(result.maps)]
    panels = [
        Panel(f"{name}\nmax {values.max():.3g}", _normalised(values), image, point)
        for name, values in maps
    ]
    rows = wrap_panels(panels, panels_per_row)
    form = "width then height pass" if result.decomposed else "full MaSA"
    full_title = (
        f"{title}\nstage {result.stage} block {result.block} ({form}), token {result.token}"
    )
    return draw_panels(rows, full_title, out_file, "attention weight / panel max", cmap="inferno")


def draw_attention_summary(
    results: List[StageAttention],
    image: np.ndarray,
    point: Tuple[int, int],
    title: str,
    out_file: str,
) -> str:
    """Draw the mean-over-heads attention of every stage in one row.

    Args:
        results (list[StageAttention]): From :func:`stage_attention`.
        image (np.ndarray): (H, W, 3) uint8 RGB image the backbone saw.
        point (tuple[int, int]): (y, x) query pixel.
        title (str): Figure title.
        out_file (str): PNG path.

    Returns:
        str: ``out_file``.
    """
    panels = []
    for result in results:
        form = "decomposed" if result.decomposed else "full"
        mean = result.maps.mean(axis=0)
        panel_title = f"stage {result.stage} ({form}, stride {result.stride})\nmax {mean.max():.3g}"
        panels.append(Panel(panel_title, _normalised(mean), image, point))
    return draw_panels(
        [panels], title, out_file, "attention weight / panel max", cmap="inferno", panel_inches=2.4
    )


def draw_attention(
    backbone: RMT,
    image_tensor: Tensor,
    image: np.ndarray,
    point: Tuple[int, int],
    out_dir: str,
    title: str,
    name: str = "attention",
    block: int = -1,
) -> List[str]:
    """Write ``{name}.png`` (every stage, mean of heads) and ``{name}_stage{N}.png`` (per head).

    Args:
        backbone (RMT): The backbone (switched to eval and the reference path).
        image_tensor (Tensor): (1, 3, H, W) normalised ``image``.
        image (np.ndarray): (H, W, 3) uint8 RGB image.
        point (tuple[int, int]): (y, x) query pixel of ``image``.
        out_dir (str): Folder of the PNGs.
        title (str): What the figures show (image, weights).
        name (str): File name stem.
        block (int): Which block of each stage.

    Returns:
        list[str]: The PNG paths.
    """
    results = stage_attention(backbone, image_tensor, point, block)
    paths = [
        draw_attention_summary(results, image, point, title, os.path.join(out_dir, f"{name}.png"))
    ]
    for result in results:
        out_file = os.path.join(out_dir, f"{name}_stage{result.stage}.png")
        paths.append(draw_stage_attention(result, image, point, title, out_file))
    return paths
