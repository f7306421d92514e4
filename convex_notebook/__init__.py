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
from .engine.subscriptions import Subscription
from .errors import ConvexError, ConvexFunctionError, InvalidValueError, ValidationError
from .values import MISSING, Int64
from .values.schema import SchemaDefinition, TableDefinition, define_schema, define_table
from .values.validators import Validator, v

__version__ = "0.1.0"

__all__ = [
    "MISSING",
    "ActionCtx",
    "Backend",
    "ConvexError",
    "ConvexFunctionError",
    "DatabaseError",
    "FunctionNotFound",
    "IndexRangeError",
    "Int64",
    "InvalidCursorError",
    "InvalidValueError",
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
    "connect",
    "define_schema",
    "define_table",
    "v",
]
