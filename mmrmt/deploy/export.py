"""Export a config's model, or an RMT backbone, to ONNX and check onnxruntime against PyTorch.

The export traces the model with ``torch.export`` (``torch.onnx.export(..., dynamo=True)``),
with a dynamic batch, height and width by default, so one file serves every input size. While
it traces, MaSA takes its exportable form (real rotary phases, position tables computed from
the traced size; see :func:`mmrmt.models.layers.position.is_exporting`). What each kind of
model's file holds is described in :mod:`mmrmt.deploy.graphs`.
"""

import json
import logging
import os
from dataclasses import dataclass, field
from typing import Dict, List, Sequence, Tuple

import torch
from torch import Tensor, nn

from ..errors import InvalidValueError
from ..models import set_attention_impl
from ..version import __version__
from .dependencies import require
from .graphs import KINDS, ExportGraph, describe_kind, export_graphs
from .rewrites import traceable
from .session import KIND_KEY, PARTS_KEY, OnnxGraph

#: torch's exporter writes opset-18 operators (``Split`` with ``num_outputs``, ...) and converts
#: them to the requested opset; converting below 18 yields files onnxruntime rejects.
MIN_OPSET = 18
#: Opset 20 writes attention as MatMul/Softmax, which runtimes of the last years all run. 23 and
#: newer write ONNX's ``Attention`` operator, which onnxruntime's CPU kernels run no faster.
DEFAULT_OPSET = 20
#: Largest parity error (max |onnxruntime - PyTorch| / max |PyTorch|) reported as a match.
PARITY_TOLERANCE = 1e-4
#: Example input size when none is given; a dynamic graph then serves any other.
DEFAULT_SHAPE = (224, 320)
#: Example batch: dynamic, so not 1 (which the tracer would specialise).
EXAMPLE_BATCH = 2


@dataclass
class Parity:
    """onnxruntime against PyTorch on one input: its shapes and the max relative error."""

    inputs: str
    error: float


@dataclass
class ExportedFile:
    """One written ``.onnx`` file.

    Attributes:
        path (str): Where it is.
        part (str): ``''`` for the main graph, else the module it replaces.
        inputs (list[str]): ``name (dims)`` of each input.
        outputs (int): Number of outputs.
        parity (list[Parity]): The checks run on it.
    """

    path: str
    part: str
    inputs: List[str]
    outputs: int
    parity: List[Parity] = field(default_factory=list)

    @property
    def size(self) -> str:
        """File size (weights stored beside it as external data included), in kB or MB."""
        data = self.path + ".data"
        size = os.path.getsize(self.path) + (os.path.getsize(data) if os.path.exists(data) else 0)
        return f"{size / 1e6:.1f} MB" if size >= 1e6 else f"{size / 1e3:.0f} kB"

    @property
    def max_error(self) -> float:
        """Largest error of its parity checks."""
        return max(check.error for check in self.parity)


@dataclass
class ExportReport:
    """What :func:`export_model` wrote: the files, the opset and the kind of model."""

    kind: str
    opset: int
    files: List[ExportedFile]

    def lines(self) -> List[str]:
        """The report as printed by ``tools/export_onnx.py``."""
        lines = []
        for exported in self.files:
            what = exported.part or describe_kind(self.kind)
            lines.append(
                f"wrote {exported.path} ({exported.size}, opset {self.opset}, {what}): "
                f"{', '.join(exported.inputs)} -> {exported.outputs} outputs"
            )
            checks = ", ".join(f"{check.inputs}: {check.error:.1e}" for check in exported.parity)
            verdict = "ok" if exported.max_error <= PARITY_TOLERANCE else "ABOVE TOLERANCE"
            lines.append(
                f"  parity, onnxruntime vs PyTorch, max relative error: {checks} "
                f"({verdict}, tolerance {PARITY_TOLERANCE:g})"
            )
        return lines


def check_opset(opset: int) -> None:
    """Refuse opsets the export cannot write (older than :data:`MIN_OPSET`, or unknown to onnx).

    Raises:
        InvalidValueError: naming the opset and the supported range.
    """
    onnx = require("onnx")
    newest = onnx.defs.onnx_opset_version()
    if opset < MIN_OPSET:
        raise InvalidValueError(
            f"--opset {opset} is too old for the operators this export writes (torch's exporter "
            f"emits opset-{MIN_OPSET} operators such as Split with num_outputs); use an opset "
            f"from {MIN_OPSET} to {newest} (default {DEFAULT_OPSET})"
        )
    if opset > newest:
        raise InvalidValueError(
            f"--opset {opset} is newer than onnx {onnx.__version__} knows; use {MIN_OPSET} to "
            f"{newest} (default {DEFAULT_OPSET})"
        )


def check_output_path(path: str) -> None:
    """Make sure ``path`` can be written (creating its folder), before a long export.

    Raises:
        InvalidValueError: a folder, or a place that cannot be written, with the reason.
    """
    if os.path.isdir(path):
        raise InvalidValueError(
            f"--out {path} is a folder; pass a file name such as {path}/model.onnx"
        )
    existed = os.path.exists(path)
    try:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, "ab"):
            pass
    except OSError as error:
        raise InvalidValueError(f"cannot write --out {path}: {error.strerror or error}") from error
    if not existed:
        os.remove(path)


def part_path(out: str, part: str) -> str:
    """File of a further graph: ``model.onnx`` + ``roi_head.bbox_head`` ->
    ``model.roi_head.bbox_head.onnx``."""
    return f"{os.path.splitext(out)[0]}.{part}.onnx"


def max_relative_error(actual: Sequence[Tensor], expected: Sequence[Tensor]) -> float:
    """Max over outputs of ``max |actual - expected| / max |expected|``."""
    errors = []
    for got, want in zip(actual, expected):
        if got.shape != want.shape:
            return float("inf")
        if want.numel():
            scale = want.abs().max().clamp_min(1e-12)
            errors.append(float((got.float() - want.float()).abs().max() / scale))
    return max(errors, default=0.0)


def _shapes(inputs: Sequence[Tensor]) -> str:
    return ", ".join("x".join(map(str, tensor.shape)) for tensor in inputs)


def check_parity(graph: ExportGraph, path: str, opset: int) -> List[Parity]:
    """Run ``path`` in onnxruntime and ``graph.module`` in PyTorch on the example inputs and,
    for a dynamic graph, on inputs of another size.

    Raises:
        InvalidValueError: onnxruntime cannot load the file (an opset newer than it runs).
    """
    try:
        session = OnnxGraph(path)
    except Exception as error:  # onnxruntime's load errors share no narrower base class
        version = require("onnxruntime").__version__
        reason = str(error).splitlines()[0]
        raise InvalidValueError(
            f"onnxruntime {version} cannot load {path}, written at opset {opset} ({reason}); "
            f"use an opset it runs, e.g. the default {DEFAULT_OPSET}"
        ) from error
    checks = []
    for inputs in (graph.inputs, graph.second_inputs):
        if inputs is not None:
            with torch.no_grad():
                expected = graph.module(*inputs)
            checks.append(Parity(_shapes(inputs), max_relative_error(session(*inputs), expected)))
    return checks


def _input_dims(graph: ExportGraph) -> List[str]:
    described = []
    for index, (name, tensor) in enumerate(zip(graph.input_names, graph.inputs)):
        dims: List[str] = [str(size) for size in tensor.shape]
        if graph.dynamic_shapes is not None:
            for axis, dim in graph.dynamic_shapes[index].items():
                dims[axis] = dim.__name__
        described.append(f"{name} ({', '.join(dims)})")
    return described


def write_graph(graph: ExportGraph, path: str, opset: int, metadata: Dict[str, str]) -> None:
    """Export one graph to ``path`` (weights inside the file below 2 GB)."""
    # The exporter's registry notes, once per process, every torchvision operator it skips.
    registry_logger = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = registry_logger.level
    registry_logger.setLevel(logging.ERROR)
    try:
        program = torch.onnx.export(
            graph.module,
            graph.inputs,
            input_names=graph.input_names,
            output_names=graph.output_names,
            opset_version=opset,
            dynamo=True,
            dynamic_shapes=graph.dynamic_shapes,
            verbose=False,
        )
    finally:
        registry_logger.setLevel(level)
    program.model.metadata_props.update(metadata)
    program.save(path)


def export_model(
    model: nn.Module,
    kind: str,
    out: str,
    shape: Tuple[int, int] = DEFAULT_SHAPE,
    opset: int = DEFAULT_OPSET,
    dynamic: bool = True,
) -> ExportReport:
    """Export ``model`` to ``out`` (and a two-stage detector's RoI heads beside it).

    RMT runs its ``'fast'`` attention for the export (the same function as the others). Each
    file is then run in onnxruntime and compared with PyTorch on the example input and, for a
    dynamic export, on an input of another size.

    Args:
        model (nn.Module): An RMT (or other backbone), a segmentor or a detector.
        kind (str): One of :data:`~mmrmt.deploy.graphs.KINDS`.
        out (str): The main ``.onnx`` file.
        shape (tuple[int, int]): Example (H, W) to trace on.
        opset (int): ONNX opset, :data:`MIN_OPSET` or newer.
        dynamic (bool): Dynamic batch, height and width (and RoI count); else fixed to
            ``(1, 3, *shape)``.

    Returns:
        ExportReport: The files written and their parity checks.

    Raises:
        InvalidValueError: an opset out of range or an unwritable ``out``.
        MissingDependencyError: a missing deploy extra (an ``ImportError``).
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    check_opset(opset)
    check_output_path(out)
    require("onnxscript")
    model.eval()
    set_attention_impl(model, "fast")
    generator = torch.Generator().manual_seed(0)
    images = torch.randn((EXAMPLE_BATCH if dynamic else 1, 3, *shape), generator=generator)
    with traceable(model):
        graphs = export_graphs(model, kind, images, dynamic)
        parts = {graph.part: os.path.basename(part_path(out, graph.part)) for graph in graphs[1:]}
        files = []
        for graph in graphs:
            path = part_path(out, graph.part) if graph.part else out
            metadata = {KIND_KEY: kind, "mmrmt.version": __version__}
            if graph.part:
                metadata["mmrmt.part"] = graph.part
            else:
                metadata[PARTS_KEY] = json.dumps(parts)
            write_graph(graph, path, opset, metadata)
            files.append(
                ExportedFile(path, graph.part, _input_dims(graph), len(graph.output_names))
            )
    # Compared with the model as it runs outside the export.
    for graph, exported in zip(graphs, files):
        exported.parity = check_parity(graph, exported.path, opset)
    return ExportReport(kind, opset, files)
