"""onnxruntime against PyTorch on the CPU: median latency of interleaved runs, same inputs.

    python -m mmrmt.deploy.benchmark --arch s --size 800 1216 [--onnx FILE]
    python -m mmrmt.deploy.benchmark --config CONFIG [--checkpoint FILE] [--onnx FILE]
        [--batch-size N]

``--arch``: the backbone on random images of ``--size``. ``--config``: a detector or
segmentor on its first test batch: the exported graph against the same PyTorch modules, and
the whole prediction (``test_step``: data preprocessor, network, post-processing) of
:class:`~mmrmt.deploy.runtime.OnnxRuntimeModel` against the PyTorch model. Without ``--onnx``
the model is exported first (dynamic sizes). Both run in this process with PyTorch's thread
count; each round runs every candidate once, in turn, so load changes hit them alike.
"""

import argparse
import os
import sys
import tempfile
from typing import Dict, List, Optional, Sequence

import torch
from mmengine.runner import Runner

from ..benchmark.markdown_report import cpu_description, load_average
from ..benchmark.timing import interleaved_medians
from ..errors import InvalidValueError
from ..utils import load_config, load_model, load_rmt, run_with_user_errors
from .export import export_model
from .graphs import BACKBONE, SEGMENTOR, main_graph, model_kind
from .runtime import OnnxRuntimeModel
from .session import OnnxGraph


def markdown_rows(what: str, medians: Dict[str, float]) -> List[str]:
    """Row ``| what | PyTorch ms | onnxruntime ms | ratio |`` (ratio: onnxruntime / PyTorch)."""
    pytorch, onnx = medians["PyTorch"], medians["onnxruntime"]
    return [f"| {what} | {pytorch * 1e3:.0f} | {onnx * 1e3:.0f} | {onnx / pytorch:.2f} |"]


TABLE_HEADER = [
    "| what | PyTorch (ms) | onnxruntime (ms) | onnxruntime / PyTorch |",
    "|---|---|---|---|",
]


def _export_if_missing(model, kind: str, onnx_file: Optional[str], folder: str) -> str:
    if onnx_file:
        return onnx_file
    path = os.path.join(folder, "model.onnx")
    export_model(model, kind, path)
    return path


def backbone_rows(args: argparse.Namespace, folder: str) -> List[str]:
    """Time an RMT preset and its export on ``args.batch_size`` random images of ``args.size``."""
    model = load_rmt(args.arch)
    graph = OnnxGraph(_export_if_missing(model, BACKBONE, args.onnx, folder))
    images = torch.randn(args.batch_size, 3, *args.size)

    def pytorch() -> object:
        with torch.no_grad():
            return model(images)

    medians = interleaved_medians(
        {"PyTorch": pytorch, "onnxruntime": lambda: graph(images)}, args.warmup, args.repeats
    )
    size = "x".join(map(str, args.size))
    return markdown_rows(f"RMT-{args.arch.upper()} backbone, {size}", medians)


def config_rows(args: argparse.Namespace, folder: str) -> List[str]:
    """Time a detector or segmentor and its export on the config's first test batch."""
    model = load_model(args.config, args.checkpoint)
    kind = model_kind(model, args.config)
    onnx_file = _export_if_missing(model, kind, args.onnx, folder)
    cfg = load_config(args.config)
    cfg.test_dataloader.batch_size = args.batch_size
    batch = next(iter(Runner.build_dataloader(cfg.test_dataloader)))
    onnx_model = OnnxRuntimeModel(onnx_file, cfg.model)
    inputs = model.data_preprocessor(batch, False)["inputs"]
    graph = main_graph(model, kind, inputs, dynamic=False).module
    name = os.path.splitext(os.path.basename(args.config))[0]

    def pytorch_graph() -> object:
        with torch.no_grad():
            return graph(inputs)

    def pytorch_predict() -> object:
        with torch.no_grad():
            return model.test_step(batch)

    graph_medians = interleaved_medians(
        {"PyTorch": pytorch_graph, "onnxruntime": lambda: onnx_model.graph(inputs)},
        args.warmup,
        args.repeats,
    )
    predict_medians = interleaved_medians(
        {"PyTorch": pytorch_predict, "onnxruntime": lambda: onnx_model.test_step(batch)},
        args.warmup,
        args.repeats,
    )
    shape = "x".join(map(str, inputs.shape))
    graph_part = "network" if kind == SEGMENTOR else "backbone + neck + dense head"
    return markdown_rows(f"{name}: {graph_part} (exported graph), {shape}", graph_medians) + (
        markdown_rows(f"{name}: whole test_step, {shape}", predict_medians)
    )


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description="onnxruntime vs PyTorch CPU latency")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--arch", help="an RMT preset backbone (t, s, b, l)")
    which.add_argument("--config", help="a detector or segmentor config")
    parser.add_argument("--checkpoint", help="the config's checkpoint (default: random weights)")
    parser.add_argument("--onnx", help="its exported file (default: export first)")
    parser.add_argument("--size", nargs=2, type=int, default=[800, 1216], metavar=("H", "W"))
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=7)
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> None:
    """Time the candidates and print the machine, the command and the table."""
    if args.checkpoint and not args.config:
        raise InvalidValueError("--checkpoint goes with --config")
    with tempfile.TemporaryDirectory() as folder:
        rows = backbone_rows(args, folder) if args.arch else config_rows(args, folder)
    print(f"{cpu_description()}, onnxruntime {sys.modules['onnxruntime'].__version__}")
    print(f"load average {load_average()}; {args.repeats} interleaved rounds after {args.warmup}")
    print("command: python -m mmrmt.deploy.benchmark " + " ".join(sys.argv[1:]))
    print("\n".join(TABLE_HEADER + rows))


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point; returns the exit code."""
    return run_with_user_errors(run, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
