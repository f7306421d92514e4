"""Exceptions shared by every layer (this module imports nothing of the project)."""

from __future__ import annotations

from typing import Any

__all__ = [
    "ConvexError",
    "ConvexFunctionError",
    "InvalidValueError",
    "ValidationError",
]


class ConvexError(Exception):
    """An application error carrying a Convex value in ``.data`` (Convex's ``ConvexError``).

    Raise it in a function; the caller receives a ``ConvexError`` with the same ``data``.
    """

    def __init__(self, data: Any = None) -> None:
        self.data = data
        super().__init__(data if isinstance(data, str) else repr(data))


class ConvexFunctionError(Exception):
    """A function failed for any reason other than a ``ConvexError`` (bug, bad input, limit)."""


class ValidationError(ConvexFunctionError):
    """Arguments, a return value or a document failed a validator; the message names the path."""


class InvalidValueError(ValueError):
    """A Python value is not a Convex value, or breaks a limit (size, depth, field names, ...)."""
