"""Install mmrmt, the RMT backbone plugin for mmdet 3.x and mmseg 1.x."""

from setuptools import find_packages, setup


def read_version() -> str:
    """Read ``__version__`` from ``mmrmt/version.py`` without importing the package."""
    namespace: dict = {}
    with open("mmrmt/version.py", encoding="utf-8") as handle:
        exec(handle.read(), namespace)
    return namespace["__version__"]


setup(
    name="mmrmt",
    version=read_version(),
    description="RMT (Retentive Networks Meet Vision Transformers) backbones for OpenMMLab",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["mmrmt", "mmrmt.*"]),
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
    },
    license="Apache-2.0",
)
