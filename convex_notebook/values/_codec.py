"""JSON codecs: ``convex_encoded_json`` (lossless, the wire format), Convex's lossy "json"
export format, and the storage text of documents.
"""

from __future__ import annotations

import binascii
import json
import math
import struct
from collections.abc import Callable
from typing import Any

from convex_notebook.errors import InvalidValueError

from ._check import (
    _GOOD_KEYS,
    MAX_ARRAY_LENGTH,
    MAX_OBJECT_FIELDS,
    MAX_VALUE_NESTING,
    _at,
    _Bad,
    _check_key,
    convex_value,
)
from ._model import MISSING, Int64

__all__ = [
    "dumps",
    "dumps_document",
    "dumps_plain_document",
    "from_json",
    "loads",
    "loads_document",
    "loads_documents",
    "to_clean_json",
    "to_json",
]

_pack_i64 = struct.Struct("<q").pack
_unpack_i64 = struct.Struct("<q").unpack
_pack_f64 = struct.Struct("<d").pack
_unpack_f64 = struct.Struct("<d").unpack
_copysign = math.copysign
_b2a = binascii.b2a_base64
_a2b = binascii.a2b_base64

# Prebuilt: json.dumps() with keyword arguments builds a new encoder on every call.
_ENCODER = json.JSONEncoder(allow_nan=False, separators=(",", ":"), ensure_ascii=False)
_encode = _ENCODER.encode
try:  # JSONEncoder.encode builds a C encoder on every call: build it once (a third faster)
    from json.encoder import (  # type: ignore[attr-defined]  # C accelerators typeshed omits
        c_encode_basestring,
        c_make_encoder,
    )

    if c_make_encoder is not None and c_encode_basestring is not None:
        _C_ENCODER = c_make_encoder(
            None, _ENCODER.default, c_encode_basestring, None, ":", ",", False, False, False
        )
        _join = "".join

        def _encode(o: Any) -> str:
            return _join(_C_ENCODER(o, 0))
except ImportError:  # pragma: no cover - pure-Python json
    pass
try:
    from orjson import dumps as _orjson_dumps
except ImportError:  # pragma: no cover - orjson is a dependency
    _orjson_dumps = None  # type: ignore[assignment]
_decoder = json.JSONDecoder()
_decode = _decoder.decode
# The scanner under decode() (C when available). Stored documents are our own compact text, so
# calling it directly skips decode()'s two Python frames and whitespace matching: half the cost.
_scan_once = _decoder.scan_once  # type: ignore[attr-defined]  # set by JSONDecoder.__init__


def _b64(b: bytes) -> str:
    return _b2a(b, newline=False).decode("ascii")


def _unb64(s: Any, what: str) -> bytes:
    if type(s) is not str:
        raise InvalidValueError(f"{what} must hold a base64 string, got {type(s).__name__}")
    try:
        return _a2b(s, strict_mode=True)
    except (binascii.Error, ValueError):
        raise InvalidValueError(f"{what} holds invalid base64: {s[:40]!r}") from None


def _special_float(v: float) -> dict[str, str]:
    return {"$float": _b64(_pack_f64(v))}


def to_json(v: Any) -> Any:
    """A Convex value as ``convex_encoded_json`` (JSON-ready Python objects)."""
    t = type(v)
    if t is str or t is bool or v is None:
        return v
    if t is float:
        if v - v == 0.0 and (v != 0.0 or _copysign(1.0, v) > 0.0):
            return v
        return _special_float(v)  # NaN, ±inf, -0.0
    if t is dict:
        return {k: to_json(e) for k, e in v.items() if e is not MISSING}
    if t is list:
        return [e if type(e) is str else to_json(e) for e in v]
    if t is Int64:
        return {"$integer": _b64(_pack_i64(v))}
    if t is bytes:
        return {"$bytes": _b64(v)}
    return to_json(convex_value(v))  # int, tuple, bytearray, ...: canonicalise first


def to_clean_json(v: Any) -> Any:
    """Convex's lossy "json" format: int64 → decimal string, bytes → base64 string,
    NaN/±inf → "NaN"/"Infinity"/"-Infinity" (other floats, -0.0 included, stay numbers).
    """
    t = type(v)
    if t is str or t is bool or v is None:
        return v
    if t is float:
        if v - v == 0.0:
            return v
        if math.isnan(v):
            return "NaN"
        return "Infinity" if v > 0 else "-Infinity"
    if t is dict:
        return {k: to_clean_json(e) for k, e in v.items() if e is not MISSING}
    if t is list:
        return [to_clean_json(e) for e in v]
    if t is Int64:
        return int.__repr__(v)
    if t is bytes:
        return _b64(v)
    return to_clean_json(convex_value(v))


def _special(key: str, payload: Any) -> Any:
    """Decode a one-key ``{"$...": ...}`` object."""
    if key == "$integer":
        raw = _unb64(payload, "$integer")
        if len(raw) != 8:
            raise InvalidValueError(f"Received {len(raw)} bytes, expected 8 for $integer")
        return Int64(_unpack_i64(raw)[0])
    if key == "$float":
        raw = _unb64(payload, "$float")
        if len(raw) != 8:
            raise InvalidValueError(f"Received {len(raw)} bytes, expected 8 for $float")
        f = _unpack_f64(raw)[0]
        # As Convex's server: only NaN, ±inf and ±0 may be wrapped; a normal number must not be.
        if f - f == 0.0 and f != 0.0:
            raise InvalidValueError(f"Float64 {f!r} should be encoded as a number, not as $float")
        return f
    if key == "$bytes":
        return _unb64(payload, "$bytes")
    if key in ("$set", "$map"):
        kind = "Set" if key == "$set" else "Map"
        raise InvalidValueError(f"Received a {kind}, which is no longer supported as a Convex type")
    raise InvalidValueError(f"Field name {key} starts with '$', which is reserved")


def _from(x: Any, depth: int) -> Any:
    t = type(x)
    if t is str:
        if not x.isascii():
            try:
                x.encode()
            except UnicodeEncodeError:  # json.loads turns "\ud800" escapes into lone surrogates
                raise _Bad(
                    lambda p: f"String{_at(p)} is not valid Unicode (it contains a lone surrogate)"
                ) from None
        return x
    if t is float or t is bool or x is None:
        return x
    if t is int:
        try:
            return float(x)  # JSON numbers are Float64
        except OverflowError:
            return math.inf if x > 0 else -math.inf  # as JavaScript's JSON.parse
    if t is dict:
        if len(x) == 1:
            for k in x:
                if type(k) is str and k[:1] == "$":
                    try:
                        return _special(k, x[k])
                    except InvalidValueError as exc:
                        raise _Bad(_with_path(str(exc))) from None
        depth += 1
        if depth > MAX_VALUE_NESTING:
            raise _Bad(
                lambda p: f"Value is too nested (nested {depth} levels deep > maximum nesting "
                f"{MAX_VALUE_NESTING})" + _at(p)
            )
        if len(x) > MAX_OBJECT_FIELDS:
            n = len(x)
            raise _Bad(
                lambda p: f"Object has too many fields ({n} > maximum number {MAX_OBJECT_FIELDS})"
                + _at(p)
            )
        if not _GOOD_KEYS.issuperset(x):
            for k in x:
                if k not in _GOOD_KEYS:
                    _check_key(k)
        out = x.copy()  # then only the values that are not plain scalars are replaced
        for k, e in x.items():
            te = type(e)
            if te is float or te is bool or e is None or (te is str and e.isascii()):
                continue
            try:
                out[k] = _from(e, depth)
            except _Bad as bad:
                bad.segs.append("." + k)
                raise
        return out
    if t is list:
        depth += 1
        if depth > MAX_VALUE_NESTING:
            raise _Bad(
                lambda p: f"Value is too nested (nested {depth} levels deep > maximum nesting "
                f"{MAX_VALUE_NESTING})" + _at(p)
            )
        if len(x) > MAX_ARRAY_LENGTH:
            n = len(x)
            raise _Bad(
                lambda p: f"Array length is too long ({n} > maximum length {MAX_ARRAY_LENGTH})"
                + _at(p)
            )
        items = []
        for i, e in enumerate(x):
            try:
                items.append(_from(e, depth))
            except _Bad as bad:
                bad.segs.append(f"[{i}]")
                raise
        return items
    raise _Bad(lambda p: f"Value{_at(p)} is a Python {t.__name__}, which is not JSON")


def from_json(obj: Any) -> Any:
    """Decode ``convex_encoded_json`` (already parsed by ``json.loads``) into a Convex value.

    JSON numbers are Float64; ``{"$integer"|"$float"|"$bytes": ...}`` with exactly one key are
    decoded; keys, nesting (64) and container lengths are checked.
    """
    try:
        return _from(obj, 0)
    except _Bad as bad:
        raise InvalidValueError(bad.render()) from None


def dumps(v: Any) -> str:
    """Compact ``convex_encoded_json`` text of a value (never bare NaN/Infinity tokens)."""
    return _encode(to_json(v))


def _with_path(message: str) -> Callable[[str], str]:
    return lambda p: message + _at(p)


def loads(s: str | bytes) -> Any:
    """Parse ``convex_encoded_json`` text into a Convex value."""
    try:
        obj = _decode(s if isinstance(s, str) else s.decode())
    except ValueError as e:
        raise InvalidValueError(f"Invalid JSON: {e}") from None
    return from_json(obj)


# ---------------------------------------------------------------------------------------------
# Storage: most documents are "plain", i.e. json.loads alone gives them back exactly.


def _plain(v: Any) -> bool:
    """True when ``json.loads(json.dumps(v))`` reproduces ``v`` (no int64, bytes, NaN/inf/-0.0)."""
    t = type(v)
    if t is str or t is bool or v is None:
        return True
    if t is float:
        return v - v == 0.0 and (v != 0.0 or _copysign(1.0, v) > 0.0)
    if t is list:
        for e in v:
            te = type(e)
            if te is str or (te is float and e - e == 0.0 and e != 0.0):
                continue
            if not _plain(e):
                return False
        return True
    if t is dict:
        for e in v.values():
            te = type(e)
            if te is str or (te is float and e - e == 0.0 and e != 0.0):
                continue
            if not _plain(e):
                return False
        return True
    return False


def dumps_document(doc: dict[str, Any]) -> tuple[str, bool]:
    """The storage text of a canonical document, and whether it is plain JSON.

    ``plain`` is True when ``json.loads(text)`` gives the document back exactly; otherwise
    the text is ``convex_encoded_json`` and needs ``from_json``.
    """
    for v in doc.values():
        t = type(v)
        if t is str or (t is float and v - v == 0.0 and v != 0.0) or t is bool or v is None:
            continue
        if not _plain(v):
            # orjson, as for plain documents, so every stored text spells a float alike.
            return dumps_plain_document(to_json(doc)), False
    return dumps_plain_document(doc), True


def json_bytes(value: Any) -> bytes | None:
    """``value`` as compact JSON by orjson, or None when orjson refuses it (bytes, Int64, a
    lone surrogate, an integer past 64 bits) or is missing: for quick size bounds."""
    if _orjson_dumps is None:
        return None
    try:
        return _orjson_dumps(value)
    except TypeError:  # orjson.JSONEncodeError
        return None


def finite_float_texts(values: list[float]) -> list[str]:
    """The JSON text of each of ``values`` (finite floats) as ``dumps_document`` spells it
    (orjson's ``1e-7`` where repr says ``1e-07``): one orjson call over the list, split at
    its commas, seven times faster than ``repr`` float by float."""
    text = json_bytes(values)
    if text is None:
        return list(map(float.__repr__, values))
    return text[1:-1].decode().split(",") if values else []


def dumps_plain_document(doc: dict[str, Any]) -> str:
    """``dumps_document(doc)[0]`` for a document already known to be plain JSON.

    orjson when it takes the document (five times faster than json on a small one; the text
    differs only in how it spells some exponents, e.g. ``1e-7``, which every JSON reader
    reads as the same number), else json: orjson refuses what json takes, such as a lone
    surrogate in a string or an integer past 64 bits.
    """
    text = json_bytes(doc)
    return text.decode() if text is not None else _encode(doc)


def _from_stored(x: Any) -> Any:
    """Decode text we wrote ourselves: only the ``$`` wrappers need work, nothing is re-checked."""
    t = type(x)
    if t is dict:
        if len(x) == 1:
            for k in x:
                if k[:1] == "$":
                    return _special(k, x[k])
        return {k: _from_stored(e) for k, e in x.items()}
    if t is list:
        return [_from_stored(e) for e in x]
    if t is int:
        return float(x)
    return x


def _load_stored(text: str) -> Any:
    """``json.loads(text)`` for text we stored (compact JSON), via the scanner directly."""
    try:
        value, end = _scan_once(text, 0)
        if end == len(text):
            return value
    except StopIteration:
        pass
    return _decode(text)  # not compact JSON after all: the full parser decides


def loads_document(text: str, plain: int) -> dict[str, Any]:
    """Inverse of ``dumps_document``."""
    if plain:
        return _load_stored(text)
    return _from_stored(_load_stored(text))


def loads_documents(rows: list[tuple[bytes, str, int]]) -> list[dict[str, Any]]:
    """``loads_document`` of each ``(key, text, plain)`` row: a scan's batch, in one loop."""
    scan = _scan_once
    out: list[dict[str, Any]] = []
    append = out.append
    for _key, text, plain in rows:
        try:
            doc, end = scan(text, 0)
        except StopIteration:
            end = -1
        if end != len(text) or not plain:
            doc = loads_document(text, plain)
        append(doc)
    return out
