"""Convex's notion of a value's size (``getConvexSize``; crates/value/src/size.rs)."""

from __future__ import annotations

from typing import Any

from ._model import Int64

__all__ = [
    "ID_LENGTH",
    "MAX_DOCUMENT_SIZE",
    "SYSTEM_FIELDS_SIZE",
    "document_size",
    "format_size",
    "value_size",
]

MAX_DOCUMENT_SIZE = 1 << 20  # 1 MiB, documents and written values
# Ids of tables numbered 128 .. 16383 (Convex's user tables) are 32 characters long.
ID_LENGTH = 32
# What `_id` (a string) and `_creationTime` (a float64) add to a user document's size.
SYSTEM_FIELDS_SIZE = (len("_id") + 1 + 2 + ID_LENGTH) + (len("_creationTime") + 1 + 9)


def _str_size(s: str) -> int:
    return 2 + (len(s) if s.isascii() else len(s.encode("utf-8", "surrogatepass")))


def _list_size(v: list[Any]) -> int:
    n = 2
    for e in v:
        t = type(e)
        if t is str:
            n += 2 + (len(e) if e.isascii() else len(e.encode("utf-8", "surrogatepass")))
        elif t is float or t is Int64:
            n += 9
        else:
            n += value_size(e)
    return n


def _dict_size(v: dict[str, Any]) -> int:
    n = 2
    for k, e in v.items():
        t = type(e)
        if t is str:
            n += len(k) + 3 + (len(e) if e.isascii() else len(e.encode("utf-8", "surrogatepass")))
        elif t is float or t is Int64:
            n += len(k) + 10
        else:
            n += len(k) + 1 + value_size(e)
    return n


_SIZERS: dict[type, Any] = {
    str: _str_size,
    float: lambda v: 9,
    Int64: lambda v: 9,
    bool: lambda v: 1,
    type(None): lambda v: 1,
    bytes: lambda v: 2 + len(v),
    list: _list_size,
    tuple: _list_size,
    dict: _dict_size,
}


def value_size(v: Any) -> int:
    """Size of a Convex value: null/bool 1, numbers 9, strings/bytes 2 + bytes, containers 2 + parts.

    An object's field adds len(name) + 1 + the size of its value (names are ASCII).
    """
    sizer = _SIZERS.get(type(v))
    if sizer is None:
        if isinstance(v, int):  # a plain int is a float64; ``bool`` is in the table
            return 9
        raise TypeError(f"value_size: not a Convex value: {type(v).__name__}")
    return sizer(v)


def document_size(doc: dict[str, Any]) -> int:
    """Size of a whole document, system fields (``_id``, ``_creationTime``) included."""
    return _dict_size(doc)


def format_size(n: int) -> str:
    """Bytes as Convex prints them in limit errors (humansize BINARY): "512 B", "1.05 MiB"."""
    if n < 1024:
        return f"{n} B"
    value = float(n)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        value /= 1024
        if value < 1024 or unit == "TiB":
            break
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return f"{text} {unit}"
