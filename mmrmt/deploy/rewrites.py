"""Export-time stand-ins for library code that would freeze the example's size into a graph.

mmseg's ``Upsample`` (Semantic FPN's scale heads) computes its output size in Python,
``int(side * scale_factor)``: the traced graph keeps the example's size, and a file exported at
one size gives wrong maps at every other. While exporting, an integer scale factor goes to
``F.interpolate`` as such, which gives the same size (``side * scale_factor``) and the same
values, and stays symbolic.
"""

from contextlib import contextmanager
from typing import Iterator

from mmseg.models.utils import Upsample, resize
from torch import Tensor, nn


class _ScaleUpsample:
    """``Upsample.forward`` by its scale factor (a callable, so ``del`` restores the class's)."""

    def __init__(self, module: Upsample) -> None:
        self.module = module

    def __call__(self, x: Tensor) -> Tensor:
        module = self.module
        return resize(x, None, module.scale_factor, module.mode, module.align_corners)


@contextmanager
def traceable(model: nn.Module) -> Iterator[nn.Module]:
    """Within the block, ``model``'s mmseg ``Upsample`` layers with an integer scale factor
    interpolate by that factor; afterwards they are as they were.

    Args:
        model (nn.Module): The model to export.

    Yields:
        nn.Module: ``model``.
    """
    patched = [
        module
        for module in model.modules()
        if isinstance(module, Upsample)
        and not module.size
        and isinstance(module.scale_factor, float)
        and module.scale_factor.is_integer()
    ]
    for module in patched:
        module.forward = _ScaleUpsample(module)
    try:
        yield model
    finally:
        for module in patched:
            del module.forward
