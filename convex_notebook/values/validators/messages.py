"""How a validation failure is carried and told: the private ``_Mismatch`` raised while
checking (its message is built only when something fails) and the renderings of values, types
and paths its messages use."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from convex_notebook.errors import ValidationError
from convex_notebook.values._model import MAX_SAFE_INT, MISSING, Int64

_MAX_SAFE_INT = MAX_SAFE_INT  # 2**53: plain ints within ±this are exact float64s
_IDENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


class _Mismatch(Exception):
    """Internal failure: ``fmt(at)`` builds the message; ``segments`` is the path, reversed."""

    __slots__ = ("fmt", "segments")

    def __init__(self, fmt: Callable[[str], str]) -> None:
        self.fmt = fmt
        self.segments: list[str] = []

    def rel_path(self) -> str:
        return "".join(reversed(self.segments))


def _at(path: str) -> str:
    return f" at path {path}" if path else ""


def _path_line(path: str) -> str:
    return f"\nPath: {path}" if path else ""


def _message(e: _Mismatch, base: str) -> tuple[str, str]:
    path = base + e.rel_path()
    return path, "Validator error: " + e.fmt(path)


def _raise_validation(e: _Mismatch, base: str) -> None:
    path, msg = _message(e, base)
    err = ValidationError(msg)
    err.path = path  # type: ignore[attr-defined]
    raise err from None


def _key_segment(key: str) -> str:
    if _IDENT_RE.match(key):
        return "." + key
    return "[" + json.dumps(key) + "]"


def _trunc(s: str, n: int = 80) -> str:
    return s if len(s) <= n else s[: n - 3] + "..."


def _short(x: Any, n: int = 60) -> str:
    """A short JSON-ish rendering of a (possibly raw) value."""
    if x is MISSING:
        return "MISSING"
    if x is None:
        return "null"
    if x is True:
        return "true"
    if x is False:
        return "false"
    if isinstance(x, Int64):
        return f"Int64({int(x)})"
    if isinstance(x, float):
        return repr(float(x))
    if isinstance(x, int):
        return repr(int(x))
    if isinstance(x, str):
        return _trunc(json.dumps(x, ensure_ascii=False), n)
    if isinstance(x, (bytes, bytearray, memoryview)):
        return _trunc(repr(bytes(x)), n)
    if isinstance(x, (list, tuple)):
        inner = ", ".join(_short(e, 20) for e in list(x)[:5])
        return _trunc("[" + inner + (", ..." if len(x) > 5 else "") + "]", n)
    if isinstance(x, dict):
        items = list(x.items())
        inner = ", ".join(f"{k}: {_short(val, 20)}" for k, val in items[:5])
        return _trunc("{" + inner + (", ..." if len(items) > 5 else "") + "}", n)
    return _trunc(f"<{type(x).__name__} {x!r}>", n)


def _type_name(x: Any) -> str:
    """The Convex type name of a (possibly raw) value."""
    if x is MISSING:
        return "undefined"
    if x is None:
        return "null"
    if isinstance(x, bool):
        return "boolean"
    if isinstance(x, Int64):
        return "int64"
    if isinstance(x, float):
        return "float64"
    if isinstance(x, int):
        return "float64" if -_MAX_SAFE_INT <= x <= _MAX_SAFE_INT else "Python int beyond ±2^53"
    if isinstance(x, str):
        return "string"
    if isinstance(x, (bytes, bytearray, memoryview)):
        return "bytes"
    if isinstance(x, (list, tuple)):
        return "array"
    if isinstance(x, dict):
        return "object"
    return f"Python {type(x).__name__}, not a Convex value"


def _received(x: Any) -> str:
    if x is None:
        return "null"
    if x is MISSING:
        return "MISSING (undefined)"
    return f"{_short(x)} ({_type_name(x)})"
