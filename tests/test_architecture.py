"""The shape of the code, checked on its source (ast) so a wrong import fails here, not at a user's.

- Layers: core/ is the science (no Qt, no app/, no command line: library code never imports
  cli/); cli/ is argparse over core (no Qt, no app/); app/ is the Qt front end (never cli/).
- No import cycles between modules of core/, cli/ and app/: the graph has an edge for every
  import statement anywhere in a file (lazy imports inside functions included, since hiding a
  cycle in a function is still a cycle), and no strongly connected component has two modules.
- No ``from x import _private`` across modules in core/, app/, cli/: a name that one module uses
  from another is public, named without the underscore (tests may reach private names).
- Every package under core/, app/, cli/ has an ``__init__.py`` whose docstring says what lives there.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOP_PACKAGES = ("core", "app", "cli")
QT = ("PySide6", "PyQt5", "PyQt6", "pyqtgraph", "shiboken6")
# What each top-level package may never import (by first dotted part).
FORBIDDEN = {
    "core": QT + ("app", "cli"),
    "cli": QT + ("app",),
    "app": ("cli",),
}


@dataclass(frozen=True)
class Import:
    """One imported module (absolute, relative imports resolved), and the name taken from it."""

    line: int
    module: str
    name: str | None  # ``from module import name``; None for ``import module``


def _sources(top: str) -> list[Path]:
    return sorted(p for p in (ROOT / top).rglob("*.py") if "__pycache__" not in p.parts)


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def _modules() -> dict[str, Path]:
    return {_module_name(p): p for top in TOP_PACKAGES for p in _sources(top)}


def _imports(path: Path) -> list[Import]:
    return _imports_of(path.read_text(encoding="utf-8"), _module_name(path),
                       path.name == "__init__.py")


def _imports_of(source: str, module_name: str, is_package: bool) -> list[Import]:
    """Every import statement of the source, wherever it sits (module level, functions, classes)."""
    package = module_name.split(".") if is_package else module_name.split(".")[:-1]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [Import(node.lineno, alias.name, None) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found += [Import(node.lineno, module, alias.name) for alias in node.names]
    return found


def _target(imp: Import) -> str | None:
    """The module of core/, app/ or cli/ an import loads: ``from a import b`` loads a.b when b is
    a module, else a; None for a module outside the three packages."""
    modules = _modules()
    if imp.name is not None and f"{imp.module}.{imp.name}" in modules:
        return f"{imp.module}.{imp.name}"
    return imp.module if imp.module in modules else None


def _where(path: Path, imp: Import) -> str:
    return f"{path.relative_to(ROOT)}:{imp.line}"


def _strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative: the components of more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            for nxt in edges:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        components.append(sorted(component))
    return components


def test_layers_import_only_what_they_may():
    offenders = set()
    for top, forbidden in FORBIDDEN.items():
        for path in _sources(top):
            offenders |= {
                f"{_where(path, imp)} imports {imp.module}" for imp in _imports(path)
                if imp.module.split(".")[0] in forbidden
            }
    assert not offenders, (
        "core/ never imports Qt, app/ or cli/; cli/ never Qt or app/; app/ never cli/:\n  "
        + "\n  ".join(sorted(offenders))
    )


def test_no_import_cycles():
    graph: dict[str, set[str]] = {name: set() for name in _modules()}
    lines: dict[tuple[str, str], str] = {}
    for name, path in _modules().items():
        for imp in _imports(path):
            target = _target(imp)
            if target is not None and target != name:
                graph[name].add(target)
                lines.setdefault((name, target), _where(path, imp))
    cycles = _strongly_connected(graph)
    described = [
        " <-> ".join(component) + ": " + ", ".join(
            f"{a} -> {b} ({lines[a, b]})" for a in component for b in sorted(graph[a])
            if b in component)
        for component in cycles
    ]
    assert not cycles, "import cycles:\n  " + "\n  ".join(described)


def test_no_private_names_imported_across_modules():
    offenders = []
    for path in _modules().values():
        for imp in _imports(path):
            private = (imp.name is not None and imp.name.startswith("_")
                       and not imp.name.startswith("__"))
            if private and f"{imp.module}.{imp.name}" not in _modules():  # a name, not a module
                offenders.append(f"{_where(path, imp)}: from {imp.module} import {imp.name}")
    assert not offenders, (
        "a name another module uses is public (no leading underscore):\n  " + "\n  ".join(offenders)
    )


def test_every_package_has_an_init_with_a_docstring():
    missing = []
    for top in TOP_PACKAGES:
        folders = {p.parent for p in _sources(top)} | {ROOT / top}
        for folder in sorted(folders):
            init = folder / "__init__.py"
            if not init.exists():
                missing.append(f"{folder.relative_to(ROOT)}/ has no __init__.py")
            elif not (ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))) or "").strip():
                missing.append(f"{init.relative_to(ROOT)} has no docstring")
    assert not missing, "every package says what lives there:\n  " + "\n  ".join(missing)


def test_the_checks_see_what_they_guard():
    """The walk reaches sub-packages, lazy and relative imports, and cycles through three modules:
    a hole here would let every test above pass on code that breaks the rules."""
    assert {"core.lab.format", "cli.surface", "app.shell.main_window"} <= set(_modules())
    source = (
        "import torch\n"
        "from . import sibling\n"
        "from ..lab.format import _hidden\n"
        "class K:\n"
        "    def m(self):\n"
        "        from PySide6 import QtCore\n"
    )
    assert _imports_of(source, "core.landscape.live", is_package=False) == [
        Import(1, "torch", None), Import(2, "core.landscape", "sibling"),
        Import(3, "core.lab.format", "_hidden"), Import(6, "PySide6", "QtCore"),
    ]
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"e"}}
    assert _strongly_connected(graph) == [["a", "b", "c"]]


def test_importing_all_of_core_and_cli_loads_no_qt():
    modules = sorted(name for name in _modules() if name.split(".")[0] in ("core", "cli"))
    code = (
        "import sys\n"
        + "".join(f"import {m}\n" for m in modules)
        + "bad = [m for m in sys.modules if m.split('.')[0] in ('PySide6', 'pyqtgraph', 'app')]\n"
        + "print(','.join(bad))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "", f"importing core pulled in: {out.stdout}"


MAX_CLASS_LINES = 400
MAX_MODULE_LINES = 600


def test_classes_stay_small_and_long_modules_say_why():
    """A class over ~400 lines is several ideas; a module over 600 lines says at its top why it
    is one idea (a registry with an entry per torch class, one file format's schema)."""
    too_big = []
    for path in sorted(p for top in TOP_PACKAGES for p in (ROOT / top).rglob("*.py")
                       if "__pycache__" not in p.parts):
        text = path.read_text(encoding="utf-8")
        tree = ast.parse(text)
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_CLASS_LINES:
                    too_big.append(f"{path.relative_to(ROOT)}: class {node.name} has {length} lines")
        lines = len(text.splitlines())
        if lines > MAX_MODULE_LINES and "Longer than 600 lines because" not in (
                ast.get_docstring(tree) or ""):
            too_big.append(f"{path.relative_to(ROOT)}: {lines} lines and no reason at its top")
    assert not too_big, "\n".join(too_big)
