"""Grids of heat maps, alone or over a photograph, saved as PNG through matplotlib's Agg canvas.

Figures are built with :class:`matplotlib.figure.Figure` directly, never through ``pyplot``, so
drawing selects no backend for the process and leaves no figure open.
"""

import os
from typing import List, NamedTuple, Optional, Sequence, Tuple

import numpy as np
from matplotlib.figure import Figure


class Panel(NamedTuple):
    """One heat map of a figure.

    Attributes:
        title (str): Shown above the panel.
        values (np.ndarray): (h, w) values; over an image they are stretched to cover it, each
            value drawn as one block (a token covers ``H / h`` x ``W / w`` pixels).
        image (np.ndarray | None): (H, W, 3) uint8 photograph under the values, or None.
        marker (tuple | None): (y, x) point to mark, in image pixels when there is an image,
            else in value indices.
    """

    title: str
    values: np.ndarray
    image: Optional[np.ndarray] = None
    marker: Optional[Tuple[float, float]] = None


def wrap_panels(panels: Sequence[Panel], per_row: int) -> List[List[Panel]]:
    """Split ``panels`` into rows of at most ``per_row``."""
    return [list(panels[start : start + per_row]) for start in range(0, len(panels), per_row)]


def draw_panels(
    rows: Sequence[Sequence[Panel]],
    title: str,
    out_file: str,
    colorbar_label: str,
    value_range: Tuple[float, float] = (0.0, 1.0),
    cmap: str = "viridis",
    panel_inches: float = 2.0,
    dpi: int = 80,
) -> str:
    """Draw rows of panels sharing one colour scale and one colour bar, and save a PNG.

    Args:
        rows (Sequence[Sequence[Panel]]): Panels, row by row (rows may differ in length).
        title (str): Figure title.
        out_file (str): PNG path; its folder is created.
        colorbar_label (str): What the colours measure.
        value_range (tuple[float, float]): Values drawn at the two ends of the colour map.
        cmap (str): Matplotlib colour map.
        panel_inches (float): Width of one panel in inches.
        dpi (int): Pixels per inch of the PNG.

    Returns:
        str: ``out_file``.
    """
    num_rows = len(rows)
    num_cols = max(len(row) for row in rows)
    # A fixed layout in inches (matplotlib's constrained layout takes seconds for many panels):
    # panel titles above each panel, the figure title on top, the colour bar on the right.
    # Panels take the shape of the first one's picture; the others are alike.
    first = rows[0][0]
    picture_shape = (first.values if first.image is None else first.image).shape
    panel_height = panel_inches * min(max(picture_shape[0] / picture_shape[1], 0.4), 2.5)
    panel_title_inches = 0.4
    top_inches = 0.2 + 0.18 * (title.count("\n") + 1)
    grid_width = panel_inches * num_cols + 0.1 * (num_cols + 1)
    fig_width = grid_width + 1.1
    fig_height = (panel_height + panel_title_inches) * num_rows + top_inches + 0.1
    figure = Figure(figsize=(fig_width, fig_height), dpi=dpi)
    axes = figure.subplots(num_rows, num_cols, squeeze=False)
    figure.subplots_adjust(
        left=0.1 / fig_width,
        right=grid_width / fig_width,
        bottom=0.1 / fig_height,
        top=1 - (top_inches + panel_title_inches) / fig_height,
        wspace=0.1 / panel_inches,
        hspace=panel_title_inches / panel_height,
    )
    colour_source = None
    for row_axes, row in zip(axes, rows):
        for column, ax in enumerate(row_axes):
            ax.set_axis_off()
            if column < len(row):
                colour_source = _draw_panel(ax, row[column], value_range, cmap)
    figure.suptitle(title, fontsize=10, y=1 - 0.1 / fig_height, va="top")
    colour_bar_axes = figure.add_axes(
        (grid_width / fig_width + 0.15 / fig_width, 0.15, 0.15 / fig_width, 0.65)
    )
    figure.colorbar(colour_source, cax=colour_bar_axes, label=colorbar_label)
    os.makedirs(os.path.dirname(os.path.abspath(out_file)), exist_ok=True)
    figure.savefig(out_file)
    return out_file


def _draw_panel(ax, panel: Panel, value_range: Tuple[float, float], cmap: str):
    """Draw one panel on ``ax``; returns the image artist that carries the colour scale."""
    style = dict(cmap=cmap, vmin=value_range[0], vmax=value_range[1], interpolation="nearest")
    if panel.image is None:
        artist = ax.imshow(panel.values, **style)
    else:
        height, width = panel.image.shape[:2]
        ax.imshow(panel.image)
        artist = ax.imshow(panel.values, alpha=0.6, extent=(0, width, height, 0), **style)
    if panel.marker is not None:
        y, x = panel.marker
        ax.plot(x, y, marker="+", color="red", markersize=9, markeredgewidth=2)
    ax.set_title(panel.title, fontsize=8)
    return artist
