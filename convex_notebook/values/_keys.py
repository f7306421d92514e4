"""Order-preserving binary encoding of Convex values (index keys, cursors, sorting).

``memcmp`` order of the encodings is Convex's total order. Every element starts with a tag
byte, and every encoding is self-delimiting, so a concatenation (a key tuple) compares element
by element, a shorter tuple first, like the FoundationDB tuple layer:

* tags: undefined 01, null 02, int64 03, float64 04, false 05, true 06, string 07, bytes 08,
  array 09, object 0A;
* int64: 8 bytes big-endian with the sign bit flipped (signed order);
* float64: IEEE totalOrder (-NaN < -inf < ... < -0.0 < 0.0 < ... < inf < NaN): the sign bit
  flipped for positives, all bits flipped for negatives;
* string (UTF-8) and bytes: 00 escaped as 00 FF, then a 00 terminator;
* array: the elements, then 00; object: per field in sorted order 01, the key as a string
  body, the value; then 00. (A terminator 00 sorts below any element tag, so a prefix is first.)
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any

from convex_notebook.errors import InvalidValueError

from ._model import MISSING, Int64

__all__ = ["decode_key", "encode_key", "encode_value", "prefix_end"]

_pack_tag_u64 = struct.Struct(">BQ").pack
_pack_f64 = struct.Struct(">d").pack
_unpack_f64 = struct.Struct(">d").unpack
_unpack_u64 = struct.Struct(">Q").unpack
_SIGN = 1 << 63
_ALL = (1 << 64) - 1
_int_add = int.__add__  # Int64 + 2^63 on purpose overflows Int64: use int arithmetic

T_MISSING, T_NULL, T_INT64, T_FLOAT64, T_FALSE, T_TRUE = 1, 2, 3, 4, 5, 6
T_STRING, T_BYTES, T_ARRAY, T_OBJECT = 7, 8, 9, 10

_NULL = b"\x02"
_FALSE = b"\x05"
_TRUE = b"\x06"
_END = b"\x00"


def _float_key(f: float) -> bytes:
    n = _unpack_u64(_pack_f64(f))[0]
    return _pack_tag_u64(T_FLOAT64, n ^ _ALL if n & _SIGN else n | _SIGN)


def _str_key(s: str) -> bytes:
    if "\x00" in s:
        return b"\x07" + s.encode().replace(b"\x00", b"\x00\xff") + b"\x00"
    return b"\x07%s\x00" % s.encode()


def _bytes_key(b: bytes) -> bytes:
    if b"\x00" in b:
        b = b.replace(b"\x00", b"\x00\xff")
    return b"\x08%s\x00" % b


def _encode_into(v: Any, out: list[bytes]) -> None:
    t = type(v)
    if t is str:
        out.append(_str_key(v))
    elif t is float:
        out.append(_float_key(v))
    elif t is Int64:
        out.append(_pack_tag_u64(T_INT64, _int_add(v, _SIGN)))
    elif t is bool:
        out.append(_TRUE if v else _FALSE)
    elif v is None:
        out.append(_NULL)
    elif t is list:
        out.append(b"\x09")
        for e in v:
            _encode_into(e, out)
        out.append(_END)
    elif t is dict:
        out.append(b"\x0a")
        for k in sorted(v):
            e = v[k]
            if e is MISSING:
                continue
            out.append(b"\x01" + _str_key(k)[1:])
            _encode_into(e, out)
        out.append(_END)
    elif t is bytes:
        out.append(_bytes_key(v))
    elif v is MISSING:
        out.append(b"\x01")
    else:
        _encode_into(_canonical(v), out)


def _canonical(v: Any) -> Any:
    from ._check import (
        convex_value,  # a plain int, tuple, ...: canonicalise first (rare)
    )

    return convex_value(v)


def encode_value(v: Any) -> bytes:
    """The order-preserving encoding of one Convex value (``MISSING`` allowed: sorts lowest)."""
    t = type(v)
    try:
        if t is str:
            if "\x00" in v:
                return b"\x07" + v.encode().replace(b"\x00", b"\x00\xff") + b"\x00"
            return b"\x07%s\x00" % v.encode()
        if t is float:
            n = _unpack_u64(_pack_f64(v))[0]
            return _pack_tag_u64(T_FLOAT64, n ^ _ALL if n & _SIGN else n | _SIGN)
        if t is Int64:
            return _pack_tag_u64(T_INT64, _int_add(v, _SIGN))
        if t is bool:
            return _TRUE if v else _FALSE
        if v is None:
            return _NULL
        if v is MISSING:
            return b"\x01"
        out: list[bytes] = []
        _encode_into(v, out)
        return b"".join(out)
    except UnicodeEncodeError:
        raise InvalidValueError("String is not valid Unicode (it contains a lone surrogate)") from None


def encode_key(values: Sequence[Any]) -> bytes:
    """Encode a tuple of values (e.g. an index key); tuples compare element by element."""
    return b"".join([encode_value(v) for v in values])


def prefix_end(prefix: bytes) -> bytes:
    """The smallest key above every key that starts with ``prefix`` (a run of whole elements)."""
    return prefix + b"\xff"  # no element starts with an FF tag


def _read_escaped(b: bytes, i: int) -> tuple[bytes, int]:
    """Read an escaped, 00-terminated body starting at ``i``; return it and the index after it."""
    j = b.index(0, i)
    while j + 1 < len(b) and b[j + 1] == 0xFF:
        j = b.index(0, j + 2)
    body = b[i:j]
    if b"\x00" in body:
        body = body.replace(b"\x00\xff", b"\x00")
    return body, j + 1


def _decode_one(b: bytes, i: int) -> tuple[Any, int]:
    tag = b[i]
    i += 1
    if tag == T_STRING:
        body, i = _read_escaped(b, i)
        return body.decode(), i
    if tag == T_FLOAT64:
        n = _unpack_u64(b[i : i + 8])[0]
        n = n ^ _SIGN if n & _SIGN else n ^ _ALL
        return _unpack_f64(n.to_bytes(8, "big"))[0], i + 8
    if tag == T_INT64:
        return Int64(_unpack_u64(b[i : i + 8])[0] - _SIGN), i + 8
    if tag == T_NULL:
        return None, i
    if tag == T_FALSE:
        return False, i
    if tag == T_TRUE:
        return True, i
    if tag == T_BYTES:
        return _read_escaped(b, i)
    if tag == T_ARRAY:
        items = []
        while b[i] != 0:
            item, i = _decode_one(b, i)
            items.append(item)
        return items, i + 1
    if tag == T_OBJECT:
        obj = {}
        while b[i] == 1:
            key, i = _read_escaped(b, i + 1)
            obj[key.decode()], i = _decode_one(b, i)
        if b[i] != 0:
            raise ValueError(f"bad object field marker {b[i]:#x}")
        return obj, i + 1
    if tag == T_MISSING:
        return MISSING, i
    raise ValueError(f"unknown tag {tag:#x}")


def decode_key(b: bytes) -> list[Any]:
    """Decode a concatenation of encoded values back into the list of values."""
    out = []
    i = 0
    try:
        while i < len(b):
            value, i = _decode_one(b, i)
            out.append(value)
    except (IndexError, ValueError, struct.error) as e:
        raise InvalidValueError(f"Malformed key at byte {i}: {e}") from None
    return out
