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
from .backend.contract import Deployment
from .backend.crons import CronJobs
from .backend.http_actions import HttpRequest, HttpResponse, HttpRouter
from .backend.limits import LimitError, Limits
from .backend.components import Component
from .backend.project import action, internal_action, internal_mutation, internal_query, mutation, query
from .engine.subscriptions import Subscription
from .errors import ConvexError, ConvexFunctionError, InvalidValueError, ValidationError
from .io import ImportFileError
from .values import MISSING, Int64
from .values.schema import SchemaDefinition, TableDefinition, define_schema, define_table
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


def __getattr__(name: str) -> object:
    # The notebook layer (IPython, anywidget) loads only when used.
    if name in ("Dashboard", "LiveQuery"):
        from . import notebook

        return getattr(notebook, name)
    if name == "DeploymentClient":  # the remote deployment (cn.connect("http://...") makes one)
        from .server.client import DeploymentClient

        return DeploymentClient
    if name == "show_full_tracebacks":  # notebook display setting (no IPython import)
        from .notebook.tracebacks import show_full_tracebacks

        return show_full_tracebacks
    if name in ("from_dataframe", "infer_schema", "to_dataframe"):  # pandas loads only when used
        from .notebook import dataframes

        return getattr(dataframes, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "MISSING",
    "ActionCtx",
    "Backend",
    "ConvexError",
    "ConvexFunctionError",
    "Component",
    "CronJobs",
    "Dashboard",
    "DatabaseError",
    "Deployment",
    "DeploymentClient",
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
    "LiveQuery",
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
    "from_dataframe",
    "infer_schema",
    "internal_action",
    "internal_mutation",
    "internal_query",
    "mutation",
    "paginationOptsValidator",
    "pagination_opts_validator",
    "query",
    "show_full_tracebacks",
    "to_dataframe",
    "v",
]
