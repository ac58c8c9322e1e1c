"""The benchmark's report: the machine, one Markdown table per mode, and how it was measured."""

import argparse
import os
import platform
import statistics
from typing import List, Mapping, Optional, Sequence

import torch

from .candidates import SWIN_BACKBONE_GROUP, Candidate
from .timing import StepTime

TABLE_HEADER = (
    "| model | mode | median (ms) | min (ms) | CPU time (ms) | images/s | peak mem (MiB) "
    "| speed-up vs reference | time vs Swin-T |\n|---|---|---|---|---|---|---|---|---|"
)


def cpu_description() -> str:
    """The CPU, its logical cores, torch's version and its thread count, in one line.

    Returns:
        str: e.g. ``'CPU: <model name>, 2 logical cores, torch 2.13.0+cpu, 2 threads'``.
    """
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            cpu = next(line.split(":", 1)[1].strip() for line in cpuinfo if "model name" in line)
    except (OSError, StopIteration):
        pass
    return (
        f"CPU: {cpu}, {os.cpu_count()} logical cores, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads"
    )


def machine_description(args: argparse.Namespace) -> str:
    """CPU/GPU, cores, threads, library versions and the run's settings, for the header.

    Args:
        args (argparse.Namespace): The benchmark's options.

    Returns:
        str: One line, parts separated by ``'; '``: :func:`cpu_description`, then the rest.
    """
    parts = [cpu_description()]
    if args.device.startswith("cuda"):
        parts.append(f"GPU: {torch.cuda.get_device_name(args.device)}, CUDA {torch.version.cuda}")
    parts.append(f"dtype {args.dtype}, batch {args.batch}, input {args.size[0]}x{args.size[1]}")
    if args.compile:
        parts.append("torch.compile")
    if args.full_mask_limit is not None:
        parts.append(f"full-mask limit {args.full_mask_limit:g} MiB")
    return "; ".join(parts)


def load_average() -> str:
    """The 1-minute load average (other work on the machine slows every candidate)."""
    return f"{os.getloadavg()[0]:.2f}" if hasattr(os, "getloadavg") else "n/a"


def markdown_table(
    candidates: Sequence[Candidate],
    mode: str,
    times: Mapping[str, List[StepTime]],
    memory: Mapping[str, Optional[float]],
    batch: int,
) -> str:
    """One row per candidate: wall and CPU time, throughput, memory, and the ratios.

    ``speed-up vs reference`` is the median of the same group's reference candidate over this
    candidate's (empty for Swin-T and in groups without a reference); ``time vs Swin-T`` is this
    candidate's median over Swin-T's: the same config's Swin-T for a config, the Swin-T backbone
    for a backbone (empty without one).

    Args:
        candidates (Sequence[Candidate]): The rows, in order.
        mode (str): ``'infer'`` or ``'train'``, for the mode column.
        times (Mapping[str, list[StepTime]]): Each candidate's timed steps, by name.
        memory (Mapping[str, float | None]): Peak memory (MiB) by name; a missing or None
            entry leaves the cell empty.
        batch (int): Images per step, for images/s.

    Returns:
        str: The Markdown table, header included.
    """
    medians = {name: statistics.median(t.wall for t in steps) for name, steps in times.items()}
    rows = [TABLE_HEADER]
    for candidate in candidates:
        steps = times[candidate.name]
        median = medians[candidate.name]
        reference = _baseline(candidates, "reference", [candidate.group])
        swin_groups = [candidate.group] + ([SWIN_BACKBONE_GROUP] if candidate.backbone else [])
        swin = _baseline(candidates, "swin", swin_groups)
        speed_up = ""
        if reference is not None and candidate.impl != "swin":
            speed_up = f"{medians[reference.name] / median:.2f}x"
        vs_swin = f"{median / medians[swin.name]:.2f}x" if swin is not None else ""
        mem = memory.get(candidate.name)
        cells = [
            candidate.name,
            mode,
            f"{median * 1e3:.0f}",
            f"{min(t.wall for t in steps) * 1e3:.0f}",
            f"{statistics.median(t.cpu for t in steps) * 1e3:.0f}",
            f"{batch / median:.2f}",
            "" if mem is None else f"{mem:.0f}",
            speed_up,
            vs_swin,
        ]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def _baseline(candidates: Sequence[Candidate], impl: str, groups: List[str]) -> Optional[Candidate]:
    """The first candidate of implementation ``impl`` in one of ``groups``, if any."""
    return next((c for c in candidates if c.impl == impl and c.group in groups), None)


def method_note(
    args: argparse.Namespace, argv: Sequence[str], load_before: str, load_after: str
) -> str:
    """The report's last paragraph: rounds, warm-up, memory method, load and command line.

    Args:
        args (argparse.Namespace): The benchmark's options.
        argv (Sequence[str]): The command line, repeated so the run can be reproduced.
        load_before (str): :func:`load_average` before timing.
        load_after (str): :func:`load_average` after timing.

    Returns:
        str: One paragraph.
    """
    memory_method = (
        "peak CUDA memory allocated by one step, position tables included"
        if args.device.startswith("cuda")
        else "peak resident-set rise during one step in a fresh process"
    )
    return (
        f"Median of {args.repeats} interleaved rounds after {args.warmup} warm-up step(s) each; "
        f"memory: {memory_method}; "
        f"1-min load average {load_before} before, {load_after} after. "
        f"Command: `python tools/benchmark.py {' '.join(argv)}`"
    )
