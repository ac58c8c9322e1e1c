"""mmrmt: RMT backbones (Fan et al., CVPR 2024) for mmdet 3.x and mmseg 1.x.

Importing the package (or ``custom_imports=dict(imports=['mmrmt'])`` in a config) registers,
each under a name of its own:

* ``RMT`` in mmengine's root ``MODELS``, which mmdet's, mmseg's, mmpretrain's and mmpose's
  registries consult for names they do not hold themselves;
* ``AtomicCheckpointHook`` and ``AtomicLoggerHook`` (``HOOKS``), ``CPUDistributedDataParallel``
  (``MODEL_WRAPPERS``) and the ``'atomic_local'`` file backend, which configs select by name.

Beyond those names it changes, process-wide:

* ``torch.load``'s ``weights_only`` allow-list, which gains the data types of mmengine's
  checkpoints (numpy values, ``HistoryBuffer``; :mod:`mmrmt.checkpoint.safe_globals`): known
  data types only, a file that pickles code is still refused;
* mmengine's ``MODULE2PACKAGE`` (the packages whose configs ``pkg::`` bases may name), which
  gains ``'mmrmt'``, so ``_base_ = 'mmrmt::det/maskrcnn_rmt_s_coco.py'`` resolves to the
  installed package's ``.mim/configs`` (:mod:`mmrmt.package_data`). mmengine reads a config's
  ``_base_`` before its ``custom_imports``, so this works in programs that import mmrmt first:
  every mmrmt tool does.

It imports what registration needs (torch, mmengine's registries, hooks and model wrappers), not
mmengine's Runner, mmcv.cnn, mmdet, mmseg or the tools' helpers (:mod:`mmrmt.utils`);
``tests/test_imports.py`` checks it.
"""

from .checkpoint import register_safe_globals
from .engine import register_atomic_local_backend
from .models import RMT
from .package_data import register_config_package
from .version import __version__

register_safe_globals()
register_atomic_local_backend()
register_config_package()

__all__ = ["RMT", "__version__"]
