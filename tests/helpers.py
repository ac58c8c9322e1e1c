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
