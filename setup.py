"""Install mmrmt, the RMT backbone plugin for mmdet 3.x and mmseg 1.x.

``mmrmt._ext``, the CPU depthwise-conv kernel of ``mmrmt/csrc``, is compiled when torch is
importable at build time (``pip install --no-build-isolation``) and ``MMRMT_WITH_OPS`` is not
``0``, as mmcv does with ``MMCV_WITH_OPS``; without it the package runs PyTorch's own conv (the same
function, slower to train on the CPU).

Like mmdet's and mmseg's ``setup.py``, the install also fills ``mmrmt/.mim`` with the configs,
the tools and ``model-index.yml``: symlinks into this checkout for an editable install, copies in
a wheel (through ``build_py``, so the checkout itself is never changed by a build). mmengine reads
``_base_ = 'mmrmt::det/...'`` and mim reads ``mim train mmrmt ...`` from there.
"""

import glob
import os
import os.path as osp
import shutil
import sys
from typing import Tuple

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

#: What ``mmrmt/.mim`` holds, as paths of this checkout.
MIM_FILES = ("configs", "tools", "model-index.yml")
HERE = osp.dirname(osp.abspath(__file__))


def read_version() -> str:
    """Read ``__version__`` from ``mmrmt/version.py`` without importing the package."""
    namespace: dict = {}
    with open(osp.join(HERE, "mmrmt", "version.py"), encoding="utf-8") as handle:
        exec(handle.read(), namespace)
    return namespace["__version__"]


def link_mim_files() -> None:
    """Editable installs: ``mmrmt/.mim/<name>`` links to the checkout's ``<name>``."""
    mim_dir = osp.join(HERE, "mmrmt", ".mim")
    os.makedirs(mim_dir, exist_ok=True)
    for name in MIM_FILES:
        target = osp.join(mim_dir, name)
        if osp.islink(target) or osp.isfile(target):
            os.remove(target)
        elif osp.isdir(target):
            shutil.rmtree(target)
        os.symlink(osp.relpath(osp.join(HERE, name), mim_dir), target)


class BuildPyWithMim(build_py):
    """``build_py`` that copies the configs, tools and model index into the built package."""

    def run(self) -> None:
        super().run()
        mim_dir = osp.join(self.build_lib, "mmrmt", ".mim")
        if osp.isdir(mim_dir):
            shutil.rmtree(mim_dir)  # a copy of the checkout's symlinks, or an older build
        os.makedirs(mim_dir)
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
        for name in MIM_FILES:
            source = osp.join(HERE, name)
            if osp.isdir(source):
                shutil.copytree(source, osp.join(mim_dir, name), ignore=ignore)
            else:
                shutil.copy2(source, osp.join(mim_dir, name))


def extension_build() -> Tuple[list, dict]:
    """``ext_modules`` and the ``cmdclass`` entries that build ``mmrmt._ext``; none where it is
    skipped."""
    if os.environ.get("MMRMT_WITH_OPS", "1") == "0":
        return [], {}
    try:
        from torch.utils.cpp_extension import BuildExtension, CppExtension
    except ImportError:
        print("mmrmt: torch is not importable at build time, building without mmrmt._ext")
        return [], {}
    extension = CppExtension(
        "mmrmt._ext",
        sorted(glob.glob("mmrmt/csrc/*.cpp")),
        extra_compile_args=["-O3", "-Wno-psabi"],
    )
    return [extension], {"build_ext": BuildExtension.with_options(use_ninja=False)}


if {"develop", "editable_wheel"} & set(sys.argv):
    link_mim_files()

EXT_MODULES, EXT_COMMANDS = extension_build()

setup(
    name="mmrmt",
    version=read_version(),
    description="RMT (Retentive Networks Meet Vision Transformers) backbones for OpenMMLab",
    long_description=open(osp.join(HERE, "README.md"), encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["mmrmt", "mmrmt.*"]),
    cmdclass={"build_py": BuildPyWithMim, **EXT_COMMANDS},
    ext_modules=EXT_MODULES,
    python_requires=">=3.8",
    # Ranges, not pins: GPU users keep their CUDA torch. requirements.txt pins the tested stack.
    install_requires=[
        "torch>=1.13",
        "mmengine>=0.10.0,<1.0.0",
        "mmcv>=2.0.0,<2.2.0",
        "mmdet>=3.0.0,<3.4.0",
        "mmsegmentation>=1.0.0,<1.3.0",
    ],
    # Optional features; requirements.txt pins versions that keep the stack's numpy.
    extras_require={
        "vis": ["scikit-image>=0.22"],
        "deploy": ["onnx>=1.23", "onnxscript>=0.7", "onnxruntime>=1.32", "ml_dtypes<0.6"],
        "mim": ["openmim>=0.3.9"],
    },
    license="Apache-2.0",
)
