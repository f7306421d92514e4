"""The Backend facade: function registry, calling, contexts, logs."""

from .app import Backend, Module, connect
from .context import (
    ActionCtx,
    Auth,
    DatabaseReader,
    DatabaseWriter,
    MutationCtx,
    QueryCtx,
)
from .registry import FunctionDef, FunctionNotFound, RegisteredFunction, canonical_path

__all__ = [
    "ActionCtx",
    "Auth",
    "Backend",
    "DatabaseReader",
    "DatabaseWriter",
    "FunctionDef",
    "FunctionNotFound",
    "Module",
    "MutationCtx",
    "QueryCtx",
    "RegisteredFunction",
    "canonical_path",
    "connect",
]
