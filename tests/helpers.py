"""What several test files share: the repository root and loading a ``tools/*.py`` script."""

import importlib.util
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[1]

#: A four-stage RMT small enough for fast tests: decomposed, then full MaSA, like RMT-T.
TINY_ARCH = dict(
    embed_dims=[16, 32, 64, 128],
    depths=[1, 1, 1, 1],
    num_heads=[2, 2, 4, 4],
    heads_ranges=[4, 4, 6, 6],
    mlp_ratios=[2, 2, 2, 2],
    decomposed=[True, True, False, False],
)


def load_tool(name: str) -> ModuleType:
    """Import ``tools/<name>.py`` (not a package) as a module, to call its ``main``.

    Args:
        name (str): Script name without ``.py``, e.g. ``'train'``.

    Returns:
        ModuleType: The freshly executed script module.
    """
    spec = importlib.util.spec_from_file_location(f"tools_{name}", REPO / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build_initialised(cfg):
    """The config's model with ``init_weights()`` applied, as a Runner does before training.

    ``build_model`` leaves weights as the modules' ``__init__`` made them, and some are not
    initialised there: DINO's ``level_embed`` is ``nn.Parameter(torch.Tensor(...))``, whatever
    the allocator hands out, NaN at times, which made DINO's outputs NaN now and then.

    Args:
        cfg (mmengine.config.Config): The config.

    Returns:
        torch.nn.Module: The model under seed 0 (:func:`mmrmt.utils.load_model`), in training
        mode.
    """
    from mmrmt.utils import load_model

    return load_model(cfg, initialise=lambda model: model.init_weights(), mode="train")
