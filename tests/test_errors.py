"""The library raises ordinary exceptions; only the CLI layer raises UserError; the tools report
mmrmt's errors in one line and keep the traceback of everything else."""

import argparse
import ast
from pathlib import Path
from typing import List

import pytest

from mmrmt.checkpoint import CheckpointError
from mmrmt.errors import InvalidValueError, MissingDependencyError, MmrmtError, StepFailedError
from mmrmt.utils import UserError, run_with_user_errors
from tests.helpers import REPO

PACKAGE = REPO / "mmrmt"

#: The modules that exist only for the tools: the only ones in the package that name UserError.
CLI_MODULES = {
    "mmrmt/utils/__init__.py",
    "mmrmt/utils/arguments.py",
    "mmrmt/utils/errors.py",
    "mmrmt/utils/test_options.py",
    "mmrmt/utils/train_options.py",
}


def user_error_references(path: Path) -> List[int]:
    """Lines of ``path`` that import, raise or otherwise name ``UserError``."""
    lines = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            named = any(alias.name == "UserError" for alias in node.names)
        elif isinstance(node, ast.Name):
            named = node.id == "UserError"
        elif isinstance(node, ast.Attribute):
            named = node.attr == "UserError"
        else:
            named = False
        if named:
            lines.append(node.lineno)
    return lines


def test_no_library_module_names_user_error():
    found = {
        f"{path.relative_to(REPO)}:{line}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if str(path.relative_to(REPO)) not in CLI_MODULES
        for line in user_error_references(path)
    }
    assert found == set()


def test_the_scan_finds_imports_raises_and_attributes(tmp_path):
    module = tmp_path / "module.py"
    module.write_text(
        "from ..utils import UserError\n"
        "import mmrmt.utils as utils\n"
        "def check():\n"
        "    raise utils.UserError('bad')\n"
    )
    assert user_error_references(module) == [1, 4]


@pytest.mark.parametrize(
    "error, ordinary",
    [
        (InvalidValueError, ValueError),
        (MissingDependencyError, ImportError),
        (StepFailedError, RuntimeError),
        (CheckpointError, RuntimeError),
    ],
)
def test_mmrmt_errors_are_ordinary_exception_types_with_mmrmts_mark(error, ordinary):
    assert issubclass(error, ordinary) and issubclass(error, MmrmtError)


def raising(error: BaseException):
    def tool(args: argparse.Namespace) -> None:
        raise error

    return tool


@pytest.mark.parametrize(
    "error",
    [
        InvalidValueError("unknown stage 5: the model has stages 0..3"),
        MissingDependencyError("onnx is not installed"),
        CheckpointError("Checkpoint a.pth is corrupt"),
        UserError("--amp needs a GPU"),
        FileNotFoundError("config file not found: a.py"),
    ],
)
def test_tools_report_mmrmts_errors_in_one_line(error, capsys):
    assert run_with_user_errors(raising(error), argparse.Namespace(debug=False)) == 1
    assert capsys.readouterr().err.endswith(f": error: {error}\n")


def test_a_bare_missing_file_is_reduced_to_its_path(capsys):
    error = FileNotFoundError(2, "No such file or directory", "data/ann.json")
    assert run_with_user_errors(raising(error), argparse.Namespace(debug=False)) == 1
    message = "file not found: data/ann.json (--debug shows which step needed it)"
    assert capsys.readouterr().err.endswith(f": error: {message}\n")


def test_a_plain_value_error_keeps_its_traceback():
    # Raised below mmrmt (torch, mmengine, a bug): a one-line message would hide where.
    with pytest.raises(ValueError, match="not enough values to unpack"):
        run_with_user_errors(
            raising(ValueError("not enough values to unpack")), argparse.Namespace(debug=False)
        )


def test_debug_shows_the_traceback_of_an_mmrmt_error():
    with pytest.raises(InvalidValueError, match="unknown stage"):
        run_with_user_errors(
            raising(InvalidValueError("unknown stage 5")), argparse.Namespace(debug=True)
        )
