"""Convex validators (``v.*``): checking, coercion, introspection and ValidatorJSON.

Public surface::

    from convex_notebook.values.validators import v, Validator, validator_from_json

    user = v.object({"name": v.string(), "age": v.optional(v.number())})
    doc = user.convert({"name": "Ada"})            # -> {"name": "Ada"}, or raises ValidationError
    user.json                                       # Convex ValidatorJSON (a plain dict)
    validator_from_json(user.json) == user          # True

Design notes

* ``v.optional(x)`` returns a copy of ``x`` whose ``is_optional`` flag is ``True`` (the way
  convex-js does it); there is no separate optional class.  ``kind`` stays the kind of ``x``.
  An optional validator is only meaningful as a field of ``v.object``; using it as an array
  element, a union member, a record key/value, or calling ``.convert`` on it directly raises
  :class:`SchemaDefinitionError`.
* ``convert`` validates a *raw* Python value (or an already normalised one: it is idempotent)
  and returns the canonical Convex form (``list``/``dict``/``float``/``Int64``/``bytes`` ...).
  It checks types and shapes, record-key syntax and, for ``v.any()``, everything
  :func:`convex_value` checks.  It does *not* enforce the global value limits (total size,
  nesting depth, array length, object field count) below a typed validator: run
  :func:`convex_value` on the result when those matter (documents, arguments).
* Internally every validator has ``_conv(raw, id_table)`` which raises the private
  ``_Mismatch``; paths are assembled only when something fails, so the success path costs
  no string building.
"""

from __future__ import annotations

import base64
import copy
import json
import math
import re
import struct
from types import MappingProxyType
from typing import Any, Callable, Iterable, Mapping

from convex_notebook.errors import InvalidValueError, ValidationError
from convex_notebook.values._check import (
    MAX_ARRAY_LENGTH,
    MAX_DOCUMENT_NESTING,
    MAX_OBJECT_FIELDS,
    _check_value,
    _top_field_problem,
    convex_value,
)
from convex_notebook.values._codec import _plain
from convex_notebook.values._ids import decode_id
from convex_notebook.values._model import INT64_MAX, INT64_MIN, MAX_SAFE_INT, MISSING, Int64
from convex_notebook.values._size import MAX_DOCUMENT_SIZE, SYSTEM_FIELDS_SIZE

__all__ = [
    "AnyValidator",
    "ArrayValidator",
    "BooleanValidator",
    "BytesValidator",
    "Float64Validator",
    "IdValidator",
    "Int64Validator",
    "LiteralValidator",
    "NullValidator",
    "ObjectValidator",
    "RecordValidator",
    "SchemaDefinitionError",
    "StringValidator",
    "UnionValidator",
    "Validator",
    "args_validator",
    "is_identifier",
    "pagination_opts_validator",
    "returns_validator",
    "v",
    "validator_from_json",
]

IdTable = Callable[[str], "str | None"]

_MAX_SAFE_INT = MAX_SAFE_INT  # 2**53: plain ints within ±this are exact float64s
_INT64_MIN = INT64_MIN
_INT64_MAX = INT64_MAX
_IDENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_MAX_IDENTIFIER_LEN = 64


class SchemaDefinitionError(ValueError):
    """A validator, table or schema definition is malformed (raised at definition time)."""


def is_identifier(name: object) -> bool:
    """Convex identifier: ``[A-Za-z_][A-Za-z0-9_]*``, at most 64 chars, not only underscores."""
    return (
        isinstance(name, str)
        and len(name) <= _MAX_IDENTIFIER_LEN
        and _IDENT_RE.match(name) is not None
        and name.strip("_") != ""
    )


# --------------------------------------------------------------------------------------
# Failure plumbing
# --------------------------------------------------------------------------------------


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


def _normalise(raw: Any) -> Any:
    """Slow path for values no fast path recognised: ``convex_value`` or ``_NOPE``."""
    try:
        norm = convex_value(raw)
    except (InvalidValueError, TypeError, ValueError, RecursionError):
        return _NOPE
    if norm is raw or type(norm) is type(raw):
        return _NOPE
    return norm


_NOPE = object()
_UNCOMPILED = object()

# Types whose acceptance a validator can decide from ``_types`` alone (union prefilter).
_CANON_TYPES = frozenset({str, float, int, bool, type(None), bytes, list, tuple, dict, Int64})


# --------------------------------------------------------------------------------------
# Base class
# --------------------------------------------------------------------------------------


class Validator:
    """Base class of every validator.  Build them with :data:`v`, not directly.

    Attributes: ``kind`` (``"string"``, ``"float64"``, ``"int64"``, ``"boolean"``, ``"null"``,
    ``"bytes"``, ``"any"``, ``"id"``, ``"literal"``, ``"array"``, ``"object"``, ``"record"``,
    ``"union"``) and ``is_optional`` (bool).
    """

    __slots__ = ("is_optional", "_hash")
    kind: str = "?"
    # Python types this validator may accept without normalisation (None: don't prefilter).
    _types: frozenset | None = None

    def __init__(self) -> None:
        self.is_optional = False
        self._hash: int | None = None

    # -- checking -----------------------------------------------------------------------

    def convert(self, raw: Any, *, path: str = "", id_table: IdTable | None = None) -> Any:
        """Validate ``raw`` and return it in canonical Convex form.

        ``path`` prefixes the path in error messages (``""`` is the root).  ``id_table``
        maps an ID string to its table name (or ``None``); without it ``v.id`` only checks
        that the string decodes as an ID.  Raises :class:`ValidationError`.
        """
        if self.is_optional:
            raise SchemaDefinitionError(
                f"{self!r} can't be used on its own: v.optional(...) is only allowed as a "
                "field of v.object({...}) (or a top-level argument in an args dict)"
            )
        try:
            return self._conv(raw, id_table)
        except _Mismatch as e:
            _raise_validation(e, path)

    validate = convert

    def is_valid(self, raw: Any, *, id_table: IdTable | None = None) -> bool:
        """``True`` when ``convert`` would succeed."""
        try:
            self._conv(raw, id_table)
        except _Mismatch:
            return False
        return True

    def _conv(self, raw: Any, id_table: IdTable | None) -> Any:  # pragma: no cover
        raise NotImplementedError

    def _fail(self, raw: Any, note: str = "") -> _Mismatch:
        expected = self._expected()
        return _Mismatch(lambda path: f"Expected {expected}{_at(path)}, got {_received(raw)}{note}")

    def _expected(self) -> str:
        return f"`{self.kind}`"

    def _retry(self, raw: Any, id_table: IdTable | None) -> Any:
        """Fast path failed: normalise with ``convex_value`` and try once more, or fail."""
        norm = _normalise(raw)
        if norm is _NOPE:
            raise self._fail(raw)
        try:
            return self._conv(norm, id_table)
        except _Mismatch:
            raise self._fail(raw) from None

    # -- introspection ------------------------------------------------------------------

    @property
    def json(self) -> dict:
        """Convex ValidatorJSON (optionality lives in the enclosing object's field entry)."""
        return {"type": self.kind}

    def _repr(self) -> str:
        return f"v.{self.kind}()"

    def __repr__(self) -> str:
        r = self._repr()
        return f"v.optional({r})" if self.is_optional else r

    def _key(self) -> str:
        return json.dumps([self.is_optional, self.json], sort_keys=True)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Validator):
            return NotImplemented
        return self is other or self._key() == other._key()

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = hash(self._key())
        return self._hash

    def __copy__(self) -> Validator:
        cls = type(self)
        new = cls.__new__(cls)
        for klass in cls.__mro__:
            for slot in klass.__dict__.get("__slots__", ()):
                if hasattr(self, slot):
                    setattr(new, slot, getattr(self, slot))
        return new

    def __reduce__(self) -> tuple:
        return (_rebuild, (self.json, self.is_optional))

    # -- optionality --------------------------------------------------------------------

    def _with_optional(self, flag: bool) -> Validator:
        if self.is_optional == flag:
            return self
        new = copy.copy(self)
        new.is_optional = flag
        new._hash = None
        return new

    def as_optional(self) -> Validator:
        """A copy marked optional (same as ``v.optional(self)``)."""
        return self._with_optional(True)

    def as_required(self) -> Validator:
        """A copy marked required."""
        return self._with_optional(False)

    def _require_not_optional(self, where: str) -> None:
        if self.is_optional:
            raise SchemaDefinitionError(
                f"{self!r} is not allowed {where}: v.optional(...) is only allowed as a field "
                "of v.object({...})"
            )


def _ensure_validator(x: Any, where: str) -> Validator:
    if not isinstance(x, Validator):
        raise TypeError(f"{where} must be a validator (built with v.*), got {x!r}")
    return x


# --------------------------------------------------------------------------------------
# Leaf validators
# --------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------
# Literals
# --------------------------------------------------------------------------------------


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
    if isinstance(x, bool) or isinstance(x, str):
        return x
    if isinstance(x, (int, float)):
        return float(x)
    raise SchemaDefinitionError(f"Bad literal value {x!r}")


class LiteralValidator(Validator):
    """``v.literal(x)``: exactly ``x`` (a str, float, bool or Int64) under Convex equality.

    ``v.literal(1)`` means the float64 ``1.0`` and never matches ``Int64(1)``; a plain
    Python int matches an Int64 literal of the same value (as ``v.int64()`` coerces ints).
    """

    __slots__ = ("value", "_lkey")
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

    def _conv(self, raw, id_table):
        keys = _raw_literal_keys(raw)
        if keys is not None and self._lkey in keys:
            return self.value
        raise self._fail(raw)


# --------------------------------------------------------------------------------------
# Containers
# --------------------------------------------------------------------------------------


class ArrayValidator(Validator):
    """``v.array(element)``: a list (or tuple) whose elements all match ``element``."""

    __slots__ = ("element",)
    kind = "array"
    _types = frozenset({list, tuple})

    def __init__(self, element: Validator) -> None:
        super().__init__()
        _ensure_validator(element, "v.array(element)")
        element._require_not_optional("as an array element")
        self.element = element

    @property
    def json(self) -> dict:
        return {"type": "array", "value": self.element.json}

    def _repr(self) -> str:
        return f"v.array({self.element!r})"

    def _conv(self, raw, id_table):
        t = type(raw)
        if t is not list and t is not tuple:
            if isinstance(raw, (list, tuple)):
                raw = list(raw)
            else:
                return self._retry(raw, id_table)
        conv = self.element._conv
        try:
            return [conv(x, id_table) for x in raw]
        except _Mismatch:
            pass
        for i, x in enumerate(raw):  # error path only: find the failing index
            try:
                conv(x, id_table)
            except _Mismatch as e:
                e.segments.append(f"[{i}]")
                raise
        raise AssertionError("unreachable")  # pragma: no cover


def _check_field_name(name: Any) -> str:
    if not isinstance(name, str):
        raise SchemaDefinitionError(f"v.object() field names must be strings, got {name!r}")
    if not is_identifier(name):
        raise SchemaDefinitionError(
            f"Invalid field name {name!r} in v.object(): field names must be identifiers "
            "([A-Za-z_][A-Za-z0-9_]*, at most 64 characters, not only underscores)"
        )
    return name


class ObjectValidator(Validator):
    """``v.object({...})``: a dict with exactly these fields (optional ones may be missing).

    ``fields`` maps each name to its validator; optional fields have ``is_optional=True``.
    Values equal to ``MISSING`` count as missing.  Extra fields are rejected.
    """

    __slots__ = ("fields", "_items", "_segs", "_fast", "_document_fast")
    kind = "object"
    _types = frozenset({dict})

    def __init__(self, fields: Mapping[str, Validator]) -> None:
        super().__init__()
        if not isinstance(fields, Mapping):
            raise TypeError(f"v.object() takes a dict of validators, got {fields!r}")
        checked: dict[str, Validator] = {}
        for name, val in fields.items():
            _check_field_name(name)
            _ensure_validator(val, f"v.object() field {name!r}")
            checked[name] = val
        self.fields: Mapping[str, Validator] = MappingProxyType(checked)  # read-only
        self._items = tuple((n, f, f.is_optional) for n, f in checked.items())
        self._segs = {n: "." + n for n in checked}
        self._fast = _compile_object_fast_path(self._items)
        self._document_fast: Any = _UNCOMPILED  # document_fast_path(), compiled on first use

    @property
    def json(self) -> dict:
        return {
            "type": "object",
            "value": {
                n: {"fieldType": f.json, "optional": f.is_optional} for n, f in self.fields.items()
            },
        }

    def _repr(self) -> str:
        inner = ", ".join(f"{n!r}: {f!r}" for n, f in self.fields.items())
        return "v.object({" + inner + "})"

    def convert(self, raw: Any, *, path: str = "", id_table: IdTable | None = None) -> Any:
        if type(raw) is dict and not self.is_optional:  # the common case, one call shorter
            out = self._fast(raw, id_table)
            if out is not _NOPE:
                return out
        return Validator.convert(self, raw, path=path, id_table=id_table)

    validate = convert

    def document_fast_path(self) -> Callable[[dict, Any], tuple[dict, int] | None] | None:
        """For a table's document validator: ``fast(doc, id_table)`` validating ``doc`` and
        making ``normalize_document``'s checks in one pass, returning ``(document, size,
        plain)`` (plain: ``dumps_document`` would find it plain JSON) or None when the general
        path must run (see ``_compile_object_fast_path``). None when the
        fields themselves rule it out (a name ``normalize_document`` rejects, too many)."""
        fast = self._document_fast
        if fast is _UNCOMPILED:
            items = self._items
            if len(items) > MAX_OBJECT_FIELDS or any(_top_field_problem(n) for n, _, _ in items):
                fast = None
            else:
                fast = _compile_object_fast_path(items, measure=True)
            self._document_fast = fast
        return fast

    def _conv(self, raw, id_table):
        if type(raw) is dict:
            out = self._fast(raw, id_table)
            if out is not _NOPE:
                return out
        else:
            if isinstance(raw, dict):
                raw = dict(raw)
            else:
                return self._retry(raw, id_table)
        out = {}
        get = raw.get
        seen = 0
        for name, fv, optional in self._items:
            val = get(name, MISSING)
            if val is MISSING:
                if optional:
                    continue
                raise self._missing(name, raw)
            seen += 1
            try:
                out[name] = fv._conv(val, id_table)
            except _Mismatch as e:
                e.segments.append(self._segs[name])
                raise
        if seen != len(raw):
            fields = self.fields
            for k, val in raw.items():
                if val is not MISSING and k not in fields:
                    raise self._extra(k)
        return out

    def _missing(self, name: str, raw: dict) -> _Mismatch:
        me = _trunc(repr(self), 200)
        got = _short(raw, 120)
        return _Mismatch(
            lambda path: f"Object is missing the required field `{name}`. Consider wrapping "
            "the field validator in `v.optional(...)` if this is expected."
            f"{_path_line(path)}\nObject: {got}\nValidator: {me}"
        )

    def _extra(self, key: Any) -> _Mismatch:
        me = _trunc(repr(self), 200)
        return _Mismatch(
            lambda path: f"Object contains extra field `{key}` that is not in the "
            f"validator.{_path_line(path)}\nValidator: {me}"
        )

    # -- helpers (each returns a new ObjectValidator) -----------------------------------

    def _derive(self, fields: Mapping[str, Validator]) -> ObjectValidator:
        new = ObjectValidator(fields)
        new.is_optional = self.is_optional
        return new

    def _known(self, keys: Iterable[str], op: str) -> None:
        unknown = [k for k in keys if k not in self.fields]
        if unknown:
            raise SchemaDefinitionError(
                f".{op}(): unknown field(s) {', '.join(map(repr, unknown))}; "
                f"fields are {', '.join(map(repr, self.fields))}"
            )

    def pick(self, *keys: str) -> ObjectValidator:
        """Only the given fields."""
        self._known(keys, "pick")
        return self._derive({k: self.fields[k] for k in keys})

    def omit(self, *keys: str) -> ObjectValidator:
        """All fields except the given ones."""
        self._known(keys, "omit")
        drop = set(keys)
        return self._derive({k: f for k, f in self.fields.items() if k not in drop})

    def extend(self, fields: Mapping[str, Validator] | None = None, /, **more: Validator) -> ObjectValidator:
        """These fields plus ``fields`` (which override same-named ones)."""
        return self._derive({**self.fields, **(fields or {}), **more})

    def partial(self) -> ObjectValidator:
        """Every field optional (handy for patch arguments)."""
        return self._derive({k: f.as_optional() for k, f in self.fields.items()})

    def required(self) -> ObjectValidator:
        """Every field required, and the object itself required."""
        new = ObjectValidator({k: f.as_required() for k, f in self.fields.items()})
        return new


# -- the compiled fast path of v.object ------------------------------------------------------
#
# Validating arguments and documents is mostly v.object of leaf validators given values of
# exactly the right types. For each v.object we generate a function that checks those cases
# inline (no call per field) and returns the same dict the generic loop would; anything else
# (a missing or extra field, a value that needs converting, a mismatch) returns _NOPE, and the
# generic loop runs instead, so results and error messages are those of the generic code.
#
# A table's document validator also gets a *document* variant, which in the same pass makes
# the checks ``normalize_document`` makes after validation (top-level names, lengths, nesting,
# size) and notes whether the document is plain JSON (see ``dumps_document``); it returns
# ``(document, size, plain)``, or None to take the general path (which then reports whatever
# is wrong). ASCII-only strings keep it simple: other strings take the general path.

_LEAF_TYPES = {"StringValidator": "str", "Float64Validator": "float", "BooleanValidator": "bool"}


def _fast_field_check(fv: Validator, var: str, name: str, measure: bool) -> list[str] | None:
    """Lines checking ``var`` (present) against a leaf validator and, when ``measure``, adding
    its size to ``size``; None when the field needs its validator's generic ``_conv``."""
    t = type(fv)
    field = len(name) + 1  # the name and its separator, as document sizes count them
    if t is StringValidator:
        if not measure:
            return [f"if type({var}) is not str: return NOPE"]
        return [f"if type({var}) is not str or not {var}.isascii(): return NOPE", f"size += {field + 2} + len({var})"]
    if t is Float64Validator:
        lines = [
            f"if type({var}) is not float:",
            f"    if type({var}) is int and -SAFE <= {var} <= SAFE: {var} = float({var})",
            "    else: return NOPE",
        ]
        if measure:  # NaN, ±inf and -0.0 are not plain JSON
            lines += [f"size += {field + 9}", f"if not ({var} - {var} == 0.0 and ({var} != 0.0 or copysign(1.0, {var}) > 0.0)): plain = False"]
        return lines
    if t is BooleanValidator:
        return [f"if {var} is not True and {var} is not False: return NOPE"] + ([f"size += {field + 1}"] if measure else [])
    if t is NullValidator:
        return [f"if {var} is not None: return NOPE"] + ([f"size += {field + 1}"] if measure else [])
    element = _LEAF_TYPES.get(type(fv.element).__name__) if t is ArrayValidator else None
    if element is None:
        return None
    lines = [f"if type({var}) is not list: return NOPE"]
    if not measure:
        return lines + [f"for e in {var}:", f"    if type(e) is not {element}: return NOPE", f"{var} = {var}[:]"]
    lines += [f"if len({var}) > MAX_ARRAY: return NOPE", "s = 2"]
    if element == "str":
        lines += [f"for e in {var}:", "    if type(e) is not str or not e.isascii(): return NOPE", "    s += 2 + len(e)"]
    else:
        lines += [f"for e in {var}:", f"    if type(e) is not {element}: return NOPE"]
        if element == "float":
            lines.append("    if not (e - e == 0.0 and (e != 0.0 or copysign(1.0, e) > 0.0)): plain = False")
        lines.append(f"s += {9 if element == 'float' else 1} * len({var})")
    return lines + [f"{var} = {var}[:]", f"size += {field} + s"]


def _compile_object_fast_path(
    items: tuple[tuple[str, Validator, bool], ...], measure: bool = False
) -> Callable[[dict, Any], Any]:
    """``fast(raw, id_table)`` for a v.object with these fields (see above); ``raw`` is a dict.

    With ``measure``: the document variant, returning ``(document, size, plain)`` or None.
    """
    env: dict[str, Any] = {
        "MISSING": MISSING, "NOPE": None if measure else _NOPE, "Mismatch": _Mismatch,
        "SAFE": _MAX_SAFE_INT, "MAX_ARRAY": MAX_ARRAY_LENGTH, "check_value": _check_value,
        "is_plain": _plain, "copysign": math.copysign,
    }
    body = ["get = raw.get", "n = 0"]
    if measure:
        body += [f"size = {2 + SYSTEM_FIELDS_SIZE}", "plain = True"]
    for i, (name, fv, optional) in enumerate(items):  # names are identifiers: safe in source
        var = f"v{i}"
        body.append(f"{var} = get({name!r}, MISSING)")
        check = _fast_field_check(fv, var, name, measure)
        if check is None:
            env[f"conv{i}"] = fv._conv
            check = ["try:", f"    {var} = conv{i}({var}, id_table)"]
            if measure:  # any other failure (a limit, a non-canonical value): the general path
                check.append(f"    size += {len(name) + 1} + check_value({var}, 1, {MAX_DOCUMENT_NESTING})")
                check.append(f"    if plain and not is_plain({var}): plain = False")
            check += ["except Mismatch:" if not measure else "except Exception:", "    return NOPE"]
        if optional:
            body.append(f"if {var} is not MISSING:")
            body += ["    n += 1"] + ["    " + line for line in check]
        else:
            body.append(f"if {var} is MISSING: return NOPE")
            body += check
    required = sum(1 for _, _, optional in items if not optional)
    body.append(f"if n + {required} != len(raw): return NOPE")  # extra fields: the generic loop decides
    if measure:
        body.append(f"if size > {MAX_DOCUMENT_SIZE}: return NOPE")
    result = "(out, size, plain)" if measure else "out"
    if all(not optional for _, _, optional in items):
        pairs = ", ".join(f"{name!r}: v{i}" for i, (name, _, _) in enumerate(items))
        body.append(f"out = {{{pairs}}}")
    else:  # same key order as the generic loop: declaration order, absent optionals skipped
        body.append("out = {}")
        for i, (name, _, optional) in enumerate(items):
            line = f"out[{name!r}] = v{i}"
            body.append(f"if v{i} is not MISSING: {line}" if optional else line)
    body.append(f"return {result}")
    source = "def fast(raw, id_table):\n" + "".join(f"    {line}\n" for line in body)
    exec(source, env)  # noqa: S102 - generated from validator types and identifier field names
    return env["fast"]


def _check_record_key_validator(key: Validator) -> bool:
    """Raise unless ``key`` is a valid record key validator; return whether it has literals."""
    if key.is_optional:
        raise SchemaDefinitionError("v.record() keys can't be optional")
    if isinstance(key, (StringValidator, IdValidator)):
        return False
    if isinstance(key, LiteralValidator) and isinstance(key.value, str):
        return True
    if isinstance(key, UnionValidator):
        has_literal = False
        for m in key.members:
            has_literal = _check_record_key_validator(m) or has_literal
        return has_literal
    raise SchemaDefinitionError(
        "v.record() keys must be v.string(), v.id(table), string literals or a union of those, "
        f"got {key!r}"
    )


def _bad_record_key(k: Any) -> str | None:
    if not isinstance(k, str):
        return "record keys must be strings"
    if not k:
        return "record keys must be non-empty"
    if not (k.isascii() and k.isprintable()):
        return "record keys must be printable ASCII"
    if k[0] == "$" or k[0] == "_":
        return "record keys must not start with '$' or '_'"
    return None


class RecordValidator(Validator):
    """``v.record(keys, values)``: a dict with dynamic keys.

    ``key`` must be ``v.string()``, ``v.id(t)`` or a union of those; ``value`` can't be
    optional.  As in current Convex, keys may also be string literals (or unions containing
    them), and then ``value`` *must* be ``v.optional(...)`` (every key may be absent):
    ``v.record(v.union(v.literal("a"), v.literal("b")), v.optional(v.number()))``.
    Keys must be non-empty printable ASCII not starting with ``$`` or ``_``.
    ``MISSING`` values are stripped.
    """

    __slots__ = ("key", "value")
    kind = "record"
    _types = frozenset({dict})

    def __init__(self, key: Validator, value: Validator) -> None:
        super().__init__()
        _ensure_validator(key, "v.record() keys")
        _ensure_validator(value, "v.record() values")
        has_literal = _check_record_key_validator(key)
        if has_literal and not value.is_optional:
            raise SchemaDefinitionError(
                "Records with string literal keys must have an optional value: use "
                f"v.record({key!r}, v.optional({value!r}))"
            )
        if value.is_optional and not has_literal:
            raise SchemaDefinitionError(
                "v.record() values can't be optional (only records whose keys are string "
                "literals take v.optional(...) values)"
            )
        self.key = key
        self.value = value

    @property
    def json(self) -> dict:
        return {
            "type": "record",
            "keys": self.key.json,
            "values": {"fieldType": self.value.json, "optional": self.value.is_optional},
        }

    def _repr(self) -> str:
        return f"v.record({self.key!r}, {self.value!r})"

    def _expected(self) -> str:
        return "`object` (a record)"

    def _conv(self, raw, id_table):
        if type(raw) is not dict:
            if isinstance(raw, dict):
                raw = dict(raw)
            else:
                return self._retry(raw, id_table)
        kconv = self.key._conv
        vconv = self.value._conv
        out = {}
        for k, val in raw.items():
            if val is MISSING:
                continue
            bad = _bad_record_key(k)
            if bad is not None:
                key_repr = _short(k)
                raise _Mismatch(lambda path, b=bad: f"Invalid record key {key_repr}{_at(path)}: {b}")
            try:
                k2 = kconv(k, id_table)
            except _Mismatch as e:
                inner = e
                raise _Mismatch(
                    lambda path: f"Invalid record key{_at(path)}: " + inner.fmt("")
                ) from None
            try:
                out[k2] = vconv(val, id_table)
            except _Mismatch as e:
                e.segments.append(_key_segment(k))
                raise
        return out


class UnionValidator(Validator):
    """``v.union(*members)``: the first member that accepts the value wins."""

    __slots__ = ("members", "_lit_map", "_prefilter")
    kind = "union"

    def __init__(self, *members: Validator) -> None:
        super().__init__()
        for m in members:
            _ensure_validator(m, "v.union() members")
            m._require_not_optional("as a union member")
        self.members: tuple[Validator, ...] = tuple(members)
        # All-literal unions (enums) resolve with one dict lookup.
        if members and all(isinstance(m, LiteralValidator) for m in members):
            lit_map: dict = {}
            for i, m in enumerate(members):
                lit_map.setdefault(m._lkey, (i, m.value))
            self._lit_map = lit_map
        else:
            self._lit_map = None
        self._prefilter = tuple(m._types for m in members)

    @property
    def json(self) -> dict:
        return {"type": "union", "value": [m.json for m in self.members]}

    def _repr(self) -> str:
        return "v.union(" + ", ".join(repr(m) for m in self.members) + ")"

    def _expected(self) -> str:
        if not self.members:
            return "nothing (empty v.union())"
        return "one of " + _trunc(" | ".join(repr(m) for m in self.members), 300)

    def _conv(self, raw, id_table):
        if len(self.members) == 1:  # a one-member union reports its member's own error
            return self.members[0]._conv(raw, id_table)
        lit_map = self._lit_map
        if lit_map is not None:
            keys = _raw_literal_keys(raw)
            if keys is not None:
                best = None
                for k in keys:
                    hit = lit_map.get(k)
                    if hit is not None and (best is None or hit[0] < best[0]):
                        best = hit
                if best is not None:
                    return best[1]
            raise self._fail(raw)
        t = type(raw)
        canon = t in _CANON_TYPES
        failures: list[tuple[Validator, _Mismatch]] = []
        for m, types in zip(self.members, self._prefilter):
            if canon and types is not None and t not in types:
                continue
            try:
                return m._conv(raw, id_table)
            except _Mismatch as e:
                failures.append((m, e))
        raise self._union_fail(raw, failures)

    def _union_fail(self, raw: Any, failures: list) -> _Mismatch:
        expected = self._expected()
        # Explain the failures of members that got past the type check (objects, arrays...).
        deep = [(m, e) for m, e in failures if isinstance(m, (ObjectValidator, RecordValidator, ArrayValidator, UnionValidator))]
        lines = []
        for m, e in deep[:5]:
            _, msg = _message(e, "")
            first = msg.removeprefix("Validator error: ").split("\n", 1)[0]
            lines.append(f"\n  - {_trunc(repr(m), 100)}: {first}")
        tail = "".join(lines)
        return _Mismatch(lambda path: f"Expected {expected}{_at(path)}, got {_received(raw)}{tail}")


# --------------------------------------------------------------------------------------
# The `v` builder
# --------------------------------------------------------------------------------------

_STRING = StringValidator()
_FLOAT64 = Float64Validator()
_INT64 = Int64Validator()
_BOOLEAN = BooleanValidator()
_NULL = NullValidator()
_BYTES = BytesValidator()
_ANY = AnyValidator()


class _V:
    """The validator builder, Convex's ``v``."""

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        """A misspelt validator names the real ones (``v.strng`` → did you mean v.string?)."""
        import difflib

        known = sorted(n for n in dir(type(self)) if not n.startswith("_"))
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"did you mean v.{close[0]}()? " if close else ""
        raise AttributeError(f"v has no validator {name!r}: {hint}Validators: {', '.join(f'v.{n}' for n in known)}")

    @staticmethod
    def string() -> StringValidator:
        return _STRING

    @staticmethod
    def number() -> Float64Validator:
        return _FLOAT64

    @staticmethod
    def float64() -> Float64Validator:
        return _FLOAT64

    @staticmethod
    def int64() -> Int64Validator:
        return _INT64

    @staticmethod
    def bigint() -> Int64Validator:
        return _INT64

    @staticmethod
    def boolean() -> BooleanValidator:
        return _BOOLEAN

    @staticmethod
    def null() -> NullValidator:
        return _NULL

    @staticmethod
    def bytes() -> BytesValidator:
        return _BYTES

    @staticmethod
    def any() -> AnyValidator:
        return _ANY

    @staticmethod
    def id(table_name: str) -> IdValidator:
        return IdValidator(table_name)

    @staticmethod
    def literal(value: Any) -> LiteralValidator:
        return LiteralValidator(value)

    @staticmethod
    def array(element: Validator) -> ArrayValidator:
        return ArrayValidator(element)

    @staticmethod
    def object(fields: Mapping[str, Validator] | None = None, /, **kw: Validator) -> ObjectValidator:
        if fields is not None and not isinstance(fields, Mapping):
            raise TypeError(f"v.object() takes a dict of validators, got {fields!r}")
        return ObjectValidator({**(fields or {}), **kw})

    @staticmethod
    def record(keys: Validator, values: Validator) -> RecordValidator:
        return RecordValidator(keys, values)

    @staticmethod
    def union(*members: Validator) -> UnionValidator:
        return UnionValidator(*members)

    @staticmethod
    def optional(inner: Validator) -> Validator:
        return _ensure_validator(inner, "v.optional(x)").as_optional()

    @staticmethod
    def nullable(inner: Validator) -> UnionValidator:
        return UnionValidator(_ensure_validator(inner, "v.nullable(x)"), _NULL)

    def __repr__(self) -> str:
        return "v"


v = _V()


# --------------------------------------------------------------------------------------
# ValidatorJSON -> Validator
# --------------------------------------------------------------------------------------

_SIMPLE = {
    "string": _STRING,
    "number": _FLOAT64,
    "float64": _FLOAT64,
    "bigint": _INT64,
    "int64": _INT64,
    "boolean": _BOOLEAN,
    "null": _NULL,
    "bytes": _BYTES,
    "any": _ANY,
}


def _field_from_json(obj: Any, where: str) -> Validator:
    if not isinstance(obj, Mapping) or "fieldType" not in obj:
        raise SchemaDefinitionError(f"Bad field entry in {where}: {obj!r}")
    inner = validator_from_json(obj["fieldType"])
    return inner.as_optional() if obj.get("optional", False) else inner


def _rebuild(obj: Any, optional: bool) -> Validator:
    """Unpickle a validator."""
    return validator_from_json(obj)._with_optional(optional)


def validator_from_json(obj: Any) -> Validator:
    """Build a validator from Convex ValidatorJSON (the exact inverse of ``.json``)."""
    if not isinstance(obj, Mapping) or "type" not in obj:
        raise SchemaDefinitionError(f"Not a ValidatorJSON object: {obj!r}")
    t = obj["type"]
    simple = _SIMPLE.get(t) if isinstance(t, str) else None
    if simple is not None:
        return simple
    if t == "id":
        return IdValidator(obj.get("tableName"))
    if t == "literal":
        if "value" not in obj:
            raise SchemaDefinitionError(f"Literal ValidatorJSON without a value: {obj!r}")
        return LiteralValidator(_decode_scalar(obj["value"]))
    if t == "array":
        return ArrayValidator(validator_from_json(obj.get("value")))
    if t == "object":
        value = obj.get("value")
        if not isinstance(value, Mapping):
            raise SchemaDefinitionError(f"Object ValidatorJSON needs a 'value' mapping: {obj!r}")
        return ObjectValidator({k: _field_from_json(f, f"field {k!r}") for k, f in value.items()})
    if t == "record":
        return RecordValidator(
            validator_from_json(obj.get("keys")), _field_from_json(obj.get("values"), "record values")
        )
    if t == "union":
        members = obj.get("value")
        if not isinstance(members, list):
            raise SchemaDefinitionError(f"Union ValidatorJSON needs a 'value' list: {obj!r}")
        return UnionValidator(*(validator_from_json(m) for m in members))
    raise SchemaDefinitionError(f"Unknown validator type {t!r}")


# --------------------------------------------------------------------------------------
# Function argument / return helpers
# --------------------------------------------------------------------------------------

#: Convex's ``paginationOptsValidator``: the ``paginate`` options an args dict can declare.
pagination_opts_validator = ObjectValidator(
    {
        "numItems": _FLOAT64,
        "cursor": UnionValidator(_STRING, _NULL),
        "endCursor": UnionValidator(_STRING, _NULL).as_optional(),
        "id": _FLOAT64.as_optional(),
        "maximumRowsRead": _FLOAT64.as_optional(),
        "maximumBytesRead": _FLOAT64.as_optional(),
    }
)


def args_validator(spec: Mapping[str, Validator] | Validator | None) -> ObjectValidator | None:
    """Normalise a function's ``args=``: a dict of validators or ``v.object(...)``; ``None``
    means "no validation".  Top-level arguments must be an object."""
    if spec is None:
        return None
    if isinstance(spec, Mapping):
        return ObjectValidator(spec)
    if isinstance(spec, ObjectValidator):
        spec._require_not_optional("as a function's args")
        return spec
    if isinstance(spec, Validator):
        raise SchemaDefinitionError(
            f"args must be a dict of validators or v.object({{...}}), got {spec!r}: "
            "a function's arguments are always an object"
        )
    raise TypeError(f"args must be a dict of validators or v.object({{...}}), got {spec!r}")


def returns_validator(spec: Mapping[str, Validator] | Validator | None) -> Validator | None:
    """Normalise a function's ``returns=``: a validator (a dict means ``v.object``) or None."""
    if spec is None:
        return None
    if isinstance(spec, Mapping):
        return ObjectValidator(spec)
    if isinstance(spec, Validator):
        spec._require_not_optional("as a function's returns validator")
        return spec
    raise TypeError(f"returns must be a validator, got {spec!r}")
