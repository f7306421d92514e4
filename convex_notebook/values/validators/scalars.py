"""The leaf validators (string, number, int64, boolean, null, bytes, any, id) and
``v.literal``, with Convex's equality of literal values and their ValidatorJSON encoding."""

from __future__ import annotations

import base64
import json
import math
import struct
from typing import Any

from convex_notebook.errors import InvalidValueError
from convex_notebook.values._check import convex_value
from convex_notebook.values._ids import decode_id
from convex_notebook.values._model import INT64_MAX, INT64_MIN, MAX_SAFE_INT, Int64

from .base import _NOPE, SchemaDefinitionError, Validator, _normalise
from .messages import _at, _Mismatch

_MAX_SAFE_INT = MAX_SAFE_INT  # 2**53: plain ints within ±this are exact float64s
_INT64_MIN = INT64_MIN
_INT64_MAX = INT64_MAX


class StringValidator(Validator):
    __slots__ = ()
    kind = "string"
    _types = frozenset({str})

    def _conv(self, raw, id_table):
        if type(raw) is str:
            return raw
        if isinstance(raw, str):
            return str(raw)
        return self._retry(raw, id_table)


class Float64Validator(Validator):
    """``v.number()`` / ``v.float64()``: a float, or a plain int within ±2^53 (never Int64)."""

    __slots__ = ()
    kind = "float64"
    _types = frozenset({float, int})

    def _expected(self) -> str:
        return "`number` (float64)"

    @property
    def json(self) -> dict:
        return {"type": "number"}

    def _repr(self) -> str:
        return "v.number()"

    def _conv(self, raw, id_table):
        t = type(raw)
        if t is float:
            return raw
        if t is int:
            if -_MAX_SAFE_INT <= raw <= _MAX_SAFE_INT:
                return float(raw)
            raise self._fail(
                raw, ": a float64 can't hold it exactly; use cn.Int64(...) and v.int64() for it"
            )
        if isinstance(raw, float):
            return float(raw)
        if isinstance(raw, int) and not isinstance(raw, (bool, Int64)):
            return self._conv(int(raw), id_table)
        return self._retry(raw, id_table)


class Int64Validator(Validator):
    """``v.int64()`` / ``v.bigint()``: an Int64, or a plain Python int (coerced to Int64)."""

    __slots__ = ()
    kind = "int64"
    _types = frozenset({Int64, int})

    def _expected(self) -> str:
        return "`int64` (cn.Int64 or a Python int)"

    @property
    def json(self) -> dict:
        return {"type": "bigint"}

    def _conv(self, raw, id_table):
        t = type(raw)
        if t is Int64:
            return raw
        if t is int or (isinstance(raw, int) and not isinstance(raw, bool)):
            n = int(raw)
            if _INT64_MIN <= n <= _INT64_MAX:
                return Int64(n)
            raise self._fail(raw, ": outside the int64 range -2^63 .. 2^63-1")
        return self._retry(raw, id_table)


class BooleanValidator(Validator):
    __slots__ = ()
    kind = "boolean"
    _types = frozenset({bool})

    def _conv(self, raw, id_table):
        if raw is True or raw is False:
            return raw
        return self._retry(raw, id_table)


class NullValidator(Validator):
    __slots__ = ()
    kind = "null"
    _types = frozenset({type(None)})

    def _conv(self, raw, id_table):
        if raw is None:
            return None
        return self._retry(raw, id_table)


class BytesValidator(Validator):
    __slots__ = ()
    kind = "bytes"
    _types = frozenset({bytes})

    def _conv(self, raw, id_table):
        if type(raw) is bytes:
            return raw
        if isinstance(raw, (bytes, bytearray, memoryview)):
            return bytes(raw)
        return self._retry(raw, id_table)


class AnyValidator(Validator):
    """``v.any()``: any Convex value, normalised with :func:`convex_value`."""

    __slots__ = ()
    kind = "any"

    def _conv(self, raw, id_table):
        try:
            return convex_value(raw)
        except InvalidValueError as exc:
            detail = str(exc)
            raise _Mismatch(
                lambda path: f"Invalid Convex value{_at(path)} (v.any()): {detail}"
            ) from None


class IdValidator(Validator):
    """``v.id(table)``: an ID string of ``table``."""

    __slots__ = ("table_name",)
    kind = "id"
    _types = frozenset({str})

    def __init__(self, table_name: str) -> None:
        super().__init__()
        if not isinstance(table_name, str) or not table_name:
            raise SchemaDefinitionError(f"v.id(table_name) requires a table name string, got {table_name!r}")
        self.table_name = table_name

    def _expected(self) -> str:
        return f'ID for table "{self.table_name}"'

    @property
    def json(self) -> dict:
        return {"type": "id", "tableName": self.table_name}

    def _repr(self) -> str:
        return f"v.id({self.table_name!r})"

    def _args(self) -> tuple:
        return (self.table_name,)

    def _conv(self, raw, id_table):
        if type(raw) is not str:
            if isinstance(raw, str):
                raw = str(raw)
            else:
                return self._retry(raw, id_table)
        if id_table is None:
            if decode_id(raw) is None:
                raise self._fail(raw, ", which is not a valid ID")
            return raw
        found = id_table(raw)
        if found == self.table_name:
            return raw
        if found is None:
            if decode_id(raw) is None:
                raise self._fail(raw, ", which is not a valid ID")
            raise self._fail(raw, ", an ID of a table that does not exist")
        table = self.table_name
        raise _Mismatch(
            lambda path: f'Expected ID for table "{table}"{_at(path)}, got an ID for table '
            f'"{found}": {json.dumps(raw)}'
        )


# -- literals ----------------------------------------------------------------------------------


def _float_bits(x: float) -> bytes:
    return struct.pack("<d", x)


def _canon_literal(x: Any) -> Any:
    if isinstance(x, bool):
        return bool(x)
    if isinstance(x, Int64):
        n = int(x)
        if not _INT64_MIN <= n <= _INT64_MAX:
            raise SchemaDefinitionError(f"v.literal({x!r}): outside the int64 range")
        return x if type(x) is Int64 else Int64(n)
    if isinstance(x, str):
        return str(x)
    if isinstance(x, float):
        return float(x)
    if isinstance(x, int):
        if -_MAX_SAFE_INT <= x <= _MAX_SAFE_INT:
            return float(x)
        raise SchemaDefinitionError(
            f"v.literal({x!r}): a Python int beyond ±2^53 is not an exact float64; "
            "use v.literal(cn.Int64(...))"
        )
    norm = _normalise(x)
    if norm is not _NOPE and type(norm) in (bool, Int64, str, float):
        return norm
    raise SchemaDefinitionError(
        f"v.literal(value) must be a string, number, boolean or Int64, got {x!r}"
    )


def _literal_key(x: Any) -> tuple:
    """Equality key of a canonical literal value (Convex equality: bitwise floats, typed)."""
    t = type(x)
    if t is str:
        return ("s", x)
    if t is bool:
        return ("b", x)
    if t is float:
        return ("f", _float_bits(x))
    return ("i", int(x))


def _raw_literal_keys(raw: Any) -> tuple | None:
    """Candidate literal keys of a raw value, in no particular order (None: not a scalar)."""
    t = type(raw)
    if t is str:
        return (("s", raw),)
    if t is bool:
        return (("b", raw),)
    if t is float:
        return (("f", _float_bits(raw)),)
    if t is Int64:
        return (("i", int(raw)),)
    if t is int:
        # A plain int is a float64 (within ±2^53) but also matches an Int64 literal.
        if -_MAX_SAFE_INT <= raw <= _MAX_SAFE_INT:
            return (("f", _float_bits(float(raw))), ("i", raw))
        return (("i", raw),)
    if isinstance(raw, bool):
        return (("b", bool(raw)),)
    if isinstance(raw, str):
        return (("s", str(raw)),)
    if isinstance(raw, Int64):
        return (("i", int(raw)),)
    if isinstance(raw, float):
        return (("f", _float_bits(float(raw))),)
    if isinstance(raw, int):
        return _raw_literal_keys(int(raw))
    norm = _normalise(raw)
    if norm is not _NOPE and type(norm) in (bool, Int64, str, float):
        return _raw_literal_keys(norm)
    return None


def _encode_scalar(x: Any) -> Any:
    """convex_encoded_json of a literal value."""
    if isinstance(x, Int64):
        return {"$integer": base64.b64encode(struct.pack("<q", int(x))).decode("ascii")}
    if isinstance(x, float) and (
        math.isnan(x) or math.isinf(x) or (x == 0.0 and math.copysign(1.0, x) < 0)
    ):
        return {"$float": base64.b64encode(_float_bits(x)).decode("ascii")}
    return x


def _decode_scalar(x: Any) -> Any:
    if isinstance(x, dict):
        if set(x) == {"$integer"}:
            raw = base64.b64decode(x["$integer"])
            if len(raw) != 8:
                raise SchemaDefinitionError(f"Bad $integer literal {x!r}")
            return Int64(struct.unpack("<q", raw)[0])
        if set(x) == {"$float"}:
            raw = base64.b64decode(x["$float"])
            if len(raw) != 8:
                raise SchemaDefinitionError(f"Bad $float literal {x!r}")
            return struct.unpack("<d", raw)[0]
        raise SchemaDefinitionError(f"Bad literal value {x!r}")
    if isinstance(x, (bool, str)):
        return x
    if isinstance(x, (int, float)):
        return float(x)
    raise SchemaDefinitionError(f"Bad literal value {x!r}")


class LiteralValidator(Validator):
    """``v.literal(x)``: exactly ``x`` (a str, float, bool or Int64) under Convex equality.

    ``v.literal(1)`` means the float64 ``1.0`` and never matches ``Int64(1)``; a plain
    Python int matches an Int64 literal of the same value (as ``v.int64()`` coerces ints).
    """

    __slots__ = ("_lkey", "value")
    kind = "literal"

    def __init__(self, value: Any) -> None:
        super().__init__()
        self.value = _canon_literal(value)
        self._lkey = _literal_key(self.value)

    @property
    def _types(self):  # type: ignore[override]
        t = type(self.value)
        return frozenset({t, int}) if t in (float, Int64) else frozenset({t})

    def _expected(self) -> str:
        return self._repr()

    @property
    def json(self) -> dict:
        return {"type": "literal", "value": _encode_scalar(self.value)}

    def _repr(self) -> str:
        return f"v.literal({self.value!r})"

    def _args(self) -> tuple:
        return (self.value,)

    def _conv(self, raw, id_table):
        keys = _raw_literal_keys(raw)
        if keys is not None and self._lkey in keys:
            return self.value
        raise self._fail(raw)
