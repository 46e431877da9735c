"""The package layout's rules (docs/architecture.md), checked on the source.

Data flows forward through the pipeline: a module imports (at import time)
only modules of its own step or earlier ones; no import circles; only
``mtlneuron.nrn`` touches NEURON, LFPy or hnn-core; ``import mtlneuron``
loads neither torch nor NEURON; no module over 900 lines; no private helper
(``_name``) of one module is used by another.
"""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "mtlneuron"

# Pipeline step of every top-level module or subpackage (docs/architecture.md). A module may
# import, at import time, only modules whose step is <= its own.
STEPS = {
    "conventions": 0, "_util": 0, "_metrics": 0, "geometry": 0,
    "cells": 1, "inputs": 1, "drive_families": 1,
    "nrn": 2,
    "simulate": 3, "datasets": 3, "fields": 3,
    "surrogate": 4, "model": 4,
    "training": 5, "train": 5, "evaluate": 5,
    "network": 6,
    "optimize": 7,
    "cli": 8, "__main__": 8, "__init__": 9,
}
# Imports made at call time that point back up the table, each a deliberate facade.
CALL_TIME_FACADES = {
    ("mtlneuron.cells", "mtlneuron.nrn"),  # Cell.segments / .sites are computed by building in NEURON
    ("mtlneuron.surrogate.module", "mtlneuron.training"),  # Surrogate.fit calls training.fit
}
NEURON_PACKAGES = {"neuron", "LFPy", "hnn_core"}
MAX_LINES = 900


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__" and len(parts) > 1 and parts[:-1] != ["mtlneuron"]:
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(module: str, path: Path):
    """Yield (target module, imported names, at_import_time, node) for every import in the file."""
    tree = ast.parse(path.read_text())
    is_package = path.name == "__init__.py"
    funcs = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    in_func = {id(n) for f in funcs for n in ast.walk(f) if n is not f}
    for node in ast.walk(tree):
        at_import = id(node) not in in_func
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, [], at_import, node
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(module, is_package, node)
            names = [a.name for a in node.names]
            yield target, names, at_import, node
            for name in names:  # `from . import cells` imports the module mtlneuron.cells
                yield f"{target}.{name}", [], at_import, node


def _step(module: str) -> int | None:
    parts = module.split(".")
    if parts[0] != "mtlneuron":
        return None
    if len(parts) == 1:
        return STEPS["__init__"]
    key = parts[1]
    if key not in STEPS:
        raise AssertionError(f"module {module} has no pipeline step in tests/test_layout.py STEPS")
    return STEPS[key]


def _known(target: str, modules: dict) -> str | None:
    """The mtlneuron module a dotted import target names (or None: a name inside a module)."""
    while target:
        if target in modules:
            return target
        target = target.rpartition(".")[0]
    return None


def test_every_module_has_a_step():
    for module in _modules():
        _step(module)


def test_imports_flow_forward():
    modules = _modules()
    bad = []
    for module, path in modules.items():
        own = _step(module)
        for target, _, at_import, node in _imports(module, path):
            target = _known(target, modules)
            if target is None or target.split(".")[:2] == module.split(".")[:2]:
                continue
            if _step(target) > own:
                facade = any(module == a and target.startswith(b) for a, b in CALL_TIME_FACADES)
                if at_import or not facade:
                    bad.append(f"{module}:{node.lineno} imports {target} (step {_step(target)} > {own})")
    assert not bad, "imports against the pipeline:\n" + "\n".join(bad)


def _import_graph(call_time: bool) -> dict[str, set[str]]:
    """Module -> the mtlneuron modules it imports (at import time; with ``call_time`` also inside functions,
    the documented facades left out)."""
    modules = _modules()
    graph = {m: set() for m in modules}
    for module, path in modules.items():
        for target, _, at_import, _ in _imports(module, path):
            target = _known(target, modules)
            if not target or target == module or module.startswith(target + ".") or target == "mtlneuron":
                continue  # the package __init__ is the root, never a dependency
            facade = any(module.startswith(a) and target.startswith(b) for a, b in CALL_TIME_FACADES)
            if at_import or (call_time and not facade):
                graph[module].add(target)
    return graph


def _find_cycle(graph: dict[str, set[str]]) -> None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for t in graph[m]:
            if state.get(t) == 1:
                raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(t):] + [t]))
            if t not in state:
                visit(t)
        stack.pop()
        state[m] = 2

    for m in graph:
        if m not in state:
            visit(m)


def test_no_import_cycles_at_import_time():
    _find_cycle(_import_graph(call_time=False))


def test_no_import_circles_at_call_time_but_the_facades():
    """Imports inside functions form no circle either (fields' montages <-> mne_interop did); only the two
    documented call-time facades point back up."""
    _find_cycle(_import_graph(call_time=True))


def test_neuron_behind_one_door():
    bad = []
    for module, path in _modules().items():
        if module.startswith("mtlneuron.nrn"):
            continue
        for target, _, _, node in _imports(module, path):
            if target.split(".")[0] in NEURON_PACKAGES:
                bad.append(f"{module}:{node.lineno} imports {target}")
    assert not bad, "only mtlneuron.nrn may import neuron, LFPy, hnn_core:\n" + "\n".join(bad)


def _private_uses(module: str, path: Path, modules: dict) -> list[str]:
    """``from m import _name`` and ``m._name`` where ``m`` is another mtlneuron module."""
    tree = ast.parse(path.read_text())
    is_package = path.name == "__init__.py"
    aliases, bad = {}, []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = _resolve(module, is_package, node)
            for alias in node.names:
                full = f"{base}.{alias.name}"
                if full in modules:
                    aliases[alias.asname or alias.name] = full
                elif base.startswith("mtlneuron") and base != module and alias.name.startswith("_") \
                        and not alias.name.startswith("__"):
                    bad.append(f"{module}:{node.lineno} imports private {alias.name} from {base}")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in modules and (alias.asname or "." not in alias.name):
                    aliases[alias.asname or alias.name] = alias.name
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases:
            if aliases[node.value.id] != module and node.attr.startswith("_") and not node.attr.startswith("__"):
                bad.append(f"{module}:{node.lineno} uses private {aliases[node.value.id]}.{node.attr}")
    return bad


def test_no_private_names_across_modules():
    modules = _modules()
    bad = [line for module, path in modules.items() for line in _private_uses(module, path, modules)]
    assert not bad, "private helpers used across modules:\n" + "\n".join(bad)


def test_private_name_check_catches_a_violation(tmp_path):
    path = tmp_path / "x.py"
    path.write_text("from . import cells\nfrom .inputs import _make\ncells._FACTORIES\n")
    modules = {**_modules(), "mtlneuron.x": path}
    assert len(_private_uses("mtlneuron.x", path, modules)) == 2


def test_no_module_over_900_lines():
    long = {m: n for m, p in _modules().items() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_import_mtlneuron_is_light():
    code = ("import sys, mtlneuron, mtlneuron.cells, mtlneuron.inputs, mtlneuron.simulate, mtlneuron.datasets;"
            "heavy = [m for m in ('torch', 'neuron', 'LFPy', 'hnn_core') if m in sys.modules];"
            "print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"import mtlneuron loaded {out.stdout.strip()}"


@pytest.mark.parametrize("module", ["mtlneuron.fields", "mtlneuron.network"])
def test_fields_and_network_import_without_torch(module):
    code = f"import sys, {module}; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if out.returncode != 0 and "No module named" in out.stderr and module in out.stderr:
        pytest.skip(f"{module} not built yet")
    assert out.stdout.strip() == "False", out.stderr[-2000:]
