"""The whole benchmark: build the candidates, time each mode, measure memory, write the report."""

import argparse
from typing import Dict, Optional, Sequence

import torch

from ..errors import InvalidValueError
from .candidates import all_candidates
from .markdown_report import load_average, machine_description, markdown_table, method_note
from .memory import cpu_peak_memory, cuda_peak_memory
from .timing import CandidateSteps, time_candidates


def prepare_process(args: argparse.Namespace) -> None:
    """Apply ``--threads`` and check ``--device``, in the benchmark and in each memory probe.

    Raises:
        InvalidValueError: ``--device cuda`` on a machine where torch sees no CUDA device.
    """
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise InvalidValueError("--device cuda given but torch sees no CUDA device")


def run_benchmark(args: argparse.Namespace, argv: Sequence[str]) -> str:
    """Time every candidate in every mode and measure its peak memory.

    Args:
        args (argparse.Namespace): Options read by :func:`mmrmt.benchmark.parse_benchmark_args`.
        argv (Sequence[str]): The command line behind ``args``: the CPU memory probes rebuild
            the candidates from it, and the report repeats it.

    Returns:
        str: The Markdown report: the machine, one table per mode, and the method.

    Raises:
        InvalidValueError: a bad device, dtype or config (see :func:`prepare_process` and
            :func:`mmrmt.benchmark.candidates.config_candidates`).
    """
    prepare_process(args)
    candidates = all_candidates(args)
    steps = CandidateSteps(candidates, args.device, args.compile)
    on_cuda = args.device.startswith("cuda")
    load_before = load_average()
    sections = [f"Machine: {machine_description(args)}"]
    for mode in args.mode:
        train = mode == "train"
        times = time_candidates(candidates, steps, train, args.warmup, args.repeats)
        memory: Dict[str, Optional[float]] = {}
        if not args.no_memory:
            for candidate in candidates:
                if on_cuda:
                    memory[candidate.name] = cuda_peak_memory(candidate, steps, train)
                else:
                    memory[candidate.name] = cpu_peak_memory(candidate, mode, argv)
        sections.append(markdown_table(candidates, mode, times, memory, args.batch))
    sections.append(method_note(args, argv, load_before, load_average()))
    return "\n\n".join(sections)
