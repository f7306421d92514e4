"""How a document is stored: its key, its text, and how ids find it.

A document's storage key is its ``by_creation_time`` key, ``encode(_creationTime) ‖
encode(_id)``: the documents table *is* that index (the order every table query defaults to),
and every other index entry ends with it. The text holds the user fields only (``_id`` and
``_creationTime`` are in the key): one B-tree row per inserted document, about half the text.

``by_id`` is found from the id itself: ids we make are *native*, their 16-byte internal id
starting with the 8 order bytes of the document's creation time, so the id alone gives the
storage key. Ids made elsewhere (a Convex snapshot's) are *foreign*: their rows are flagged and
a partial SQLite index over the flagged rows finds them by id.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any

from ..values import dumps_document, encode_value, loads_document
from ..values._codec import _scan_once, dumps_plain_document
from ..values._keys import T_FLOAT64, _float_key

__all__ = [
    "CT_KEY_LEN",
    "SYSTEM_TABLES",
    "dumps_user",
    "id_key_candidate",
    "is_native",
    "key_creation_time",
    "load_row",
    "load_rows",
    "native_internal",
    "storage_key",
    "user_fields",
]

# System tables and their table numbers (below the user tables' 10001, as in Convex). Only the
# backend writes them; functions read them through ``ctx.db.system``.
SYSTEM_TABLES = {"_storage": 1, "_scheduled_functions": 2, "_environment_variables": 3}

CT_KEY_LEN = 9  # an encoded float: tag byte + 8 order bytes
_SIGN = 1 << 63
_ALL = (1 << 64) - 1
_unpack_u64 = struct.Struct(">Q").unpack_from
_pack_u64 = struct.Struct(">Q").pack
_unpack_f64 = struct.Struct(">d").unpack
_CT_TAG = bytes((T_FLOAT64,))


def storage_key(creation_time: float, doc_id: str) -> bytes:
    """The key a document is stored under (its by_creation_time key)."""
    return _float_key(creation_time) + encode_value(doc_id)


def native_internal(creation_time: float, randomness: bytes) -> bytes:
    """A native internal id: the creation time's 8 order bytes, then 8 random bytes."""
    return _float_key(creation_time)[1:] + randomness


def id_key_candidate(internal: bytes, id_key: bytes) -> bytes:
    """The storage key of the document with this id if the id is native (``id_key`` is the
    encoded id): a row under it can only be that document, whatever the id's origin."""
    return _CT_TAG + internal[:8] + id_key


def is_native(internal: bytes, creation_time: float) -> bool:
    """Whether an id (given by its internal bytes) embeds ``creation_time``."""
    return internal[:8] == _float_key(creation_time)[1:]


def key_creation_time(key: bytes) -> float:
    """The creation time a storage key starts with."""
    n = _unpack_u64(key, 1)[0]
    return _unpack_f64(_pack_u64(n ^ _SIGN if n & _SIGN else n ^ _ALL))[0]


def user_fields(doc: dict[str, Any]) -> dict[str, Any]:
    """A document without its system fields."""
    return {k: v for k, v in doc.items() if k != "_id" and k != "_creationTime"}


def dumps_user(user: dict[str, Any], plain: bool | None = None) -> tuple[str, bool]:
    """The stored text of a document's user fields (``plain``: known to be plain JSON)."""
    if plain:
        return dumps_plain_document(user), True
    return dumps_document(user)


def _assemble(key: bytes, user: dict[str, Any]) -> dict[str, Any]:
    # The id is the key's string part: base32 text between its tag and terminator.
    doc = {"_id": key[CT_KEY_LEN + 1 : -1].decode("ascii"), "_creationTime": key_creation_time(key)}
    doc.update(user)
    return doc


def load_row(key: bytes, text: str, plain: int) -> dict[str, Any]:
    """The document stored under ``key`` (a storage key) with this text."""
    return _assemble(key, loads_document(text, plain))


def load_rows(rows: Sequence[tuple[bytes, str, int]], key_len: int = 0) -> list[dict[str, Any]]:
    """``load_row`` of each ``(key, text, plain)`` row; with ``key_len``, each key is an index
    key whose last ``key_len`` bytes are the storage key."""
    tail = -key_len if key_len else 0
    texts = [row[1] for row in rows]
    users: list[Any] | None = None
    if all(row[2] for row in rows):
        try:  # the usual case: every row plain JSON, one parse for all of them
            joined = "[" + ",".join(texts) + "]"
            users, end = _scan_once(joined, 0)
            if end != len(joined):
                users = None
        except StopIteration:
            users = None
    if users is None:
        users = [loads_document(text, row[2]) for text, row in zip(texts, rows)]
    out: list[dict[str, Any]] = []
    append = out.append
    unpack_q, pack_q, unpack_d = _unpack_u64, _pack_u64, _unpack_f64
    for (key, _text, _plain), user in zip(rows, users):
        if tail:
            key = key[tail:]
        n = unpack_q(key, 1)[0]
        # (_assemble, inlined: this loop runs once per document read)
        doc = {
            "_id": key[CT_KEY_LEN + 1 : -1].decode("ascii"),
            "_creationTime": unpack_d(pack_q(n ^ _SIGN if n & _SIGN else n ^ _ALL))[0],
        }
        doc.update(user)
        append(doc)
    return out
