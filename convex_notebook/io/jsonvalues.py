"""Convex's ``export_json`` value format (``ValueFormat::ConvexExportJSON``), used by
snapshot ZIPs whose ``generated_schema.jsonl`` says ``"uniform"``.

Lossless and readable: Int64 is a JSON integer (``42``), Float64 a JSON number with a dot or
exponent (``42.0``, ``-0.0``) or, when not finite, ``{"$float": base64}``; Bytes is
``{"$bytes": base64}``. Reading, an object whose first key starts with ``$`` is a
``convex_encoded_json`` wrapper (``$integer``, ``$float``, ``$bytes``).
"""

from __future__ import annotations

import binascii
import math
import struct
from typing import Any

from ..errors import InvalidValueError
from ..values import MISSING, Int64, convex_value, from_json
from ..values._model import INT64_MAX, INT64_MIN

__all__ = ["from_export_json", "to_export_json"]

_pack_f64 = struct.Struct("<d").pack


def _b64(b: bytes) -> str:
    return binascii.b2a_base64(b, newline=False).decode("ascii")


def to_export_json(v: Any) -> Any:
    """A Convex value as ``export_json`` (JSON-ready Python objects)."""
    t = type(v)
    if t is str or t is bool or v is None:
        return v
    if t is float:
        if math.isfinite(v):
            return v  # Python writes floats with a dot or an exponent: never read back as Int64
        return {"$float": _b64(_pack_f64(v))}
    if t is Int64:
        return int(v)
    if t is dict:
        return {k: to_export_json(e) for k, e in v.items() if e is not MISSING}
    if t is list:
        return [to_export_json(e) for e in v]
    if t is bytes:
        return {"$bytes": _b64(v)}
    return to_export_json(convex_value(v))


def from_export_json(x: Any) -> Any:
    """Inverse of :func:`to_export_json` on ``json.loads`` output (JSON integers → Int64)."""
    t = type(x)
    if t is str or t is float or t is bool or x is None:
        return x
    if t is int:
        if INT64_MIN <= x <= INT64_MAX:
            return Int64(x)
        return float(x)  # as Convex: an integer beyond int64 reads as a float
    if t is list:
        return [from_export_json(e) for e in x]
    if t is dict:
        first = next(iter(x), None)
        if first is not None and first.startswith("$"):
            return from_json(x)
        return {k: from_export_json(e) for k, e in x.items()}
    raise InvalidValueError(f"Not a JSON value: {type(x).__name__}")
