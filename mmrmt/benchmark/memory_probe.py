"""Entry point: one candidate's CPU peak memory, measured in a fresh process.

    python -m mmrmt.benchmark.memory_probe BENCHMARK_OPTIONS... --candidate NAME --step MODE

e.g. ``python -m mmrmt.benchmark.memory_probe --arch t --size 512 512 --candidate 'RMT-T fast'
--step infer``. It reads the options of ``tools/benchmark.py`` (the benchmark passes its own
command line), builds only candidate ``NAME`` as the benchmark does, runs one ``MODE``
(``infer`` or ``train``) step and prints ``{"peak_mib": RISE}`` as the last line of stdout:
how far the resident set rose above its level before the step
(:func:`mmrmt.benchmark.memory.step_rss_rise`). A fresh process per candidate is what makes
the high-water mark that candidate's alone. :func:`mmrmt.benchmark.memory.cpu_peak_memory`
runs it; exit code 1 and one line on stderr for an unknown candidate or a bad option.
"""

import argparse
import json
import sys
from typing import Optional, Sequence

from ..errors import InvalidValueError
from ..utils import run_with_user_errors
from .candidates import all_candidates
from .memory import step_rss_rise
from .options import MODES, add_benchmark_args, parse_benchmark_args
from .run import prepare_process
from .timing import CandidateSteps


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """The benchmark's options plus ``--candidate NAME`` and ``--step MODE``."""
    parser = argparse.ArgumentParser(
        prog="python -m mmrmt.benchmark.memory_probe",
        description="Peak resident-set rise of one benchmark candidate's step, as JSON.",
    )
    add_benchmark_args(parser)
    parser.add_argument("--candidate", required=True, help="candidate name, e.g. 'RMT-S fast'")
    parser.add_argument("--step", choices=MODES, required=True, help="the step to measure")
    return parse_benchmark_args(parser, argv)


def probe(args: argparse.Namespace) -> None:
    """Build ``args.candidate``, run one ``args.step`` step, print its RSS rise as JSON.

    Args:
        args (argparse.Namespace): :func:`parse_args` output.

    Raises:
        InvalidValueError: the options give no candidate of that name.
    """
    prepare_process(args)
    candidates = {candidate.name: candidate for candidate in all_candidates(args)}
    if args.candidate not in candidates:
        raise InvalidValueError(
            f"no benchmark candidate named {args.candidate!r}; "
            f"these options give {list(candidates)}"
        )
    candidate = candidates[args.candidate]
    steps = CandidateSteps([candidate], args.device, args.compile)
    print(json.dumps({"peak_mib": step_rss_rise(candidate, steps, args.step == "train")}))


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run :func:`probe`; returns the exit code."""
    return run_with_user_errors(probe, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
