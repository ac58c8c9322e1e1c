"""The exceptions mmrmt raises on purpose, with messages written for whoever passed the input.

The library raises ordinary exception types, so a caller catches what it expects: a value it
cannot use is a ``ValueError`` (:class:`InvalidValueError`), a missing file a
``FileNotFoundError``, an unusable checkpoint a
:class:`~mmrmt.checkpoint.errors.CheckpointError`, a missing optional package an ``ImportError``
(:class:`MissingDependencyError`). The subclasses here only add a mark, :class:`MmrmtError`: the
message names the bad value and what was expected, so the tools
(:func:`mmrmt.utils.run_with_user_errors`) may print it in one line, while a plain
``ValueError`` from deeper code, which may be a bug, keeps its traceback.

This module imports nothing, so every layer of the package may raise these.
"""


class MmrmtError(Exception):
    """Mark of an error mmrmt raised on purpose, its message written for the user."""


class InvalidValueError(MmrmtError, ValueError):
    """A value mmrmt cannot use (an option, a config field, an arch, a stage...)."""


class MissingDependencyError(MmrmtError, ImportError):
    """An optional package a feature needs is not installed; the message says how to install it."""


class StepFailedError(MmrmtError, RuntimeError):
    """A program mmrmt ran for the caller (a tool of the demo) failed; it printed its own report."""
