"""Layering: the engine (values, store, engine) never depends on the notebook stack.

Checked two ways: statically (every import statement in those packages, even inside functions)
and at run time (importing and using the engine in a fresh interpreter loads none of them).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "convex_notebook"
CORE = ("values", "store", "engine")
FORBIDDEN = ("IPython", "ipykernel", "ipywidgets", "anywidget", "pandas", "numpy", "traitlets", "matplotlib")
# Inside the package, the core may import only the core and the dependency-free errors module.
ALLOWED_INTERNAL = {f"convex_notebook.{name}" for name in CORE} | {"convex_notebook.errors"}


def _core_files() -> list[Path]:
    files = [p for name in CORE for p in sorted((PACKAGE / name).rglob("*.py"))]
    assert len(files) >= 10, "the core packages moved?"
    return files


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _from_module(package: str, node: ast.ImportFrom) -> str:
    """The absolute module a ``from ... import`` in ``package`` names (relative levels resolved)."""
    if not node.level:
        return node.module or ""
    base = package.split(".")
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(path: Path) -> list[str]:
    """Absolute names of every module imported anywhere in ``path``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = _module_name(path) if path.name == "__init__.py" else _module_name(path).rpartition(".")[0]
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = _from_module(package, node)
            names.append(module)
            if node.level and not node.module:  # from . import x: x may be a submodule
                names += [f"{module}.{alias.name}" for alias in node.names]
    return names


@pytest.mark.parametrize("path", _core_files(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_core_modules_import_no_notebook_or_dataframe_library(path):
    for name in _imports(path):
        top = name.split(".")[0]
        assert top not in FORBIDDEN, f"{path.relative_to(ROOT)} imports {name}"
        if top == "convex_notebook":
            inside = any(name == ok or name.startswith(ok + ".") for ok in ALLOWED_INTERNAL)
            assert inside, f"{path.relative_to(ROOT)} imports {name}, outside the engine layers"


def test_import_resolution_helper_sees_relative_imports():
    # guard against the scan above silently seeing nothing
    names = _imports(PACKAGE / "engine" / "query.py")
    assert "convex_notebook.engine.filters" in names


def _loaded_after(code: str) -> set[str]:
    script = code + "\nimport sys, json\nprint(json.dumps(sorted(sys.modules)))\n"
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120, check=True
    ).stdout
    return set(json.loads(out.splitlines()[-1]))


def test_using_the_engine_loads_no_notebook_library():
    loaded = _loaded_after(
        "from convex_notebook.engine import Database, Query\n"
        "db = Database()\n"
        "with db.write() as txn:\n"
        "    txn.insert('t', {'a': 1})\n"
        "with db.read() as txn:\n"
        "    assert len(Query(txn, 't').collect()) == 1\n"
        "db.close()\n"
    )
    bad = sorted(m for m in loaded if m.split(".")[0] in FORBIDDEN)
    assert bad == []
    notebook_side = sorted(m for m in loaded if m.startswith(("convex_notebook.notebook", "convex_notebook.server")))
    assert notebook_side == []


def test_importing_the_package_loads_no_notebook_library():
    loaded = _loaded_after("import convex_notebook as cn\napp = cn.Backend()\napp.run(lambda ctx: ctx.db.insert('t', {}))\n")
    assert sorted(m for m in loaded if m.split(".")[0] in FORBIDDEN) == []


# -- up the whole ladder (../shared/DESIGN.md) ---------------------------------------------------------
# The modules allowed to attach an upper layer by lazy import (as pandas attaches to_sql): the
# package's own facade (its __getattr__ and load_ipython_extension) and backend/optional.py.
FACADES = {"convex_notebook", "convex_notebook.backend.optional"}
# What each layer must never import (lazily or not; TYPE_CHECKING imports are annotations only).
NEVER = {
    "backend": ("convex_notebook.notebook", "convex_notebook.server", "convex_notebook.io"),
    "io": ("convex_notebook.notebook", "convex_notebook.server"),
    "server": ("convex_notebook.notebook",),  # the server and the remote client
}
ALL_MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _runtime_imports(path: Path) -> list[tuple[str, bool]]:
    """``(module, lazy)`` for every import of ``path`` that runs (inside functions: lazy),
    ``if TYPE_CHECKING:`` blocks left out; ``from pkg import mod`` names the submodule."""
    tree = ast.parse(path.read_text(), filename=str(path))
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: list[tuple[str, bool]] = []

    def visit(node: ast.AST, lazy: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for stmt in child.orelse:
                    visit_one(stmt, lazy)
                continue
            visit_one(child, lazy)

    def visit_one(node: ast.AST, lazy: bool) -> None:
        if isinstance(node, ast.Import):
            found.extend((alias.name, lazy) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            module = _from_module(package, node)
            for alias in node.names:
                sub = f"{module}.{alias.name}"
                found.append((sub if sub in ALL_MODULES else module, lazy))
        else:
            visit(node, lazy or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))

    visit(tree, False)
    return found


def _layer_files(layer: str) -> list[Path]:
    return sorted((PACKAGE / layer).rglob("*.py"))


@pytest.mark.parametrize("layer", sorted(NEVER))
def test_no_layer_imports_one_above_it(layer):
    files = _layer_files(layer)
    assert len(files) >= 3, f"{layer}/ moved?"
    bad = []
    for path in files:
        name = _module_name(path)
        if name in FACADES:
            continue
        for module, _lazy in _runtime_imports(path):
            if any(module == up or module.startswith(up + ".") for up in NEVER[layer]):
                bad.append(f"{path.relative_to(ROOT)} imports {module}")
    assert bad == []


def _import_graph() -> dict[str, set[str]]:
    """Module → the package modules it imports at run time (a facade's lazy imports left out)."""
    graph: dict[str, set[str]] = {}
    for name, path in ALL_MODULES.items():
        graph[name] = {
            module for module, lazy in _runtime_imports(path)
            if module in ALL_MODULES and module != name and not (lazy and name in FACADES)
        }
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def strong(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            strong(v)
    return found


def test_no_import_cycles_lazy_imports_counted():
    assert _cycles(_import_graph()) == []


def test_the_cycle_finder_finds_a_cycle():
    # guard against the check above silently seeing nothing
    graph = _import_graph()
    assert "convex_notebook.backend.contract" in graph["convex_notebook.notebook.magics"]
    graph["convex_notebook.backend.app"].add("convex_notebook.notebook.magics")  # a lazy import in app.py
    assert any("convex_notebook.backend.app" in c for c in _cycles(graph))


def test_the_remote_client_loads_no_notebook_library():
    loaded = _loaded_after("from convex_notebook.server.client import DeploymentClient\n")
    assert sorted(m for m in loaded if m.split(".")[0] in FORBIDDEN) == []
    assert sorted(m for m in loaded if m.startswith("convex_notebook.notebook")) == []
