"""The package layering of docs/design.md, as a rule: imports only point down, and no module imports
itself back through others (late imports inside functions count too)."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.helpers import ROOT

PACKAGES = ("geometry", "data", "render", "recon")
SHARED = {"data.errors", "data.settings", "data.files"}
"""What every package may import: the user errors, the settings contract, atomic writes (all at the bottom,
in data, which imports none of ours)."""
RECON_BASE = {"recon", "recon.errors", "recon.distributed", "recon.run_dir"}
"""recon's shared modules: the user errors of a run, processes and devices, the run folder's layout."""
# Which units each unit may import (besides itself): a unit is a package, or one of recon's sub-packages
# (recon.base: the modules above; recon.run: the modules of one train.py run, recon/*.py).
_BELOW_RECON = {"geometry", "data", "render"}
RECON_UNITS = ("recon.base", "recon.asset", "recon.scenes", "recon.evaluation", "recon.train", "recon.run")
"""In order: each may import the ones before it."""
ALLOWED = {
    "geometry": set(),
    "data": set(),
    "render": {"geometry"},
    **{unit: _BELOW_RECON | set(RECON_UNITS[:k]) for k, unit in enumerate(RECON_UNITS)},
}


def _unit(module: str) -> str:
    """The layering unit of one of our modules (see ALLOWED)."""
    parts = module.split(".")
    if parts[0] != "recon":
        return parts[0]
    if module in RECON_BASE:
        return "recon.base"
    sub = f"recon.{parts[1]}"
    return sub if sub in ALLOWED else "recon.run"


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(source: str, module: str, is_package: bool, known: set[str]) -> set[str]:
    """Every module of ours that ``source`` (module ``module``) imports, at any depth of the file, with
    relative imports resolved; ``from pkg import name`` counts as ``pkg.name`` when that is a module."""
    package = module if is_package else module.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            submodules = {f"{name}.{alias.name}" for alias in node.names} & known
            found.update(submodules)
            if len(submodules) < len(node.names):
                found.add(name)
    return {name for name in found if name.split(".")[0] in PACKAGES}


def _graph() -> dict[str, set[str]]:
    files = {_module_name(p): p for package in PACKAGES for p in (ROOT / package).rglob("*.py")}
    graph = {}
    for module, path in files.items():
        imported = _imports(path.read_text(), module, path.name == "__init__.py", set(files))
        graph[module] = {name for name in imported if name in files and name != module}
    return graph


def test_imports_only_point_down():
    upward = []
    for module, targets in _graph().items():
        unit = _unit(module)
        for target in targets:
            if target not in SHARED and _unit(target) not in ALLOWED[unit] | {unit}:
                upward.append(f"{module} imports {target}")
    assert not upward, "imports against the layering of docs/design.md:\n" + "\n".join(sorted(upward))


def test_no_import_cycles():
    graph = _graph()
    state: dict[str, int] = {}
    cycles = []

    def visit(module: str, stack: list[str]) -> None:
        state[module] = 1
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                cycles.append(" -> ".join(stack[stack.index(target) :] + [target]))
            elif target not in state:
                visit(target, [*stack, target])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_the_rule_sees_late_and_relative_imports():
    known = {"render.raster", "render.raster.ops", "recon.trainer"}
    late = "def f():\n    from recon.trainer import Trainer\n"
    assert _imports(late, "geometry.sdf", False, known) == {"recon.trainer"}
    relative = "from . import ops\nfrom ..light import x\n"
    assert _imports(relative, "render.raster.backend", False, known) == {"render.raster.ops", "render.light"}


def test_every_recon_module_has_a_unit_and_the_units_are_ordered():
    assert {_unit(module) for module in _graph()} <= set(ALLOWED)
    assert _unit("recon.train.loop") == "recon.train" and _unit("recon.run") == "recon.run"
    assert _unit("recon.run_dir") == "recon.base"
    for unit, allowed in ALLOWED.items():  # a unit allows only units it does not itself enable
        assert all(unit not in ALLOWED[other] for other in allowed), unit


def test_evaluating_an_asset_imports_nothing_of_training():
    graph = _graph()
    reached, todo = set(), [m for m in graph if m.startswith("recon.evaluation")]
    while todo:
        module = todo.pop()
        if module not in reached:
            reached.add(module)
            todo.extend(graph[module])
    training = sorted(m for m in reached if _unit(m) in ("recon.train", "recon.run"))
    assert not training, f"recon.evaluation reaches {training}"


def test_the_shared_modules_import_nothing_of_ours_but_each_other():
    graph = _graph()
    for module in SHARED:
        assert graph[module] <= SHARED, f"{module} imports {graph[module] - SHARED}"
