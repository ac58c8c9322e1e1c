"""One-line reports of the mistakes a user can fix, for every mmrmt tool.

A tool's body raises :class:`UserError` (or a missing-file / checkpoint error); the tool's
``main`` runs the body through :func:`run_with_user_errors`, which prints one line and returns
exit code 1 instead of a traceback. ``--debug`` or ``MMRMT_DEBUG=1`` shows the traceback.
"""

import argparse
import os
import re
import sys
from typing import Callable

from ..checkpoint.errors import CheckpointError

#: Environment variable that, like ``--debug``, shows the traceback of a user error.
DEBUG_ENV = "MMRMT_DEBUG"


class UserError(Exception):
    """A mistake the user can fix (a wrong path, a wrong option): reported in one line."""


#: What the tools report in one line instead of a traceback.
USER_ERRORS = (UserError, FileNotFoundError, CheckpointError)

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
