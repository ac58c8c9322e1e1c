"""Benchmark RMT's fast MaSA against its reference form and Swin-T: time, throughput, memory.

    python tools/benchmark.py --arch s --size 800 1216                  # backbones, inference
    python tools/benchmark.py --arch s --size 512 512 --batch 2 --mode train
    python tools/benchmark.py --config configs/det/maskrcnn_rmt_s_coco.py --size 800 1216
    python tools/benchmark.py --arch s t --device cuda --mode infer train

Prints a Markdown report (``--output`` also appends it to a file). The candidates and the
measuring method are described in :mod:`mmrmt.benchmark`; ``docs/benchmarks.md`` has results.
"""

import argparse
import sys
from typing import Optional, Sequence

from mmrmt.benchmark import add_benchmark_args, parse_benchmark_args, run_benchmark
from mmrmt.utils import run_with_user_errors


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Command-line options; see ``--help``."""
    parser = argparse.ArgumentParser(
        description="Benchmark RMT (fast/reference MaSA) against Swin-T.",
        epilog="examples:\n" + __doc__.split("\n\n")[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_benchmark_args(parser)
    return parse_benchmark_args(parser, argv)


def benchmark(args: argparse.Namespace, argv: Sequence[str]) -> None:
    """Run the benchmark, print the report and append it to ``--output`` if given."""
    report = run_benchmark(args, argv)
    print(report)
    if args.output:
        with open(args.output, "a") as out:
            out.write(report + "\n\n")


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Parse ``argv`` (default ``sys.argv[1:]``) and benchmark; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    return run_with_user_errors(lambda args: benchmark(args, argv), parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
