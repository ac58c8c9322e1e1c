"""mmrmt: RMT backbones (Fan et al., CVPR 2024) for mmdet 3.x and mmseg 1.x.

Importing the package registers ``RMT`` with mmdet and mmseg and lets ``torch.load``'s
``weights_only`` mode read mmengine's own checkpoints (see :mod:`mmrmt.checkpoint.safe_globals`).
"""

from .checkpoint import register_safe_globals
from .models import RMT
from .registry import register_models
from .version import __version__

register_safe_globals()
register_models()

__all__ = ["RMT", "__version__"]
