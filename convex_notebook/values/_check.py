"""Turning Python values into canonical Convex values, and the limits on written documents.

One walk does everything: it converts (``int`` → ``float``, ``tuple`` → ``list``, ...),
checks types, keys and limits, and measures the Convex size. Paths are only built when
something fails: a private exception collects the path segments as it unwinds.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable
from typing import Any

from convex_notebook.errors import InvalidValueError

from ._model import INT64_MAX, INT64_MIN, MAX_SAFE_INT, MISSING, Int64
from ._size import MAX_DOCUMENT_SIZE, SYSTEM_FIELDS_SIZE, format_size

__all__ = [
    "MAX_ARRAY_LENGTH",
    "MAX_DOCUMENT_NESTING",
    "MAX_FIELD_NAME_LENGTH",
    "MAX_OBJECT_FIELDS",
    "MAX_TOP_LEVEL_FIELD_NAME_LENGTH",
    "MAX_VALUE_NESTING",
    "canonical_copy",
    "check_canonical_document",
    "check_document",
    "check_field_name",
    "convex_value",
    "normalize_document",
]

MAX_ARRAY_LENGTH = 8192
MAX_OBJECT_FIELDS = 1024
MAX_FIELD_NAME_LENGTH = 1024
MAX_TOP_LEVEL_FIELD_NAME_LENGTH = 64
MAX_VALUE_NESTING = 64
MAX_DOCUMENT_NESTING = 16

_NEG_SAFE = -MAX_SAFE_INT
_PRINTABLE_ASCII = re.compile(r"[ -~]*\Z")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# Field names already checked; names repeat across documents, so a set lookup replaces the checks.
_GOOD_KEYS: set[str] = set()
_GOOD_TOP_FIELDS: set[str] = set()
_CACHE_LIMIT = 50_000

_DEEP = 1  # _Bad.kind of a nesting failure (documents report it their own way)


def _undefined_at(i: int) -> Callable[[str], str]:
    """The message of a MISSING element ``i`` of the array at path ``p``."""
    return lambda p: f"undefined is not a valid Convex value (present at path {p}[{i}])"


class _Bad(Exception):
    """A problem found inside a value; each container frame adds its path segment on the way out."""

    def __init__(self, message: Callable[[str], str], kind: int = 0) -> None:
        self.message = message
        self.kind = kind
        self.segs: list[str] = []

    def render(self, prefix: str = "") -> str:
        return self.message(prefix + "".join(reversed(self.segs)))


def _at(path: str) -> str:
    return f" at path {path}" if path else ""


def _in_table(table: str) -> str:
    return f' in table "{table}"' if table else ""


# ---------------------------------------------------------------------------------------------
# Field names


def _key_problem(k: Any) -> str | None:
    """Why ``k`` cannot be a key of a nested object (None: it can). Empty keys are allowed."""
    if not isinstance(k, str):
        return f"Object keys must be strings, not {type(k).__name__} ({k!r})"
    if k.startswith("$"):
        return f"Field name {k} starts with '$', which is reserved"
    if len(k) > MAX_FIELD_NAME_LENGTH:
        return f"Field name is too long ({len(k)} > maximum {MAX_FIELD_NAME_LENGTH})"
    if not (k.isascii() and _PRINTABLE_ASCII.match(k)):
        bad = next(c for c in k if not " " <= c <= "~")
        return (
            f"Field name {k!r} has invalid character {bad!r}: field names can only contain "
            "printable ASCII characters (code points 32-126)"
        )
    return None


def _check_key(k: Any) -> None:
    problem = _key_problem(k)
    if problem is not None:
        raise _Bad(lambda p: problem + (f" (in the object at path {p})" if p else ""))
    if len(_GOOD_KEYS) > _CACHE_LIMIT:
        _GOOD_KEYS.clear()
    _GOOD_KEYS.add(k)


def check_field_name(name: Any) -> None:
    """Raise InvalidValueError unless ``name`` may be a key of a (nested) Convex object."""
    if isinstance(name, str) and name in _GOOD_KEYS:
        return
    problem = _key_problem(name)
    if problem is not None:
        raise InvalidValueError(problem)


def _top_field_problem(k: Any) -> str | None:
    """Why ``k`` cannot be a top-level field of a user document (None: it can)."""
    if not isinstance(k, str):
        return f"Field names must be strings, not {type(k).__name__} ({k!r})"
    if k.startswith("_"):
        return (
            f"Field '{k}' starts with an underscore, which is only allowed for system fields "
            "like '_id' and '_creationTime' (user fields must not start with _)"
        )
    if k.startswith("$"):
        return f"Field name {k} starts with '$', which is reserved"
    if len(k) > MAX_TOP_LEVEL_FIELD_NAME_LENGTH:
        return (
            f"Field name {k[:20]}... is too long ({len(k)} > maximum "
            f"{MAX_TOP_LEVEL_FIELD_NAME_LENGTH} for a top-level field)"
        )
    if not _IDENTIFIER.match(k):
        return (
            f"Field name {k!r} is not a valid identifier: top-level fields may only contain "
            "ASCII letters, digits and underscores, and must not start with a digit"
        )
    return None


def _check_top_field(k: Any, table: str) -> None:
    problem = _top_field_problem(k)
    if problem is not None:
        raise InvalidValueError(problem + _in_table(table))
    if len(_GOOD_TOP_FIELDS) > _CACHE_LIMIT:
        _GOOD_TOP_FIELDS.clear()
    _GOOD_TOP_FIELDS.add(k)


# ---------------------------------------------------------------------------------------------
# The walk: (value, depth of its parent, nesting limit) -> (canonical value, Convex size)


def _int_to_float(n: int) -> float:
    if _NEG_SAFE <= n <= MAX_SAFE_INT:
        return float(n)
    hint = (
        f"; use cn.Int64({n}) for a 64-bit integer"
        if INT64_MIN <= n <= INT64_MAX
        else " (and outside the Int64 range too)"
    )
    raise _Bad(
        lambda p: f"Integer {n}{_at(p)} is outside ±2^53, the range where a plain int is an "
        f"exact Convex Float64{hint}"
    )


def _bad_string(x: str) -> _Bad:
    return _Bad(lambda p: f"String{_at(p)} is not valid Unicode (it contains a lone surrogate)")


def _walk(x: Any, depth: int, limit: int) -> tuple[Any, int]:
    t = type(x)
    if t is str:
        if x.isascii():
            return x, 2 + len(x)
        try:
            return x, 2 + len(x.encode())
        except UnicodeEncodeError:
            raise _bad_string(x) from None
    if t is float:
        return x, 9
    if t is dict:
        return _walk_dict(x, depth + 1, limit)
    if t is list or t is tuple:
        return _walk_list(x, depth + 1, limit)
    if t is bool or x is None:
        return x, 1
    if t is int:
        return _int_to_float(x), 9
    if t is Int64:
        return x, 9
    if t is bytes:
        return x, 2 + len(x)
    return _walk_other(x, depth, limit)


def _too_deep(depth: int, limit: int) -> _Bad:
    return _Bad(
        lambda p: f"Value is too nested (nested {depth} levels deep > maximum nesting {limit})"
        + _at(p),
        _DEEP,
    )


def _walk_list(x: list[Any] | tuple[Any, ...], depth: int, limit: int) -> tuple[list[Any], int]:
    if depth > limit:
        raise _too_deep(depth, limit)
    n = len(x)
    if n > MAX_ARRAY_LENGTH:
        raise _Bad(
            lambda p: f"Array length is too long ({n} > maximum length {MAX_ARRAY_LENGTH})" + _at(p)
        )
    out: list[Any] = []
    append = out.append
    size = 2
    for e in x:
        t = type(e)
        if t is str and e.isascii():
            size += 2 + len(e)
        elif t is float:
            size += 9
        else:
            if e is MISSING:
                i = len(out)
                raise _Bad(_undefined_at(i))
            try:
                e, s = _walk(e, depth, limit)
            except _Bad as bad:
                bad.segs.append(f"[{len(out)}]")
                raise
            size += s
        append(e)
    return out, size


def _walk_dict(x: dict[Any, Any], depth: int, limit: int) -> tuple[dict[str, Any], int]:
    if depth > limit:
        raise _too_deep(depth, limit)
    out: dict[str, Any] = {}
    size = 2
    good = _GOOD_KEYS
    for k, v in x.items():
        if k not in good:
            _check_key(k)
        t = type(v)
        if t is str and v.isascii():
            size += len(k) + 3 + len(v)
        elif t is float:
            size += len(k) + 10
        elif v is MISSING:
            continue  # {a: undefined} is {}
        else:
            try:
                v, s = _walk(v, depth, limit)
            except _Bad as bad:
                bad.segs.append("." + k)
                raise
            size += len(k) + 1 + s
        out[k] = v
    if len(out) > MAX_OBJECT_FIELDS:
        n = len(out)
        raise _Bad(
            lambda p: f"Object has too many fields ({n} > maximum number {MAX_OBJECT_FIELDS})"
            + _at(p)
        )
    return out, size


_HINTS: dict[str, str] = {
    "set": " (use a list)",
    "frozenset": " (use a list)",
    "datetime": " (use a number of milliseconds since the epoch, e.g. dt.timestamp() * 1000, "
    "or an ISO-8601 string)",
    "date": " (use an ISO-8601 string or a number of milliseconds since the epoch)",
    "time": " (use a string)",
    "timedelta": " (use a number, e.g. td.total_seconds())",
    "Decimal": " (use a float, a cn.Int64 or a string)",
    "Fraction": " (use a float)",
    "UUID": " (use str(uuid))",
    "ndarray": " (use .tolist())",
    "complex": " (use a pair of floats)",
    "mappingproxy": " (use a dict)",
    "OrderedDict": "",
}


def _unsupported(x: Any) -> _Bad:
    t = type(x)
    name = t.__name__
    if isinstance(x, enum.Enum):
        hint = " (use its .value)"
    elif hasattr(x, "__dataclass_fields__"):
        hint = " (use dataclasses.asdict())"
    elif callable(x):
        hint = ""
    else:
        hint = _HINTS.get(name, "")
    return _Bad(lambda p: f"Value{_at(p)} is a Python {name}, which is not a Convex value{hint}")


def _walk_other(x: Any, depth: int, limit: int) -> tuple[Any, int]:
    """The rare cases: undefined, other bytes-likes, numpy scalars, subclasses, ConvexInt64."""
    if x is MISSING:
        raise _Bad(
            lambda p: "undefined is not a valid Convex value"
            + (f" (present at path {p})" if p else "")
        )
    t = type(x)
    if t is bytearray:
        return bytes(x), 2 + len(x)
    if t is memoryview:
        b = x.tobytes()
        return b, 2 + len(b)
    if t.__module__ == "numpy":
        # numpy scalars (float64, int64, bool_, str_) become the Python scalar; arrays do not.
        if getattr(x, "ndim", None) == 0 and hasattr(x, "item"):
            return _walk(x.item(), depth, limit)
        raise _unsupported(x)
    if isinstance(x, enum.Enum) and not isinstance(x, (str, int, float)):
        raise _unsupported(x)
    if isinstance(x, bool):
        return bool(x), 1
    if isinstance(x, str):
        return _walk(str.__str__(x), depth, limit)
    if isinstance(x, Int64):
        return Int64(int(x)), 9
    if isinstance(x, int):
        return _walk(int(x), depth, limit)
    if isinstance(x, float):
        return float.__float__(x), 9
    if isinstance(x, bytes):
        return bytes(x), 2 + len(x)
    if isinstance(x, (list, tuple)):
        return _walk_list(x, depth + 1, limit)
    if isinstance(x, dict):
        return _walk_dict(x, depth + 1, limit)
    inner = getattr(x, "value", None)
    if type(inner) is int:  # the official client's ConvexInt64
        if INT64_MIN <= inner <= INT64_MAX:
            return Int64(inner), 9
        raise _Bad(lambda p: f"Int64 value {inner}{_at(p)} is outside [-2^63, 2^63-1]")
    raise _unsupported(x)


def convex_value(x: Any, *, path: str = "", max_depth: int = MAX_VALUE_NESTING) -> Any:
    """Return ``x`` as a canonical Convex value, or raise InvalidValueError naming the path.

    ``int`` within ±2^53 becomes ``float``, tuples become lists, bytes-likes become ``bytes``,
    ``MISSING`` values of dict entries are dropped (elsewhere they are an error). ``path`` is
    prepended to the paths in error messages.
    """
    t = type(x)
    if t is float or t is bool or x is None or t is Int64 or (t is str and x.isascii()):
        return x
    try:
        return _walk(x, 0, max_depth)[0]
    except _Bad as bad:
        raise InvalidValueError(bad.render(path)) from None


class _NotCanonical(Exception):
    pass


def _copy_canonical(x: Any, depth: int) -> Any:
    """A deep copy of an already-canonical container at nesting ``depth``; _NotCanonical for
    anything ``convex_value`` would convert or reject (the caller then runs it instead)."""
    t = type(x)
    if t is dict:
        if depth > MAX_VALUE_NESTING or len(x) > MAX_OBJECT_FIELDS or not _GOOD_KEYS.issuperset(x):
            raise _NotCanonical  # a key never seen: let convex_value check it
        out = x.copy()  # then only the values that are not immutable scalars are replaced
        for k, v in x.items():
            tv = type(v)
            if tv is float or tv is bool or v is None or (tv is str and v.isascii()):
                continue
            out[k] = _copy_leaf(v, tv, depth)
        return out
    if t is list:
        if depth > MAX_VALUE_NESTING or len(x) > MAX_ARRAY_LENGTH:
            raise _NotCanonical
        items = x.copy()
        for i, v in enumerate(x):
            tv = type(v)
            if tv is float or tv is bool or v is None or (tv is str and v.isascii()):
                continue
            items[i] = _copy_leaf(v, tv, depth)
        return items
    raise _NotCanonical


def _copy_leaf(v: Any, t: type, depth: int) -> Any:
    if t is dict or t is list:
        return _copy_canonical(v, depth + 1)
    if t is Int64 or t is bytes:
        return v
    if t is str:
        try:
            v.encode()
        except UnicodeEncodeError:
            raise _NotCanonical from None
        return v
    raise _NotCanonical  # int, tuple, MISSING, ...


def canonical_copy(x: Any) -> Any:
    """``convex_value(x)``, faster when ``x`` is already canonical (e.g. documents just read).

    Same result and errors: an already-canonical value is deep-copied without the conversion
    and size bookkeeping of ``convex_value``; anything else goes through ``convex_value``.
    """
    t = type(x)
    if t is dict or t is list:
        try:
            return _copy_canonical(x, 1)
        except _NotCanonical:
            pass
    return convex_value(x)


# ---------------------------------------------------------------------------------------------
# Documents


def _raw_nesting(x: Any, cap: int) -> int:
    """Nesting of a raw Python value (containers count 1 + their deepest child), capped."""
    if isinstance(x, dict):
        children: Any = x.values()
    elif isinstance(x, (list, tuple)):
        children = x
    else:
        return 0
    if cap <= 1:
        return 1
    return 1 + max((_raw_nesting(c, cap - 1) for c in children), default=0)


def _document_error(bad: _Bad, raw: dict[str, Any], table: str) -> InvalidValueError:
    if bad.kind == _DEEP:
        nesting = _raw_nesting(raw, MAX_VALUE_NESTING + 1)
        if nesting <= MAX_VALUE_NESTING:
            return InvalidValueError(
                f"Document is too nested (nested {nesting} levels deep > maximum nesting "
                f"{MAX_DOCUMENT_NESTING})" + _at("".join(reversed(bad.segs))) + _in_table(table)
            )
        return InvalidValueError(
            f"Value is too nested (nested {MAX_VALUE_NESTING + 1} levels deep > maximum nesting "
            f"{MAX_VALUE_NESTING})" + _in_table(table)
        )
    return InvalidValueError(bad.render() + _in_table(table))


def _too_large(size: int, table: str) -> InvalidValueError:
    return InvalidValueError(
        f"Value is too large ({format_size(size)} > maximum size {format_size(MAX_DOCUMENT_SIZE)})"
        + (f" for a document{_in_table(table)}" if table else "")
    )


def _too_many_fields(n: int, table: str) -> InvalidValueError:
    return InvalidValueError(
        f"Object has too many fields ({n} > maximum number {MAX_OBJECT_FIELDS}) "
        f"(the document itself){_in_table(table)}"
    )


def normalize_document(raw: Any, *, table: str = "") -> tuple[dict[str, Any], int]:
    """Canonicalise and check a user document to write; return it and its size.

    The size counts the system fields too (``document_size`` of the stored document).
    Top-level names must be identifiers of at most 64 characters not starting with ``_``;
    nesting at most 16 (the document is level 1); size at most 1 MiB.
    """
    if type(raw) is not dict and not isinstance(raw, dict):
        raise InvalidValueError(
            f"Value must be an Object, got {type(raw).__name__}{_in_table(table)}"
        )
    out: dict[str, Any] = {}
    size = 2 + SYSTEM_FIELDS_SIZE
    good = _GOOD_TOP_FIELDS
    for k, v in raw.items():
        if k not in good:
            _check_top_field(k, table)
        t = type(v)
        if t is str and v.isascii():
            size += len(k) + 3 + len(v)
        elif t is float:
            size += len(k) + 10
        elif t is bool or v is None:
            size += len(k) + 2
        elif t is int and _NEG_SAFE <= v <= MAX_SAFE_INT:
            v = float(v)
            size += len(k) + 10
        elif v is MISSING:
            continue
        else:
            try:
                v, s = _walk(v, 1, MAX_DOCUMENT_NESTING)
            except _Bad as bad:
                bad.segs.append("." + k)
                raise _document_error(bad, raw, table) from None
            size += len(k) + 1 + s
        out[k] = v
    if len(out) > MAX_OBJECT_FIELDS:
        raise _too_many_fields(len(out), table)
    if size > MAX_DOCUMENT_SIZE:
        raise _too_large(size, table)
    return out, size


# -- validated documents: the checks of normalize_document, without the copy ----------------
#
# A schema validator already returns a fresh dict of canonical values, so normalizing it again
# would only copy it. These functions make exactly normalize_document's checks (names, nesting,
# lone surrogates, lengths, size: same order, same errors) on such a value without building a
# new one; a value that normalize_document would *change* (an int, a tuple, a MISSING field...)
# raises _NotCanonical and the caller normalizes after all.


def _check_value(x: Any, depth: int, limit: int) -> int:
    """Mirror of ``_walk`` for canonical values: the size, or _Bad, or _NotCanonical."""
    t = type(x)
    if t is str:
        if x.isascii():
            return 2 + len(x)
        try:
            return 2 + len(x.encode())
        except UnicodeEncodeError:
            raise _bad_string(x) from None
    if t is float:
        return 9
    if t is dict:
        return _check_dict(x, depth + 1, limit)
    if t is list:
        return _check_list(x, depth + 1, limit)
    if t is bool or x is None:
        return 1
    if t is Int64:
        return 9
    if t is bytes:
        return 2 + len(x)
    raise _NotCanonical


def _check_list(x: list[Any], depth: int, limit: int) -> int:
    if depth > limit:
        raise _too_deep(depth, limit)
    n = len(x)
    if n > MAX_ARRAY_LENGTH:
        raise _Bad(
            lambda p: f"Array length is too long ({n} > maximum length {MAX_ARRAY_LENGTH})" + _at(p)
        )
    size = 2
    for i, e in enumerate(x):
        t = type(e)
        if t is str and e.isascii():
            size += 2 + len(e)
        elif t is float:
            size += 9
        else:
            if e is MISSING:
                raise _Bad(_undefined_at(i))
            try:
                size += _check_value(e, depth, limit)
            except _Bad as bad:
                bad.segs.append(f"[{i}]")
                raise
    return size


def _check_dict(x: dict[Any, Any], depth: int, limit: int) -> int:
    if depth > limit:
        raise _too_deep(depth, limit)
    size = 2
    good = _GOOD_KEYS
    for k, v in x.items():
        if k not in good:
            _check_key(k)
        t = type(v)
        if t is str and v.isascii():
            size += len(k) + 3 + len(v)
        elif t is float:
            size += len(k) + 10
        else:
            try:
                size += len(k) + 1 + _check_value(v, depth, limit)
            except _Bad as bad:
                bad.segs.append("." + k)
                raise
    if len(x) > MAX_OBJECT_FIELDS:
        n = len(x)
        raise _Bad(
            lambda p: f"Object has too many fields ({n} > maximum number {MAX_OBJECT_FIELDS})"
            + _at(p)
        )
    return size


def check_canonical_document(doc: dict[str, Any], *, table: str = "") -> int | None:
    """``normalize_document(doc)[1]`` for a fresh, canonical ``doc``, without copying it.

    Raises what ``normalize_document`` raises; returns None when ``doc`` holds something
    ``normalize_document`` would convert (then call it instead).
    """
    out_size = 2 + SYSTEM_FIELDS_SIZE
    good = _GOOD_TOP_FIELDS
    try:
        for k, v in doc.items():
            if k not in good:
                _check_top_field(k, table)
            t = type(v)
            if t is str and v.isascii():
                out_size += len(k) + 3 + len(v)
            elif t is float:
                out_size += len(k) + 10
            elif t is bool or v is None:
                out_size += len(k) + 2
            else:
                try:
                    out_size += len(k) + 1 + _check_value(v, 1, MAX_DOCUMENT_NESTING)
                except _Bad as bad:
                    bad.segs.append("." + k)
                    raise _document_error(bad, doc, table) from None
    except _NotCanonical:
        return None
    if len(doc) > MAX_OBJECT_FIELDS:
        raise _too_many_fields(len(doc), table)
    if out_size > MAX_DOCUMENT_SIZE:
        raise _too_large(out_size, table)
    return out_size


def _measure(v: Any, depth: int) -> int:
    """Size of a canonical value; raises _Bad when a container sits deeper than the document limit."""
    t = type(v)
    if t is str:
        return 2 + (len(v) if v.isascii() else len(v.encode("utf-8", "surrogatepass")))
    if t is float or t is Int64:
        return 9
    if t is bool or v is None:
        return 1
    if t is bytes:
        return 2 + len(v)
    if t is list:
        depth += 1
        if depth > MAX_DOCUMENT_NESTING:
            raise _too_deep(depth, MAX_DOCUMENT_NESTING)
        n = 2
        for i, e in enumerate(v):
            try:
                n += _measure(e, depth)
            except _Bad as bad:
                bad.segs.append(f"[{i}]")
                raise
        return n
    if t is dict:
        depth += 1
        if depth > MAX_DOCUMENT_NESTING:
            raise _too_deep(depth, MAX_DOCUMENT_NESTING)
        n = 2
        for k, e in v.items():
            try:
                n += len(k) + 1 + _measure(e, depth)
            except _Bad as bad:
                bad.segs.append("." + k)
                raise
        return n
    raise _Bad(lambda p: f"Value{_at(p)} is not a canonical Convex value ({t.__name__})")


def check_document(doc: dict[str, Any], *, table: str = "") -> int:
    """Check an already-canonical user document (no system fields) and return its size.

    Same rules as ``normalize_document`` (top-level names, nesting 16, 1 MiB with the system
    fields counted); nested keys and values are assumed canonical.
    """
    if not isinstance(doc, dict):
        raise InvalidValueError(f"Value must be an Object, got {type(doc).__name__}{_in_table(table)}")
    good = _GOOD_TOP_FIELDS
    size = 2 + SYSTEM_FIELDS_SIZE
    for k, v in doc.items():
        if k not in good:
            _check_top_field(k, table)
        try:
            size += len(k) + 1 + _measure(v, 1)
        except _Bad as bad:
            bad.segs.append("." + k)
            raise _document_error(bad, doc, table) from None
    if len(doc) > MAX_OBJECT_FIELDS:
        raise _too_many_fields(len(doc), table)
    if size > MAX_DOCUMENT_SIZE:
        raise _too_large(size, table)
    return size
