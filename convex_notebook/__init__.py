"""convex_notebook: a Jupyter-first workbench for Convex-style reactive backends.

    import convex_notebook as cn
    from convex_notebook import v

    app = cn.Backend()                               # embedded, in memory (SQLite)
    @app.mutation(args={"text": v.string()})
    def add(ctx, text):
        return ctx.db.insert("tasks", {"text": text, "done": False})
    app.mutation("add", {"text": "write the docs"})
"""

from .backend import (
    ActionCtx,
    Backend,
    FunctionNotFound,
    Module,
    MutationCtx,
    QueryCtx,
    RegisteredFunction,
    connect,
)
from .backend.components import Component
from .backend.contract import Deployment
from .backend.crons import CronJobs
from .backend.http_actions import HttpRequest, HttpResponse, HttpRouter
from .backend.limits import LimitError, Limits
from .backend.project import (
    action,
    internal_action,
    internal_mutation,
    internal_query,
    mutation,
    query,
)
from .engine import (
    DatabaseError,
    IndexRangeError,
    InvalidCursorError,
    QueryError,
    SchemaError,
    SystemClock,
    TransactionLimits,
    VirtualClock,
)
from .engine.subscriptions import Subscription
from .errors import ConvexError, ConvexFunctionError, InvalidValueError, ValidationError
from .io import ImportFileError
from .values import MISSING, Int64
from .values.schema import (
    SchemaDefinition,
    TableDefinition,
    define_schema,
    define_table,
)
from .values.validators import Validator, pagination_opts_validator, v

paginationOptsValidator = pagination_opts_validator  # Convex's name (convex/server)

__version__ = "0.1.0"


def load_ipython_extension(ipython: object) -> None:
    """``%load_ext convex_notebook``: registers the ``%convex`` magics."""
    from .notebook.magics import load_ipython_extension as load

    load(ipython)


def unload_ipython_extension(ipython: object) -> None:
    from .notebook.magics import unload_ipython_extension as unload

    unload(ipython)


# Attributes that load a heavier layer on first use (IPython, anywidget, pandas): not in
# ``__all__``, so ``from convex_notebook import *`` stays light. name -> module defining it.
_LAZY = {
    "Dashboard": ".notebook.dashboard",
    "DeploymentClient": ".server.client",  # the remote deployment (cn.connect("http://...") makes one)
    "LiveQuery": ".notebook.widgets",
    "show_full_tracebacks": ".notebook.tracebacks",  # a display setting (no IPython import)
    "from_dataframe": ".notebook.dataframes",
    "infer_schema": ".notebook.dataframes",
    "to_dataframe": ".notebook.dataframes",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(module, __name__), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


__all__ = [
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
