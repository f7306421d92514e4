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


def _imports(path: Path) -> list[str]:
    """Absolute names of every module imported anywhere in ``path``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = _module_name(path) if path.name == "__init__.py" else _module_name(path).rpartition(".")[0]
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
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
