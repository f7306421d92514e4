"""The package's exported names: ``__all__`` is curated (these exact names, in ruff's RUF022
order), matches what the package binds, and a star import stays light (httpx's
test_exported_members, plus laziness)."""

from __future__ import annotations

import subprocess
import sys
import types
from pathlib import Path

import convex_notebook as cn

EXPORTED = [
    "MISSING",
    "ActionCtx",
    "Backend",
    "Component",
    "ConvexError",
    "ConvexFunctionError",
    "CronJobs",
    "DatabaseError",
    "Deployment",
    "FunctionNotFound",
    "HttpRequest",
    "HttpResponse",
    "HttpRouter",
    "ImportFileError",
    "IndexRangeError",
    "Int64",
    "InvalidCursorError",
    "InvalidValueError",
    "LimitError",
    "Limits",
    "Module",
    "MutationCtx",
    "QueryCtx",
    "QueryError",
    "RegisteredFunction",
    "SchemaDefinition",
    "SchemaError",
    "Subscription",
    "SystemClock",
    "TableDefinition",
    "TransactionLimits",
    "ValidationError",
    "Validator",
    "VirtualClock",
    "action",
    "connect",
    "define_schema",
    "define_table",
    "internal_action",
    "internal_mutation",
    "internal_query",
    "mutation",
    "paginationOptsValidator",
    "pagination_opts_validator",
    "query",
    "v",
]
# Public attributes loaded on first use (they import IPython, anywidget or pandas, or the
# remote client's network stack): never in __all__, so a star import does not load them.
LAZY = [
    "Dashboard", "DeploymentClient", "from_dataframe", "infer_schema", "LiveQuery", "show_full_tracebacks",
    "to_dataframe",
]
# IPython's extension hooks (%load_ext convex_notebook): attributes, not names to import.
HOOKS = {"load_ipython_extension", "unload_ipython_extension"}
HEAVY = ("pandas", "IPython", "anywidget", "convex_notebook.notebook")


def test_all_is_exactly_the_curated_names():
    assert cn.__all__ == EXPORTED


def test_all_imports_are_exported():
    bound = (
        name for name, value in vars(cn).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType) and name not in HOOKS
    )
    assert sorted(cn.__all__) == sorted(bound)


def test_lazy_attributes_resolve_and_are_listed_by_dir():
    for name in LAZY:
        assert name not in cn.__all__
        assert getattr(cn, name) is not None
        assert name in dir(cn)


def test_an_unknown_attribute_is_an_attribute_error():
    try:
        cn.NoSuchThing  # noqa: B018
    except AttributeError as exc:
        assert "NoSuchThing" in str(exc)
    else:
        raise AssertionError("cn.NoSuchThing resolved")


def _loaded_after(statement: str) -> list[str]:
    code = f"import sys\n{statement}\nprint(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).parents[1]).stdout
    return out.split()


def test_star_import_stays_light():
    assert _loaded_after("from convex_notebook import *") == []


def test_plain_import_stays_light():
    assert _loaded_after("import convex_notebook") == []
