"""Peak memory of one step: CUDA allocator statistics, or the resident set of a fresh process.

On CPU, allocator-level tracing (``tracemalloc``) does not see torch's buffers, and a process's
high-water mark cannot be split between candidates sharing it, so :func:`cpu_peak_memory` runs
:mod:`mmrmt.benchmark.memory_probe` once per candidate and reads the rise of its resident set
(:func:`step_rss_rise`).
"""

import json
import os
import resource
import subprocess
import sys
from typing import Optional, Sequence

import torch

from ..models.layers import RetentionPosition
from .candidates import Candidate
from .timing import CandidateSteps, synchronize

#: The entry point :func:`cpu_peak_memory` runs with ``python -m``.
PROBE_MODULE = "mmrmt.benchmark.memory_probe"
#: The directory holding the ``mmrmt`` package, so the probe imports this very copy of it.
_PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def cuda_peak_memory(candidate: Candidate, steps: CandidateSteps, train: bool) -> float:
    """Peak CUDA memory (MiB) one step allocates beyond what was allocated before it.

    Args:
        candidate (Candidate): A candidate built by ``steps`` on a CUDA device.
        steps (CandidateSteps): The built candidates.
        train (bool): Measure a training step, else an inference step.

    Returns:
        float: ``max_memory_allocated`` during the step minus ``memory_allocated`` before it.
    """
    device = steps.device
    # Tables cached during the timed steps are rebuilt inside the measured one, so the peak
    # counts them (the fast path keeps them; the reference rebuilds them every forward).
    for module in steps.model(candidate).modules():
        if isinstance(module, RetentionPosition):
            module.clear_cache()
    synchronize(device)
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    steps.run(candidate, train)
    return (torch.cuda.max_memory_allocated(device) - before) / 2**20


def step_rss_rise(candidate: Candidate, steps: CandidateSteps, train: bool) -> float:
    """How far this process's resident set rises (MiB) above its level before one step.

    Meant for a process that built only ``candidate`` and ran nothing yet, as the probe is:
    the high-water mark covers everything the step touched (activations, kernel workspaces,
    cached tables), as the operating system sees it.

    Args:
        candidate (Candidate): The candidate built by ``steps``.
        steps (CandidateSteps): The built candidate.
        train (bool): Measure a training step, else an inference step.

    Returns:
        float: Peak resident set during the step minus the resident set before it.
    """
    before = _resident_mib()
    reset = _reset_high_water_mark()
    steps.run(candidate, train)
    return _high_water_mib(reset) - before


def cpu_peak_memory(candidate: Candidate, mode: str, argv: Sequence[str]) -> Optional[float]:
    """Run :mod:`mmrmt.benchmark.memory_probe` for ``candidate`` in a fresh interpreter.

    Args:
        candidate (Candidate): The candidate to measure.
        mode (str): ``'infer'`` or ``'train'``.
        argv (Sequence[str]): The benchmark's command line, from which the probe rebuilds the
            same candidate.

    Returns:
        float | None: The probe's resident-set rise (MiB); None, after printing the probe's
        error output to stderr, when it reported nothing.
    """
    command = [
        sys.executable,
        "-m",
        PROBE_MODULE,
        *argv,
        "--candidate",
        candidate.name,
        "--step",
        mode,
    ]
    python_path = [_PACKAGE_ROOT, os.environ.get("PYTHONPATH", "")]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(path for path in python_path if path))
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    for line in reversed(result.stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line)["peak_mib"]
    print(f"memory probe of {candidate.name} failed:\n{result.stderr[-2000:]}", file=sys.stderr)
    return None


def _resident_mib() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _reset_high_water_mark() -> bool:
    """Reset ``VmHWM`` to the current resident set; False where the kernel does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
        return True
    except OSError:
        return False


def _high_water_mib(reset: bool) -> float:
    """``VmHWM`` after a reset, else ``ru_maxrss`` (the peak of the process's whole life)."""
    if reset:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
