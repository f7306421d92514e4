"""Document ids in Convex's own format (``DeveloperDocumentId``, crates/value/src/id_v6.rs).

``id = base32( VInt(table_number) ‖ 16-byte internal id ‖ footer )`` with
``footer = fletcher16(the bytes before it) ^ version`` (version 0, little-endian), base32 being
the bit stream most-significant bit first over the lowercase Crockford alphabet, unpadded.
The table number (1 .. 2^32-1) is the VInt: 7 bits a byte, low bits first, high bit = "more".
Ids are 31 characters for tables 1..127 and 32 for 128..16383.
"""

from __future__ import annotations

import os
import re
from itertools import accumulate

from convex_notebook.errors import InvalidValueError

__all__ = ["decode_id", "encode_id", "id_table_number", "ids_from_internals", "is_id", "new_id"]

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
# Python's int(s, 32) digits, to decode a whole id in one C call.
_TO_INT_DIGITS = str.maketrans(_ALPHABET, "0123456789abcdefghijklmnopqrstuv")
_ID_CHARS = re.compile(r"[0-9a-hjkmnp-tv-z]+\Z")
# All 10-bit groups as two characters: encoding takes one lookup per 10 bits.
_PAIRS = [a + b for a in _ALPHABET for b in _ALPHABET]
_INTERNAL_LEN = 16
_VERSION = 0
# encoded length -> binary length, for the valid binary lengths 19..23 (VInt of 1..5 bytes)
_BINARY_LEN = {(n * 8 + 4) // 5: n for n in range(19, 24)}
_VINT_CACHE: dict[int, bytes] = {}
# Recently seen ids -> decoded (ids are decoded again and again: db.get, v.id, index bounds).
_DECODED: dict[str, tuple[int, bytes]] = {}
_DECODED_LIMIT = 20_000


def _vint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _fletcher16(buf: bytes) -> int:
    # c0 = sum of bytes; c1 = sum of the running sums = Σ (len - i) * byte_i (both mod 256)
    return ((sum(accumulate(buf)) & 0xFF) << 8) | (sum(buf) & 0xFF)


def _make_base32(nbytes: int):  # type: ignore[no-untyped-def]
    """An unrolled encoder for ``nbytes`` bytes: one 10-bit pair lookup per two characters.

    Generated because a loop or comprehension over the shifts costs twice as much.
    """
    nbits = nbytes * 8
    nchars = (nbits + 4) // 5
    npairs = (nchars + 1) // 2  # pad to whole pairs, then drop the extra character if any
    lookups = ", ".join(f"p[n >> {shift} & 1023]" for shift in range((npairs - 1) * 10, -1, -10))
    cut = "" if nchars == npairs * 2 else "[:-1]"
    source = (
        "def encode(buf, p=_PAIRS, from_bytes=int.from_bytes):\n"
        f"    n = from_bytes(buf, 'big') << {npairs * 10 - nbits}\n"
        f"    return ''.join(({lookups})){cut}\n"
    )
    namespace = {"_PAIRS": _PAIRS}
    exec(source, namespace)  # noqa: S102 - generated above from integers only
    return namespace["encode"]


_BASE32 = {n: _make_base32(n) for n in range(19, 24)}


def _prefix(table_number: int) -> bytes:
    prefix = _VINT_CACHE.get(table_number)
    if prefix is None:
        if type(table_number) is not int or not 0 < table_number < 1 << 32:
            raise InvalidValueError(f"Table number must be in 1..2^32-1, got {table_number!r}")
        prefix = _vint(table_number)
        if len(_VINT_CACHE) < 100_000:
            _VINT_CACHE[table_number] = prefix
    return prefix


def encode_id(table_number: int, internal: bytes) -> str:
    """The id string of the document ``internal`` (16 bytes) of table ``table_number``."""
    if len(internal) != _INTERNAL_LEN:
        raise InvalidValueError(f"Internal id must be 16 bytes, got {len(internal)}")
    body = _prefix(table_number) + (internal if type(internal) is bytes else bytes(internal))
    # The footer is fletcher16(body) ^ version, little-endian: (c0 ^ version, c1), inlined.
    c0 = (sum(body) & 0xFF) ^ _VERSION
    c1 = sum(accumulate(body)) & 0xFF
    return _BASE32[len(body) + 2](body + bytes((c0, c1)))


def new_id(table_number: int) -> str:
    """A fresh random id for a document of table ``table_number``."""
    internal = os.urandom(_INTERNAL_LEN)
    prefix = _prefix(table_number)
    body = prefix + internal
    s = _BASE32[len(body) + 2](body + (_fletcher16(body) ^ _VERSION).to_bytes(2, "little"))
    if len(_DECODED) < _DECODED_LIMIT:
        _DECODED[s] = (table_number, internal)  # a new document is usually read back soon
    return s


def decode_id(s: str) -> tuple[int, bytes] | None:
    """``(table_number, internal_id)`` of a valid id string, else None.

    Stricter than Convex only where Convex accepts several spellings of one id (non-zero padding
    bits, an over-long VInt): every id has exactly one valid string.
    """
    if type(s) is not str:
        return None
    known = _DECODED.get(s)
    if known is not None:
        return known
    nbytes = _BINARY_LEN.get(len(s))
    if nbytes is None or not _ID_CHARS.match(s):
        return None
    pad = len(s) * 5 - nbytes * 8
    n = int(s.translate(_TO_INT_DIGITS), 32)
    if n & ((1 << pad) - 1):
        return None
    buf = (n >> pad).to_bytes(nbytes, "big")
    b0 = buf[0]
    if b0 < 0x80:
        table, pos = b0, 1
    elif buf[1] < 0x80:  # 128..16383: Convex's user tables
        table, pos = (b0 & 0x7F) | (buf[1] << 7), 2
    else:
        table = 0
        pos = 0
        while True:
            byte = buf[pos]
            table |= (byte & 0x7F) << (7 * pos)
            pos += 1
            if byte < 0x80:
                break
            if pos == 5:
                return None
    if pos + _INTERNAL_LEN + 2 != nbytes or table == 0 or table >= 1 << 32:
        return None
    if pos > 1 and buf[pos - 1] == 0:
        return None  # over-long VInt
    end = pos + _INTERNAL_LEN
    if _fletcher16(buf[:end]) ^ _VERSION != int.from_bytes(buf[end:], "little"):
        return None
    decoded = (table, buf[pos:end])
    if len(_DECODED) >= _DECODED_LIMIT:
        _DECODED.clear()
    _DECODED[s] = decoded
    return decoded


def id_table_number(s: str) -> int | None:
    """The table number encoded in a valid id, else None."""
    decoded = decode_id(s)
    return None if decoded is None else decoded[0]


def is_id(s: object) -> bool:
    """Whether ``s`` is a valid id string (of any table)."""
    return type(s) is str and decode_id(s) is not None


# -- many ids at once, in ascending order (bulk imports) ---------------------------------------

# 5-bit value -> its character (the tables below give each character's 5-bit value).
_DIGITS = bytes.maketrans(bytes(range(32)), _ALPHABET.encode())


def _char_tables() -> list[tuple[int, bytes, int, bytes | None]]:
    """For each of the 8 characters of a 5-byte group: (byte, table, next byte, table).

    Character k holds bits 5k..5k+4 of the group (most significant first): the first table
    maps its first byte to its share of those bits, the second (None when one byte holds all
    five bits) maps the following byte to the rest.
    """
    out: list[tuple[int, bytes, int, bytes | None]] = []
    for k in range(8):
        first, offset = divmod(5 * k, 8)
        if offset <= 3:  # all five bits in one byte
            shift = 3 - offset
            out.append((first, bytes((b >> shift) & 31 for b in range(256)), 0, None))
        else:
            high = 8 - offset  # bits from the first byte, then 5 - high from the next
            low = 5 - high
            t1 = bytes((b & ((1 << high) - 1)) << low for b in range(256))
            t2 = bytes(b >> (8 - low) for b in range(256))
            out.append((first, t1, first + 1, t2))
    return out


_CHAR_TABLES = _char_tables()


def _base32_bulk(buf: bytes) -> bytes:
    """Unpadded base32 (Crockford digits, most significant bit first) of ``len(buf) % 5 == 0``
    bytes, in whole-buffer operations: each character position is a slice of the input
    mapped through a table; the two parts of a character that spans two bytes are ORed
    as big integers (their bits do not overlap)."""
    groups = len(buf) // 5
    first = bytearray(8 * groups)
    second = bytearray(8 * groups)
    for k, (a, t1, b, t2) in enumerate(_CHAR_TABLES):
        first[k::8] = buf[a::5].translate(t1)
        if t2 is not None:
            second[k::8] = buf[b::5].translate(t2)
    merged = int.from_bytes(first, "big") | int.from_bytes(second, "big")
    return merged.to_bytes(8 * groups, "big").translate(_DIGITS)


def _lane_sums(buf: bytes, width: int, weights: list[int]) -> bytes:
    """For each ``width``-byte chunk of ``buf``: ``Σ weights[j] * chunk[j]`` mod 256, one byte each.

    Big-integer arithmetic instead of a Python loop per chunk: every byte gets a 16-bit lane
    (no carries: a lane sum stays below 2^16), one multiplication adds each chunk's weighted
    bytes into its first lane, and a slice reads those lanes' low bytes.
    """
    if max(weights) * 255 * width >= 1 << 16:
        raise ValueError("lane sums would overflow")
    wide = bytearray(2 * len(buf))
    wide[1::2] = buf
    multiplier = sum(w << (16 * j) for j, w in enumerate(weights))
    total = int.from_bytes(wide, "big") * multiplier
    out = total.to_bytes(len(wide) + 2 * (width - 1), "big")
    return out[2 * (width - 1) + 1 :: 2 * width]


def ids_from_internals(table_number: int, internal: bytes) -> list[str]:
    """The ids of table ``table_number`` whose internal ids are ``internal`` (16 bytes each,
    concatenated), in that order. In whole-buffer operations when the binary ids are a
    multiple of 5 bytes (they then encode to base32 independently, so one pass does them all:
    tables 128..16383, every user table); id by id otherwise."""
    r = _INTERNAL_LEN
    if len(internal) % r:
        raise InvalidValueError(f"Internal ids are {r} bytes each")
    count = len(internal) // r
    head = _prefix(table_number)
    width = len(head) + r + 2
    if width % 5 or count == 0:
        return [encode_id(table_number, internal[i : i + r]) for i in range(0, len(internal), r)]
    # fletcher16 over head ‖ internal: the head's part once, the rest per lane.
    s0 = sum(head)
    s1 = r * s0 + sum(accumulate(head))
    c0 = _lane_sums(internal, r, [1] * r).translate(bytes(((s0 + x) & 0xFF) ^ _VERSION for x in range(256)))
    c1 = _lane_sums(internal, r, list(range(r, 0, -1))).translate(bytes((s1 + x) & 0xFF for x in range(256)))
    body = bytearray(width * count)
    for p, byte in enumerate(head):
        body[p::width] = bytes((byte,)) * count
    for p in range(r):
        body[len(head) + p :: width] = internal[p::r]
    body[width - 2 :: width] = c0
    body[width - 1 :: width] = c1
    text = _base32_bulk(bytes(body)).decode("ascii")
    n = width * 8 // 5
    return [text[i : i + n] for i in range(0, len(text), n)]
