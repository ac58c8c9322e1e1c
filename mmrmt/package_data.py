"""The configs and tools the installed package carries, in ``mmrmt/.mim`` as OpenMMLab packages do.

``setup.py`` fills ``.mim`` at install time (mmdet's ``add_mim_extension``): symlinks to the
checkout's ``configs/``, ``tools/`` and ``model-index.yml`` in an editable install, copies in a
wheel. mmengine reads ``_base_ = 'mmrmt::det/...'`` from there, and so does the package: no
module looks for a checkout's ``tools/`` or ``configs/`` beside its own file.
"""

import os.path as osp

from mmengine.config.utils import MODULE2PACKAGE

#: ``mmrmt/.mim`` of the imported package.
MIM_DIR = osp.join(osp.dirname(osp.abspath(__file__)), ".mim")

#: The prefix of a config path inside the package (``mmrmt::det/maskrcnn_rmt_s_coco.py``).
PACKAGE_PREFIX = "mmrmt::"


def mim_path(*parts: str) -> str:
    """The path of a file in the package data.

    Args:
        *parts (str): Path parts under ``.mim``, e.g. ``('tools', 'train.py')``.

    Returns:
        str: The existing path.

    Raises:
        FileNotFoundError: mmrmt was installed without its package data, or there is no such file.
    """
    path = osp.join(MIM_DIR, *parts)
    if not osp.exists(path):
        raise FileNotFoundError(
            f"{path} not found: mmrmt's package data (.mim) lacks it; reinstall mmrmt "
            "(pip install ., or make install in a checkout)"
        )
    return path


def resolve_config(config: str) -> str:
    """A config file given as a path, ``mmrmt::det/...``, or ``configs/...`` of the package.

    An existing path is returned as it is. ``mmrmt::NAME`` is the package's ``configs/NAME``, and
    so is a ``configs/NAME`` path that does not exist from here (a run outside the checkout) when
    the package carries it. The caller reports a path that does not exist.

    Args:
        config (str): The config.

    Returns:
        str: The path to read.
    """
    if config.startswith(PACKAGE_PREFIX):
        return osp.join(MIM_DIR, "configs", config[len(PACKAGE_PREFIX) :])
    packaged = osp.join(MIM_DIR, config)
    if config.startswith("configs/") and not osp.isfile(config) and osp.isfile(packaged):
        return packaged
    return config


def register_config_package() -> None:
    """Let ``pkg::`` config bases name mmrmt: add it to mmengine's ``MODULE2PACKAGE``.

    mmengine 0.10 resolves ``_base_ = 'NAME::...'`` only for the OpenMMLab projects in that
    mapping (its assertion: "mmengine does not support to load NAME config"); the entry makes it
    look in this package's ``.mim/configs``. An entry someone else set is left as it is.
    """
    MODULE2PACKAGE.setdefault("mmrmt", "mmrmt")
