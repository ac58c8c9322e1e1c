"""mmrmt: RMT backbones (Fan et al., CVPR 2024) for mmdet 3.x and mmseg 1.x.

Importing the package registers ``RMT`` with mmdet and mmseg, lets ``torch.load``'s
``weights_only`` mode read mmengine's own checkpoints (:mod:`mmrmt.checkpoint.safe_globals`) and
makes mmengine's local checkpoint writes atomic (:mod:`mmrmt.engine.atomic_io`).
"""

from .checkpoint import register_safe_globals
from .engine import register_atomic_local_backend
from .models import RMT
from .registry import register_models
from .version import __version__

register_safe_globals()
register_atomic_local_backend()
register_models()

__all__ = ["RMT", "__version__"]
