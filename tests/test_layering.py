"""The package layering of docs/design.md, as a rule: imports only point down, and no module imports
itself back through others (late imports inside functions count too)."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.helpers import ROOT

PACKAGES = ("geometry", "data", "render", "recon")
# Which of our packages each package may import (besides itself).
ALLOWED = {
    "geometry": set(),
    "data": set(),
    "render": {"geometry"},
    "recon": {"geometry", "data", "render"},
}


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
        package = module.split(".")[0]
        for target in targets:
            if target.split(".")[0] not in ALLOWED[package] | {package}:
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
