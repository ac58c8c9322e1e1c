"""ONNX export of RMT backbones, detectors and segmentors, and their evaluation in onnxruntime.

* :mod:`.graphs`: what an exported file holds for each kind of model;
* :mod:`.export`: the export and its parity check against PyTorch (``tools/export_onnx.py``);
* :mod:`.runtime`: :class:`OnnxRuntimeModel`, which a config's test loop evaluates like the
  PyTorch model (``tools/test_onnx.py``);
* :mod:`.benchmark`: onnxruntime against PyTorch latency on the CPU.

onnx, onnxscript and onnxruntime (the ``deploy`` extra) are imported when a function needs them,
never on import. Importing this package registers ``OnnxRuntimeModel`` in mmengine's root
``MODELS``, so a config can name it.
"""

from .export import (
    DEFAULT_OPSET,
    DEFAULT_SHAPE,
    MIN_OPSET,
    ExportReport,
    export_model,
)
from .graphs import KINDS, model_kind
from .runtime import OnnxRuntimeModel, onnx_test_config
from .session import OnnxGraph

__all__ = [
    "DEFAULT_OPSET",
    "DEFAULT_SHAPE",
    "KINDS",
    "MIN_OPSET",
    "ExportReport",
    "OnnxGraph",
    "OnnxRuntimeModel",
    "export_model",
    "model_kind",
    "onnx_test_config",
]
