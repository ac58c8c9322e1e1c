"""One-line reports of the mistakes a user can fix, for every mmrmt tool (the CLI layer).

The library raises ordinary exceptions (:mod:`mmrmt.errors`); a tool's option checks raise
:class:`UserError`. The tool's ``main`` runs its body through :func:`run_with_user_errors`, which
prints :data:`USER_ERRORS` in one line and returns exit code 1 instead of a traceback.
``--debug`` or ``MMRMT_DEBUG=1`` shows the traceback.

What counts as a user error is what mmrmt raised on purpose (:class:`~mmrmt.errors.MmrmtError`:
its ``ValueError``, ``ImportError`` and ``RuntimeError`` subclasses, ``CheckpointError``,
:class:`UserError`), whose messages name the bad input, and every ``FileNotFoundError``, which
names its file wherever it comes from. A plain ``ValueError`` or any other exception keeps its
traceback: raised below mmrmt, it may be a bug, and a one-line message would hide where.
"""

import argparse
import os
import re
import sys
from typing import Callable

from ..errors import MmrmtError

#: Environment variable that, like ``--debug``, shows the traceback of a user error.
DEBUG_ENV = "MMRMT_DEBUG"


class UserError(MmrmtError):
    """A tool's options that do not go together or do not fit the config: reported in one line.

    Only the CLI layer raises it (``tools/`` and the option modules of :mod:`mmrmt.utils`:
    ``arguments``, ``train_options``, ``test_options``); the library raises ordinary exceptions.
    """


#: What the tools report in one line instead of a traceback.
USER_ERRORS = (MmrmtError, FileNotFoundError)

_NO_SUCH_FILE = re.compile(r"No such file or directory: '([^']+)'")


def debug_requested(flag: bool = False) -> bool:
    """Whether to show tracebacks: ``--debug`` or ``MMRMT_DEBUG`` set to something but 0."""
    return flag or os.environ.get(DEBUG_ENV, "") not in ("", "0")


def describe_error(error: BaseException) -> str:
    """One line for a user error.

    Messages written for users (mmrmt's, e.g. the backbone's missing checkpoint) pass through;
    a bare ``[Errno 2]`` from deeper code is reduced to its path, with a pointer to ``--debug``
    since only the traceback tells which part of the run wanted the file.
    """
    message = " ".join(str(error).split())
    if isinstance(error, FileNotFoundError):
        path = error.filename
        if path is None:
            match = _NO_SUCH_FILE.search(message)
            path = match.group(1) if match else None
        if path is not None:
            return f"file not found: {path} (--debug shows which step needed it)"
    return message


def run_with_user_errors(
    tool: Callable[[argparse.Namespace], None], args: argparse.Namespace
) -> int:
    """Run ``tool(args)``; report :data:`USER_ERRORS` in one line unless debugging.

    Args:
        tool (Callable): The tool's body.
        args (argparse.Namespace): Parsed arguments; ``args.debug`` shows tracebacks.

    Returns:
        int: 0 on success, 1 after a user error.
    """
    try:
        tool(args)
    except USER_ERRORS as error:
        if debug_requested(getattr(args, "debug", False)):
            raise
        prog = os.path.basename(sys.argv[0]) or "mmrmt"
        print(f"{prog}: error: {describe_error(error)}", file=sys.stderr)
        return 1
    return 0
