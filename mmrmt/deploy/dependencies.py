"""The deploy extra (onnx, onnxscript, onnxruntime), imported only when a deploy function runs.

The core install does not need them: ``import mmrmt.deploy`` works without them, and the first
call that does turns a missing package into one line naming the extra.
"""

import importlib
from types import ModuleType

from ..errors import MissingDependencyError

#: How to install what export and evaluation need.
DEPLOY_EXTRA = "pip install -e .[deploy]"


def require(package: str) -> ModuleType:
    """Import ``package`` of the deploy extra.

    Args:
        package (str): ``'onnx'``, ``'onnxscript'`` or ``'onnxruntime'``.

    Returns:
        ModuleType: The imported package.

    Raises:
        MissingDependencyError: the package is not installed (an ``ImportError``).
    """
    try:
        return importlib.import_module(package)
    except ImportError as error:
        raise MissingDependencyError(
            f"{package} is not installed; ONNX export and evaluation need mmrmt's deploy extra: "
            f"{DEPLOY_EXTRA} (onnx, onnxscript, onnxruntime)"
        ) from error
