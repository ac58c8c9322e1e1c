"""The benchmark's command-line options.

``tools/benchmark.py`` and the memory probe (:mod:`mmrmt.benchmark.memory_probe`, which re-reads
the benchmark's command line in a fresh process) read them with the same two functions, so the
probe builds exactly the candidate the benchmark timed.
"""

import argparse
from typing import Optional, Sequence

from ..utils import add_config_args
from .candidates import CPU_DEFAULT_IMPLS, CUDA_DEFAULT_IMPLS, DTYPES, IMPLS

#: Step kinds: ``eval()`` under ``no_grad``, or ``train()`` with forward and backward.
MODES = ("infer", "train")


def add_benchmark_args(parser: argparse.ArgumentParser) -> None:
    """Add the benchmark's options (candidates, input, measuring, report) to ``parser``.

    Args:
        parser (argparse.ArgumentParser): The parser of the tool or of the memory probe.
    """
    parser.add_argument("--arch", nargs="+", default=[], help="RMT presets: t s b l")
    parser.add_argument("--config", nargs="+", default=[], help="whole-model configs")
    parser.add_argument("--size", nargs=2, type=int, default=[800, 1216], metavar=("H", "W"))
    parser.add_argument(
        "--batch", type=int, default=1, help="images per step (training a segmentor needs >= 2)"
    )
    parser.add_argument("--mode", nargs="+", choices=MODES, default=["infer"])
    parser.add_argument(
        "--impls",
        nargs="+",
        choices=IMPLS,
        default=None,
        help=(
            f"candidates (default: {' '.join(CUDA_DEFAULT_IMPLS)} on CUDA; "
            f"{' '.join(CPU_DEFAULT_IMPLS)} on the CPU; fast-noext: fast without mmrmt._ext)"
        ),
    )
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="fp32")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps per candidate")
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--compile", action="store_true", help="wrap models in torch.compile")
    parser.add_argument(
        "--full-mask-limit",
        type=float,
        default=None,
        metavar="MIB",
        help="largest full-MaSA decay mask to cache (default: mmrmt's FULL_MASK_LIMIT); "
        "0 builds every full mask blockwise",
    )
    parser.add_argument("--no-memory", action="store_true", help="skip peak-memory measurement")
    parser.add_argument("--output", help="also append the Markdown report to this file")
    parser.add_argument("--seed", type=int, default=0)
    add_config_args(parser)


def parse_benchmark_args(
    parser: argparse.ArgumentParser, argv: Optional[Sequence[str]] = None
) -> argparse.Namespace:
    """Parse ``argv`` with ``parser``; with neither ``--arch`` nor ``--config``, time RMT-S, and
    without ``--impls`` :data:`CUDA_DEFAULT_IMPLS` or :data:`CPU_DEFAULT_IMPLS`.

    Args:
        parser (argparse.ArgumentParser): A parser given :func:`add_benchmark_args`.
        argv (Sequence[str] | None): Arguments; None reads ``sys.argv``.

    Returns:
        argparse.Namespace: The options.
    """
    args = parser.parse_args(argv)
    if not args.arch and not args.config:
        args.arch = ["s"]
    if args.impls is None:
        args.impls = list(
            CUDA_DEFAULT_IMPLS if args.device.startswith("cuda") else CPU_DEFAULT_IMPLS
        )
    return args
