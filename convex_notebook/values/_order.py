"""Convex's total order on values (``compareValues``), through the key encoding."""

from __future__ import annotations

from typing import Any

from ._keys import encode_value

__all__ = ["compare", "sort_key", "values_equal"]

# Sorting by the encoding is Convex's order: ``sorted(values, key=sort_key)``.
sort_key = encode_value


def compare(a: Any, b: Any) -> int:
    """-1, 0 or 1 as ``a`` sorts before, with or after ``b`` in Convex's order."""
    ka = encode_value(a)
    kb = encode_value(b)
    return (ka > kb) - (ka < kb)


def values_equal(a: Any, b: Any) -> bool:
    """Convex equality: types must match (``Int64(1) != 1.0``), ``NaN == NaN``, ``-0.0 != 0.0``."""
    ta = type(a)
    if ta is type(b) and (ta is str or ta is bool or a is None):
        return a == b
    return encode_value(a) == encode_value(b)
