"""Imports run one way: models -> checkpoint loading -> conversion -> arch_zoo; tools -> package.

Two views of the same rule. The static one reads every ``import`` of the package, those inside
functions included (an import hidden in a function to dodge a cycle is still a cycle). The
runtime one imports every module first, in a fresh interpreter, without running the package's
``__init__`` ahead of it, so no import order chosen elsewhere can hide a cycle.
"""

import ast
import json
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Set

from tests.helpers import REPO

PACKAGE = REPO / "mmrmt"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_modules() -> Dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imported_modules(name: str, path: Path, known: Set[str]) -> Set[str]:
    """mmrmt modules that ``name`` imports, with the packages whose ``__init__`` that runs."""
    is_package = path.name == "__init__.py"
    base = name.split(".") if is_package else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        targets: List[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = base[: len(base) - node.level + 1]
                module = ".".join(anchor + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            targets = [module] + [f"{module}.{alias.name}" for alias in node.names]
        ancestors = {".".join(name.split(".")[:depth]) for depth in range(1, name.count(".") + 1)}
        for target in targets:
            parts = target.split(".")
            # Importing a.b.c runs a/__init__ and a/b/__init__ first, except for the packages that
            # contain this module: they are already being imported when it runs.
            for depth in range(2, len(parts) + 1):
                candidate = ".".join(parts[:depth])
                implicit = depth < len(parts)
                if candidate in known and candidate != name:
                    if not (implicit and candidate in ancestors):
                        found.add(candidate)
    return found


def import_graph() -> Dict[str, Set[str]]:
    modules = package_modules()
    return {name: imported_modules(name, path, set(modules)) for name, path in modules.items()}


def find_cycle(graph: Dict[str, Set[str]]) -> List[str]:
    """One import cycle as a list of modules, or [] when the graph has none."""
    state: Dict[str, int] = {}  # 1: on the current path, 2: finished
    path: List[str] = []

    def visit(node: str) -> List[str]:
        state[node] = 1
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return path[path.index(target) :] + [target]
            if target not in state:
                cycle = visit(target)
                if cycle:
                    return cycle
        path.pop()
        state[node] = 2
        return []

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return []


def test_package_imports_have_no_cycle():
    assert find_cycle(import_graph()) == []


def test_cycle_finder_reports_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}
    assert find_cycle(graph) == ["a", "b", "c", "a"]


def test_imports_inside_functions_count(tmp_path):
    module = tmp_path / "rmt.py"
    module.write_text("def init_weights():\n    from ...checkpoint.loading import load\n")
    known = {"mmrmt.checkpoint", "mmrmt.checkpoint.loading", "mmrmt.models.backbones"}
    found = imported_modules("mmrmt.models.backbones.rmt", module, known)
    assert found == {"mmrmt.checkpoint", "mmrmt.checkpoint.loading"}


def test_checkpoint_code_never_imports_the_models():
    graph = import_graph()
    for name, targets in graph.items():
        if name.startswith("mmrmt.checkpoint"):
            assert not {t for t in targets if t.startswith("mmrmt.models")}, name


def test_conversion_does_not_import_loading():
    graph = import_graph()
    for name in ("mmrmt.checkpoint.convert", "mmrmt.checkpoint.authors"):
        assert "mmrmt.checkpoint.loading" not in graph[name]


def test_arch_zoo_and_layers_sit_below_everything():
    graph = import_graph()
    assert graph["mmrmt.arch_zoo"] == set()
    for name, targets in graph.items():
        if name.startswith("mmrmt.models"):
            assert not {
                t
                for t in targets
                if t.startswith(("mmrmt.utils", "mmrmt.engine", "mmrmt.toy_demo"))
            }, name


def test_the_package_never_imports_the_tools():
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and not node.level:
                assert not (node.module or "").startswith("tools"), path


# Each module is imported first, from a clean slate: the mmrmt modules of the previous round are
# dropped (third-party imports stay cached, so this is fast) and so are the names they registered
# in mmengine's registries. The root package is a bare stand-in whose __init__ never runs.
_IMPORT_EACH_FIRST = """
import importlib, json, sys, types
import mmengine.registry as registries
roots = [r for r in vars(registries).values() if isinstance(r, registries.Registry)]
snapshot = [(r, dict(r._module_dict)) for r in roots]
failures = {}
for name in json.loads(sys.argv[1]):
    for loaded in [m for m in sys.modules if m == "mmrmt" or m.startswith("mmrmt.")]:
        del sys.modules[loaded]
    for registry, entries in snapshot:
        registry._module_dict.clear()
        registry._module_dict.update(entries)
    root = types.ModuleType("mmrmt")
    root.__path__ = [sys.argv[2]]
    sys.modules["mmrmt"] = root
    try:
        importlib.import_module(name)
    except Exception as error:
        failures[name] = f"{type(error).__name__}: {error}"
print(json.dumps(failures))
"""


def test_every_module_imports_first_in_a_fresh_interpreter():
    names = [name for name in package_modules() if name != "mmrmt"]
    result = subprocess.run(
        [sys.executable, "-c", _IMPORT_EACH_FIRST, json.dumps(names), str(PACKAGE)],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {}


# What registration needs, and no more: the tools' helpers, mmengine's Runner (which mmcv.cnn
# and mmengine's checkpoint reader import) and the downstream libraries load when used.
_IMPORT_MMRMT = """
import json, sys
import mmrmt
from mmengine.fileio.backends import backends
from mmengine.registry import HOOKS, MODEL_WRAPPERS, MODELS
heavy = ("mmrmt.utils", "mmengine.runner", "mmdet", "mmseg")
print(json.dumps({
    "loaded": sorted(name for name in heavy if name in sys.modules),
    "registered": [
        MODELS.get("RMT") is mmrmt.RMT,
        HOOKS.get("AtomicCheckpointHook") is not None,
        MODEL_WRAPPERS.get("CPUDistributedDataParallel") is not None,
        "atomic_local" in backends,
    ],
}))
"""


def test_import_mmrmt_registers_without_the_tools_runner_mmdet_or_mmseg():
    result = subprocess.run(
        [sys.executable, "-c", _IMPORT_MMRMT], capture_output=True, text=True, cwd=REPO
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report == {"loaded": [], "registered": [True, True, True, True]}


def test_engine_does_not_import_the_tools_helpers():
    graph = import_graph()
    for name, targets in graph.items():
        if name.startswith(("mmrmt.engine", "mmrmt.models", "mmrmt.checkpoint")):
            assert not {t for t in targets if t.startswith("mmrmt.utils")}, name
