"""Timing candidates: each built once, warmed up, then timed in interleaved rounds.

The one home of interleaved timing: :func:`interleaved_rounds` is the loop, which
``tools/benchmark.py`` (:func:`time_candidates`) and the onnxruntime benchmark
(:func:`interleaved_medians`) both run.
"""

import statistics
import time
from functools import partial
from typing import Callable, Dict, List, NamedTuple, Sequence, Tuple, TypeVar

import torch
from torch import nn

from .candidates import Candidate
from .steps import Step


class StepTime(NamedTuple):
    """Seconds one step took: wall-clock, and process CPU time over all threads."""

    wall: float
    cpu: float


def synchronize(device: str) -> None:
    """Wait for queued CUDA work so wall-clock time covers it."""
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


class CandidateSteps:
    """Builds each candidate once and runs its steps in train or eval mode.

    Args:
        candidates (Sequence[Candidate]): What to build; candidates sharing a model get it once
            from their ``build`` and switch it with their ``prepare``.
        device (str): ``'cpu'`` or ``'cuda[:N]'``, synchronised around each step.
        compile (bool): Compile each model in place with ``torch.compile``. Default: False.
    """

    def __init__(self, candidates: Sequence[Candidate], device: str, compile: bool = False) -> None:
        self.device = device
        self._built: Dict[str, Tuple[nn.Module, Step]] = {}
        for candidate in candidates:
            model, step = candidate.build()
            if compile:
                model.compile()  # in place: the step closures keep calling the module
            self._built[candidate.name] = (model, step)

    def model(self, candidate: Candidate) -> nn.Module:
        """The model ``candidate`` runs."""
        return self._built[candidate.name][0]

    def run(self, candidate: Candidate, train: bool) -> StepTime:
        """One step of ``candidate`` in ``train()`` or ``eval()`` mode.

        Args:
            candidate (Candidate): One of the candidates given to the constructor.
            train (bool): Forward and backward in training mode, else inference.

        Returns:
            StepTime: The step's wall and CPU time; preparing the model and clearing the
            gradients afterwards are not counted.
        """
        model, step = self._built[candidate.name]
        model.train(train)
        candidate.prepare(model)
        synchronize(self.device)
        start, start_cpu = time.perf_counter(), time.process_time()
        step(train)
        synchronize(self.device)
        elapsed = StepTime(time.perf_counter() - start, time.process_time() - start_cpu)
        if train:
            model.zero_grad(set_to_none=True)
        return elapsed


def time_candidates(
    candidates: Sequence[Candidate], steps: CandidateSteps, train: bool, warmup: int, repeats: int
) -> Dict[str, List[StepTime]]:
    """Warm up each candidate, then time rounds that run every candidate once, in turn.

    See :func:`interleaved_rounds`.

    Args:
        candidates (Sequence[Candidate]): What to time, in this order within each round.
        steps (CandidateSteps): The built candidates.
        train (bool): Training steps, else inference.
        warmup (int): Untimed steps of each candidate before the first round.
        repeats (int): Timed rounds.

    Returns:
        dict[str, list[StepTime]]: Each candidate's times, one per round, by candidate name.
    """
    runs = {candidate.name: partial(steps.run, candidate, train) for candidate in candidates}
    return interleaved_rounds(runs, warmup, repeats)


Result = TypeVar("Result")


def interleaved_rounds(
    runs: Dict[str, Callable[[], Result]], warmup: int, repeats: int
) -> Dict[str, List[Result]]:
    """Call each run ``warmup`` times, then ``repeats`` rounds that call every run once, in turn.

    Interleaving spreads a change in the machine's load over all runs instead of charging it to
    whichever one was running.

    Args:
        runs (dict[str, callable]): Name -> a call that measures itself and returns the result.
        warmup (int): Untimed calls of each run before the first round.
        repeats (int): Rounds.

    Returns:
        dict[str, list]: Each run's results, one per round, in the order of ``runs``.
    """
    for run in runs.values():
        for _ in range(warmup):
            run()
    results: Dict[str, List[Result]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            results[name].append(run())
    return results


def interleaved_medians(
    runs: Dict[str, Callable[[], object]], warmup: int = 2, repeats: int = 7
) -> Dict[str, float]:
    """Median wall-clock seconds of each run, timed in rounds that run every candidate once.

    Args:
        runs (dict): Name -> a call to time.
        warmup (int): Untimed calls of each first.
        repeats (int): Timed rounds.

    Returns:
        dict: Name -> median seconds.
    """
    timed = {name: partial(wall_seconds, run) for name, run in runs.items()}
    times = interleaved_rounds(timed, warmup, repeats)
    return {name: statistics.median(values) for name, values in times.items()}


def wall_seconds(run: Callable[[], object]) -> float:
    """Seconds one call of ``run`` takes."""
    start = time.perf_counter()
    run()
    return time.perf_counter() - start
