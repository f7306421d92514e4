"""Bulk writes for imports: whole batches of documents through one write transaction.

Used by ``app.import_dataframe`` and the snapshot/table importers (``convex_notebook.io``).
Every invariant of single writes holds: names and values are checked (``normalize_document``),
the schema validates each document, every index gets its entries, and the transaction's write
set lists every written key (so live queries over the table re-run once, at the commit).

What differs from ``db.insert``: the per-transaction limits of functions do not apply (a data
import is not a function call; Convex's imports have no such limits either), rows are written
in batches SQLite splits itself (``store.insert_documents_json``), and documents may keep the ``_id`` and ``_creationTime``
they were exported with (as in ``npx convex import``).
"""

from __future__ import annotations

import math
import os
import re
import sqlite3
import struct
import sys
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as concurrent_wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Self

try:  # the json module's C string encoder: what the document encoder itself uses
    from json.encoder import c_encode_basestring as _json_str  # type: ignore[attr-defined]  # C, not in typeshed
except ImportError:  # pragma: no cover - pure-Python json
    _json_str = None
if _json_str is None:  # pragma: no cover
    from json.encoder import py_encode_basestring as _json_str

from ..store.sqlite import SqliteStore, submit_started
from ..values import (
    MISSING,
    Int64,
    decode_id,
    dumps_document,
    encode_value,
    normalize_document,
)
from ..values._check import MAX_OBJECT_FIELDS, _top_field_problem
from ..values._codec import _encode, finite_float_texts, to_json
from ..values._ids import ids_from_internals
from ..values._keys import T_FLOAT64, T_STRING, _float_key
from ..values._model import _Missing
from ..values._size import MAX_DOCUMENT_SIZE, SYSTEM_FIELDS_SIZE
from .stored import CT_KEY_LEN, is_native, load_rows
from .transaction import DatabaseError, Transaction

if TYPE_CHECKING:
    from .database import TableInfo

__all__ = [
    "ImportRowError",
    "clear_table",
    "ensure_table",
    "index_documents",
    "insert_columns",
    "insert_documents",
    "iter_table",
    "rows_from_columns",
    "table_count",
]

_SYSTEM = ("_id", "_creationTime")
_pack_d = struct.Struct("<d").pack
_unpack_q = struct.Struct("<q").unpack
_SIGN = 1 << 63
# Documents per statement of store.insert_documents_json: at most this many, and about this
# much text (large documents make smaller batches: memory, and SQLite's 1 GB value limit).
_BATCH = 50_000
_BATCH_TEXT = 64 << 20


def _batches(n: int, row_text: float) -> Iterator[tuple[int, int]]:
    """``(lo, hi)`` spans of ``n`` rows of about ``row_text`` characters each."""
    step = max(1, min(_BATCH, int(_BATCH_TEXT // max(row_text, 1.0))))
    for lo in range(0, n, step):
        yield lo, min(n, lo + step)


class ImportRowError(DatabaseError):
    """A document of a bulk write was rejected; ``row`` is its 0-based position."""

    def __init__(self, row: int, message: str) -> None:
        super().__init__(message)
        self.row = row
        self.reason = message


def _require(txn: Transaction) -> int:
    """The commit timestamp of ``txn``, which must be exclusive (``db.write(exclusive=True)``)."""
    if not txn.writable or txn.exclusive_ts is None:
        raise DatabaseError("Bulk writes need an exclusive write transaction (db.write(exclusive=True))")
    return txn.exclusive_ts


def table_count(txn: Transaction, table: str) -> int:
    info = txn.table(table)
    return txn.count_documents(info) if info is not None else 0


def ensure_table(txn: Transaction, table: str, number: int | None = None) -> TableInfo:
    """The table ``table``, created if needed; with ``number``, numbered so (ids keep their table).

    An existing, empty table with another number is renumbered; a number used by another
    table, or a non-empty table with another number, is an error (nothing is changed).
    """
    _require(txn)
    db = txn.db
    db.check_table_name(table, "import into")
    info = db.table(table)
    if number is not None:
        if info is not None and info.number == number:
            return info
        owner = db.store.table_number_owner(number)
        if owner is not None and owner != table:
            raise DatabaseError(
                f"Cannot keep the documents' ids in table {table!r}: they belong to table number "
                f"{number}, which is table {owner!r} here (import without ids to get new ones)"
            )
        if info is not None:
            count = db.store.count_documents(info.number)
            if count:
                raise DatabaseError(
                    f"Cannot keep the documents' ids in table {table!r}: the ids are of table number "
                    f"{number} but {table!r} is number {info.number} and already has {count} documents "
                    "(replace the table, or import without ids)"
                )
            db.store.renumber_table(info.number, number)
            txn._created_tables = True  # a rollback reloads the catalog
            db.reload_catalog()
            info = db.table(table)
            assert info is not None
            return info
    if info is None:
        info = db.create_table(table, number)
        txn._created_tables = True
        txn.writes.add_table_created(table)
    return info


def clear_table(txn: Transaction, table: str) -> int:
    """Delete every document of ``table`` (recording every removed key); return how many.

    In an exclusive transaction, SQLite deletes them in a few statements; in a mutation's
    (optimistic) transaction they are deleted one by one into its buffer."""
    if txn.writable and txn.exclusive_ts is None:
        info = txn.table(table)
        if info is None:
            return 0
        ids = [doc["_id"] for rows in list(iter_table(txn, table)) for doc in load_rows(rows)]
        for doc_id in ids:
            txn.delete(doc_id, only="system" if table.startswith("_") else "user")
        return len(ids)
    _require(txn)
    db = txn.db
    info = db.table(table)
    if info is None:
        return 0
    store = db.store
    keys = store.document_keys(info.number)
    if not keys:
        return 0
    writes = txn.writes
    writes.tables.add(table)
    writes.documents += len(keys)
    writes.keys.setdefault((table, "by_id"), []).extend([k[CT_KEY_LEN:] for k in keys])
    writes.keys.setdefault((table, "by_creation_time"), []).extend(keys)
    for index in info.entry_indexes:
        writes.keys.setdefault((table, index.name), []).extend(store.entry_keys(index.index_id))
    store.delete_table_contents(info.number, [ix.index_id for ix in info.entry_indexes], txn.exclusive_ts or 0)
    txn.documents_written += len(keys)
    return len(keys)


def _creation_times(start: float, n: int) -> list[float]:
    """``n`` strictly increasing floats from ``start`` (each the next float after the last)."""
    if n == 0:
        return []
    if start > 0.0 and math.isfinite(start):
        # For positive floats, the next float is the next 64-bit pattern: one C-level pass.
        bits = _unpack_q(_pack_d(start))[0]
        out = array("d")
        out.frombytes(array("q", range(bits, bits + n)).tobytes())
        return out.tolist()
    times, t = [], start
    for _ in range(n):
        times.append(t)
        t = math.nextafter(t, math.inf)
    return times


def _ct_order_bytes(cts: list[float]) -> bytes:
    """Each creation time's 8 order bytes (its encoded key without the tag), concatenated;
    consecutive positive floats (``_creation_times``) in whole-array operations."""
    start = cts[0] if cts else 0.0
    if start > 0.0 and math.isfinite(start):
        bits = _unpack_q(_pack_d(start))[0]
        if _unpack_q(_pack_d(cts[-1]))[0] == bits + len(cts) - 1:
            # A positive float's order bytes: its bits with the sign bit set, big-endian.
            words = array("Q", range(bits | _SIGN, (bits | _SIGN) + len(cts)))
            if sys.byteorder == "little":
                words.byteswap()
            return words.tobytes()
    return b"".join([_float_key(ct)[1:] for ct in cts])


def _native_ids(number: int, order: bytes) -> list[str]:
    """Fresh native ids (``engine.stored``) for documents whose creation times have these
    order bytes (``_ct_order_bytes``), built in whole-buffer operations."""
    n = len(order) // 8
    rnd = os.urandom(8 * n)
    internal = bytearray(16 * n)
    for p in range(8):
        internal[p::16] = order[p::8]
        internal[8 + p :: 16] = rnd[p::8]
    return ids_from_internals(number, bytes(internal))


def _fresh_documents(number: int, cts: list[float]) -> tuple[list[str], bytes]:
    """Fresh native ids for documents created at ``cts``, and their storage keys
    concatenated: all built in whole-buffer operations, not per document."""
    n = len(cts)
    order = _ct_order_bytes(cts)
    ids = _native_ids(number, order)
    if not ids:
        return ids, b""
    # A key: the float tag, the 8 order bytes, the string tag, the id's characters, 00.
    width = len(ids[0])
    text = "".join(ids).encode("ascii")
    size = CT_KEY_LEN + width + 2
    keys = bytearray(size * n)
    keys[0::size] = bytes((T_FLOAT64,)) * n
    for p in range(8):
        keys[1 + p :: size] = order[p::8]
    keys[CT_KEY_LEN::size] = bytes((T_STRING,)) * n
    for p in range(width):
        keys[CT_KEY_LEN + 1 + p :: size] = text[p::width]
    return ids, bytes(keys)  # (the terminators: the buffer's zeros)


class _StoreQueue:
    """Store calls run one at a time, in order, on a worker thread while the caller prepares
    the next batch: SQLite releases the GIL while it executes a statement, so a bulk insert's
    Python work and SQLite's work overlap. Nothing else may use the store until the queue is
    closed (leaving the ``with`` block waits for every call, even after an error)."""

    def __init__(self, threaded: bool) -> None:
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="bulk-insert") if threaded else None
        self._pending: Future | None = None

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        if self._pool is None:
            fn(*args)
            return
        self._wait()  # one call in flight: memory stays one batch deep
        self._pending = submit_started(self._pool, fn, *args)

    def _wait(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()  # re-raises the call's error here, in the caller's thread

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        try:
            if exc_type is None:
                self._wait()
            elif self._pending is not None:
                concurrent_wait([self._pending])  # the caller's error wins; the store is idle
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True)


def _write_batch(
    store: SqliteStore, number: int, keys: bytes, key_len: int, texts: str, plains: bytes, foreigns: bytes, ts: int
) -> None:
    """Write a batch of new documents (``store.insert_documents_json``) and log it in the
    history as one write of the keys from its first to its last."""
    store.insert_documents_json(number, keys, key_len, texts, plains, foreigns, ts)
    store.log_batch(ts, number, keys[:key_len], keys[-key_len:])


def _record_documents(txn: Transaction, table: str, keys: list[bytes]) -> None:
    """Record inserted documents (their storage keys) in the write set under by_id and
    by_creation_time."""
    writes = txn.writes
    writes.tables.add(table)
    writes.documents += len(keys)
    writes.keys.setdefault((table, "by_id"), []).extend([k[CT_KEY_LEN:] for k in keys])
    writes.keys.setdefault((table, "by_creation_time"), []).extend(keys)


def _flags(flags: list[int] | None, lo: int, hi: int) -> bytes:
    """Per-document 0/1 flags as ``insert_documents_json`` takes them (empty for None)."""
    return bytes(48 + f for f in flags[lo:hi]) if flags is not None else b""


def insert_documents(
    txn: Transaction,
    table: str,
    docs: Sequence[dict[str, Any]],
    *,
    keep_system_fields: bool = False,
    number: int | None = None,
) -> list[str]:
    """Insert ``docs`` into ``table`` (created if needed) and return their ids.

    With ``keep_system_fields``, a document's ``_id`` (an id of this table: see
    :func:`ensure_table`'s ``number``) and ``_creationTime`` are kept; documents without them
    get new ones. Otherwise system fields are an error, as in ``db.insert``. A rejected
    document raises :class:`ImportRowError` naming its position; the caller's transaction
    then rolls back.
    """
    _require(txn)
    db = txn.db
    n = len(docs)
    if number is None and keep_system_fields:
        for doc in docs:
            given = doc.get("_id", MISSING) if isinstance(doc, dict) else MISSING
            if given is not MISSING:
                decoded = decode_id(given) if isinstance(given, str) else None
                if decoded is not None:
                    number = decoded[0]
                break
    info = ensure_table(txn, table, number)
    number = info.number
    if n == 0:
        return []
    store = db.store
    table_def = db._validated_table(table)
    id_table = db.table_name_for_id

    # System fields: given ones are checked, missing ones assigned like db.insert does.
    ids: list[Any] = [MISSING] * n
    cts: list[Any] = [MISSING] * n
    users: list[Any] = list(docs)
    if keep_system_fields:
        seen: set[str] = set()
        for i, doc in enumerate(docs):
            if not isinstance(doc, dict):
                raise ImportRowError(i, f"A document must be an object, got {type(doc).__name__}")
            if "_id" not in doc and "_creationTime" not in doc:
                continue
            doc_id = doc.get("_id", MISSING)
            if doc_id is not MISSING:
                decoded = decode_id(doc_id) if isinstance(doc_id, str) else None
                if decoded is None:
                    raise ImportRowError(i, f"_id {doc_id!r} is not a valid document id")
                if decoded[0] != number:
                    raise ImportRowError(
                        i, f"_id {doc_id} is an id of table number {decoded[0]}, not of {table!r} ({number})"
                    )
                if doc_id in seen:
                    raise ImportRowError(i, f"_id {doc_id} appears twice in the import")
                seen.add(doc_id)
                ids[i] = doc_id
            ct = doc.get("_creationTime", MISSING)
            if ct is not MISSING:
                if type(ct) is int and not isinstance(ct, bool):
                    ct = float(ct)
                if type(ct) is not float or not math.isfinite(ct) or ct < 0:
                    raise ImportRowError(i, f"_creationTime must be a non-negative finite number, got {ct!r}")
                cts[i] = ct
            users[i] = {k: v for k, v in doc.items() if k != "_id" and k != "_creationTime"}
    else:
        for i, doc in enumerate(docs):
            if isinstance(doc, dict) and ("_id" in doc or "_creationTime" in doc):
                field = "_id" if "_id" in doc else "_creationTime"
                raise ImportRowError(i, f"{field} is a system field, assigned by the database")

    missing_cts = [i for i in range(n) if cts[i] is MISSING] if keep_system_fields else range(n)
    if missing_cts:
        now, last = db.clock.now_ms(), db.last_creation_time
        start = now if now > last else math.nextafter(last, math.inf)
        for i, ct in zip(missing_cts, _creation_times(start, len(missing_cts))):
            cts[i] = ct
    latest = max(cts) if keep_system_fields else cts[-1]
    foreigns: list[int] | None = None
    if keep_system_fields:
        given = [i for i in range(n) if ids[i] is not MISSING]
        if given and table_count(txn, table):
            for i in given:  # an id the table has already (ids are not the documents' keys)
                if txn._find(info, ids[i], encode_value(ids[i])) is not None:
                    raise ImportRowError(i, f"a document with _id {ids[i]} already exists in {table!r}")
        foreigns = [0] * n
        for i in given:
            decoded = decode_id(ids[i])
            assert decoded is not None  # checked when the rows were read
            foreigns[i] = 0 if is_native(decoded[1], cts[i]) else 1
    missing_ids = [i for i in range(n) if ids[i] is MISSING] if keep_system_fields else range(n)
    for i, doc_id in zip(missing_ids, _native_ids(number, _ct_order_bytes([cts[i] for i in missing_ids]))):
        ids[i] = doc_id

    indexes = info.entry_indexes
    keys: list[bytes] = []
    texts: list[str] = []
    plains: list[int] = []
    entry_keys: list[list[bytes]] = [[] for _ in indexes]
    written = 0
    enc = encode_value
    float_key = _float_key
    for i in range(n):
        user = users[i]
        doc_id = ids[i]
        try:
            if table_def is not None:
                user = table_def.validate_document(user, id_table=id_table, doc_id=doc_id)
            value, size = normalize_document(user, table=table)
        except DatabaseError:
            raise
        except Exception as exc:  # InvalidValueError, ValidationError: name the row
            raise ImportRowError(i, str(exc)) from exc
        text, plain = dumps_document(value)
        key = float_key(cts[i]) + enc(doc_id)
        keys.append(key)
        texts.append(text)
        plains.append(int(plain))
        for index_keys, index in zip(entry_keys, indexes):
            index_keys.append(index.prefix(value) + key)  # type: ignore[misc]
        written += size

    # Key order makes SQLite's B-tree inserts appends rather than random page splits.
    order = sorted(range(n), key=keys.__getitem__)
    keys = [keys[i] for i in order]
    texts = [texts[i] for i in order]
    plains = [plains[i] for i in order]
    foreigns = [foreigns[i] for i in order] if foreigns is not None else None
    size = len(keys[0])
    ts = txn.exclusive_ts or 0
    with _duplicate_ids_refused(table):
        for lo, hi in _batches(n, sum(map(len, texts)) / n):
            _write_batch(
                store, number, b"".join(keys[lo:hi]), size, "[" + ",".join(texts[lo:hi]) + "]",
                _flags(plains, lo, hi), _flags(foreigns, lo, hi), ts,
            )
    if foreigns is not None and any(foreigns):
        info.foreign_ids = True
    _record_documents(txn, table, keys)
    writes = txn.writes
    for index_keys, index in zip(entry_keys, indexes):
        index_keys.sort()
        store.insert_index_keys(index.index_id, index_keys)
        writes.keys.setdefault((table, index.name), []).extend(index_keys)
    txn.documents_written += n
    txn.bytes_written += written
    db.last_creation_time = max(db.last_creation_time, latest)
    return ids


@contextmanager
def _duplicate_ids_refused(table: str) -> Iterator[None]:
    """An ``_id`` that exists already: a clear error (the caller's transaction rolls back)."""
    try:
        yield
    except sqlite3.IntegrityError:
        raise DatabaseError(
            f"Cannot import into {table!r}: a document with one of the imported _id values already exists"
        ) from None


def table_documents(txn: Transaction, table: str) -> list[dict]:
    """Every document of ``table``, decoded (``_creationTime`` order; no read limits: for the
    backend's own reads such as the scheduler's, index builds and exports)."""
    return [doc for rows in iter_table(txn, table) for doc in load_rows(rows)]


def index_documents(txn: Transaction, table: str, index_name: str, lo: bytes, hi: bytes) -> list[dict]:
    """The documents of ``table`` whose key in its (user or system-table) index ``index_name``
    is in ``[lo, hi)``, in index order. No read limits: for the backend's own reads."""
    info = txn.table(table)
    index = info.indexes.get(index_name) if info is not None else None
    if index is None or index.entries_id is None:
        raise DatabaseError(f"{table!r} has no index {index_name!r} with entries")
    batch, docs = 1024, []
    while True:
        rows, found = txn._fetch(index, lo, hi, False, batch)
        docs.extend(found)
        if len(rows) < batch:
            return docs
        lo = rows[-1][0] + b"\x00"


def iter_table(txn: Transaction, table: str, batch: int = 65536) -> Iterable[list[tuple[bytes, str, int]]]:
    """Batches of ``(key, json, plain)`` storage rows of every document of ``table``
    (``_creationTime`` order; decode them with ``engine.stored.load_rows``).

    For exports and DataFrames: reads are not counted against the transaction's limits.
    """
    info = txn.table(table)
    return txn.iter_documents_ordered(info.number, batch) if info is not None else iter(())



# ---------------------------------------------------------------------------------------------
# Column-wise inserts (DataFrames): the same documents as insert_documents, built a column at
# a time. Each column becomes its values' JSON text in a few C-level passes, one format string
# assembles the documents, and the id and creation-time keys come from whole-batch operations.


def rows_from_columns(names: Sequence[str], columns: Sequence[Sequence[Any]], n: int) -> list[dict[str, Any]]:
    """Documents from columns; fields whose value is ``MISSING`` are left out."""
    if not names:
        return [{} for _ in range(n)]
    if not any(MISSING in col for col in columns):
        return [dict(zip(names, values)) for values in zip(*columns)]
    return [{k: x for k, x in zip(names, values) if x is not MISSING} for values in zip(*columns)]


_BOOL_JSON = ("false", "true")
# The characters the JSON encoder escapes in a string (ensure_ascii=False: only these).
_JSON_ESCAPED = re.compile(r'[\x00-\x1f\\"]')
_NONE = type(None)
# Value types whose JSON text and size the column encoder knows (anything else: row by row).
_SIMPLE_TYPES = frozenset({float, bool, str, _NONE, Int64, bytes, _Missing})


@dataclass
class _EncodedColumn:
    """A column's part of the documents' text: the values for one ``%s`` of the template."""

    slot: str  # the template's part: ',"name":%s', or '%s' when values carry their prefix
    values: list[Any]  # text, or (``floats``) finite floats (see finite_float_texts)
    size: int  # the Convex size of the column's fields, summed over the rows
    largest: int  # an upper bound of one row's field size
    special: list[int] = field(default_factory=list)  # rows whose value is not plain JSON
    floats: bool = False


def _plain_float(x: float) -> bool:
    return x - x == 0.0 and (x != 0.0 or math.copysign(1.0, x) > 0.0)


_NEGATIVE_ZERO = struct.pack("=d", -0.0)


def _has_negative_zero(col: list[float]) -> bool:
    """Whether a list of floats holds -0.0 (not plain JSON), without a Python loop per value."""
    if 0.0 not in col:
        return False
    raw = array("d", col).tobytes()
    at = raw.find(_NEGATIVE_ZERO)
    while at >= 0:
        if at % 8 == 0:
            return True
        at = raw.find(_NEGATIVE_ZERO, at + 1)
    return False


def _value_json(x: Any) -> tuple[Any, bool, int]:
    """One simple value: (its text for the template, plain JSON?, Convex size)."""
    t = type(x)
    if t is float:
        return (x, True, 9) if _plain_float(x) else (_encode(to_json(x)), False, 9)
    if t is str:
        return _json_str(x), True, 2 + (len(x) if x.isascii() else len(x.encode()))
    if t is bool:
        return _BOOL_JSON[x], True, 1
    if x is None:
        return "null", True, 1
    if t is Int64:
        return _encode(to_json(x)), False, 9
    return _encode(to_json(x)), False, 2 + len(x)  # bytes


def _encode_column(name: str, col: list[Any]) -> _EncodedColumn | None:
    """The column's JSON text, or None when a value needs the row-by-row path (other types,
    invalid strings): that path then raises the error a row would raise."""
    types = set(map(type, col))
    if not types <= _SIMPLE_TYPES:
        return None
    prefix = "," + _json_str(name) + ":"
    per_field = len(name) + 1
    if types == {float}:
        total = sum(col)
        if total - total == 0.0 and not _has_negative_zero(col):  # all finite, no -0.0: all plain
            return _EncodedColumn(prefix + "%s", col, len(col) * (per_field + 9), per_field + 9, floats=True)
    elif types == {bool}:
        return _EncodedColumn(prefix + "%s", list(map(_BOOL_JSON.__getitem__, col)), len(col) * (per_field + 1), per_field + 1)
    elif types == {str}:
        joined = "".join(col)
        if joined.isascii():
            nbytes, widest = len(joined), max(map(len, col), default=0)
        else:
            try:
                nbytes = len(joined.encode())
            except UnicodeEncodeError:  # a lone surrogate: the row path names the row
                return None
            widest = 4 * max(map(len, col), default=0)
        size = len(col) * (per_field + 2) + nbytes
        if _JSON_ESCAPED.search(joined) is None:  # no string needs escaping: quote in the template
            return _EncodedColumn(prefix + '"%s"', col, size, per_field + 2 + widest)
        return _EncodedColumn(prefix + "%s", list(map(_json_str, col)), size, per_field + 2 + widest)
    return _encode_mixed_column(prefix, per_field, col)


def _encode_mixed_column(prefix: str, per_field: int, col: list[Any]) -> _EncodedColumn | None:
    """A column with missing values, special floats or several types, value by value."""
    sparse = MISSING in col
    values: list[Any] = []
    special: list[int] = []
    size = largest = 0
    for i, x in enumerate(col):
        if x is MISSING:
            values.append("")
            continue
        try:
            text, plain, s = _value_json(x)
        except UnicodeEncodeError:
            return None
        if not plain:
            special.append(i)
        if type(text) is float:
            text = finite_float_texts([text])[0]
        if sparse:
            text = f"{prefix}{text}"
        values.append(text)
        size += per_field + s
        largest = max(largest, per_field + s)
    return _EncodedColumn("%s" if sparse else prefix + "%s", values, size, largest, special)


def _encode_columns(table: str, names: Sequence[str], columns: Sequence[list[Any]]) -> list[_EncodedColumn] | None:
    """Every column encoded, or None when some row must take the row-by-row path: a field name
    or value it would reject, a document that might exceed the size limit."""
    if len(names) > MAX_OBJECT_FIELDS or len(set(names)) != len(names):
        return None
    encoded = []
    for name, col in zip(names, columns):
        if _top_field_problem(name) is not None or "%" in name:
            return None
        enc = _encode_column(name, col)
        if enc is None:
            return None
        encoded.append(enc)
    if 2 + SYSTEM_FIELDS_SIZE + sum(e.largest for e in encoded) > MAX_DOCUMENT_SIZE:
        return None  # some document may be too large: the row path finds which
    return encoded


def insert_columns(
    txn: Transaction,
    table: str,
    names: Sequence[str],
    columns: Sequence[list[Any]],
    n: int,
    *,
    keep_system_fields: bool = False,
    progress: Callable[[int], Any] | None = None,
) -> list[str]:
    """``insert_documents(txn, table, rows_from_columns(names, columns, n), ...)``, faster.

    The stored documents, index entries, write set and errors are the same. Columns whose
    values are floats, strings, booleans, nulls, Int64s or bytes (or missing) take the
    column-wise path when the table has no schema to validate and no ``_id``/``_creationTime``
    column is given; anything else goes row by row. ``progress(k)`` is called as each batch
    of ``k`` rows is written.
    """
    _require(txn)
    if any(len(col) != n for col in columns):
        raise ValueError("every column must have n values")
    db = txn.db
    system = any(name in _SYSTEM for name in names)
    encoded = None
    if not system and db._validated_table(table) is None:
        encoded = _encode_columns(table, names, columns)
    if encoded is None:
        return _insert_rows(txn, table, names, columns, n, keep_system_fields, progress)
    info = ensure_table(txn, table)
    if n == 0:
        return []
    now, last = db.clock.now_ms(), db.last_creation_time
    cts = _creation_times(now if now > last else math.nextafter(last, math.inf), n)
    plains = _plain_flags(encoded, n)
    ts = txn.exclusive_ts or 0
    store = db.store
    ids: list[str] = []
    keys: list[bytes] = []
    # The columns' Convex size approximates their JSON text (twice it: escapes, field names).
    spans = list(_batches(n, 2 * (sum(e.size for e in encoded) / n + 2)))
    with _duplicate_ids_refused(table), _StoreQueue(threaded=len(spans) > 1) as queue:
        for lo, hi in spans:
            batch_ids, key_blob = _fresh_documents(info.number, cts[lo:hi])
            size = len(key_blob) // (hi - lo)
            # One call per batch: the next batch is prepared while SQLite writes this one.
            queue.submit(
                _write_batch, store, info.number, key_blob, size,
                _documents_json(encoded, lo, hi), _flags(plains, lo, hi), b"", ts,
            )
            batch_keys = [key_blob[i : i + size] for i in range(0, len(key_blob), size)]
            _record_documents(txn, table, batch_keys)
            ids.extend(batch_ids)
            keys.extend(batch_keys)
            if progress is not None:
                progress(hi - lo)
        writes = txn.writes
        for index, index_keys in _column_entries(info, names, columns, keys):
            index_keys.sort()
            queue.submit(store.insert_index_keys, index.index_id, index_keys)
            writes.keys.setdefault((table, index.name), []).extend(index_keys)
    txn.documents_written += n
    txn.bytes_written += n * (2 + SYSTEM_FIELDS_SIZE) + sum(e.size for e in encoded)
    db.last_creation_time = max(db.last_creation_time, cts[-1])
    return ids


def _insert_rows(
    txn: Transaction, table: str, names: Sequence[str], columns: Sequence[list[Any]], n: int,
    keep_system_fields: bool, progress: Callable[[int], Any] | None,
) -> list[str]:
    """The row-by-row path for columns, a batch of documents at a time (rows are named by
    their position in the columns)."""
    ids: list[str] = []
    for lo in range(0, max(n, 1), _BATCH):
        hi = min(n, lo + _BATCH)
        docs = rows_from_columns(names, [col[lo:hi] for col in columns], hi - lo)
        try:
            ids.extend(insert_documents(txn, table, docs, keep_system_fields=keep_system_fields))
        except ImportRowError as exc:
            raise ImportRowError(lo + exc.row, exc.reason) from exc
        if progress is not None:
            progress(hi - lo)
    return ids


def _documents_json(encoded: list[_EncodedColumn], lo: int, hi: int) -> str:
    """The JSON array of rows lo..hi-1's stored texts (``dumps_document`` of their fields).

    One ``str.join`` over a list holding each value's text and the constant text between
    values (``"}, {"x":`` and the like), laid out by slice assignments: no string per row.
    """
    m = hi - lo
    if not encoded:
        return "[" + ",".join(["{}"] * m) + "]"
    parts = [e.slot.split("%s") for e in encoded]  # each slot: the text before and after its value
    first = parts[0][0]
    # The first field may be missing (a sparse column carries its own prefix): then mark the
    # object's start with a character JSON text never holds raw (control characters are
    # escaped in strings), and drop it and the comma after it at the end.
    start = "{" + first[1:] if first.startswith(",") else "{\x01" + first
    between = [parts[i - 1][1] + parts[i][0] for i in range(1, len(parts))]
    end = parts[-1][1] + "}"
    k = len(encoded)
    pieces: list[str] = [end + "," + start] * (2 * k * m)
    pieces[0] = "[" + start
    for i, text in enumerate(between, 1):
        pieces[2 * i :: 2 * k] = [text] * m
    for i, e in enumerate(encoded):
        values = e.values[lo:hi]
        pieces[2 * i + 1 :: 2 * k] = finite_float_texts(values) if e.floats else values
    text = "".join(pieces) + end + "]"
    if start[1:2] == "\x01":
        text = text.replace("\x01,", "").replace("\x01", "")
    return text


def _plain_flags(encoded: list[_EncodedColumn], n: int) -> list[int] | None:
    """Rows holding a special value (Int64, bytes, NaN...) are convex_encoded_json, as in
    dumps_document: the other values' text is the same either way, so only the flag differs.
    None when every row is plain."""
    if not any(e.special for e in encoded):
        return None
    flags = [1] * n
    for e in encoded:
        for i in e.special:
            flags[i] = 0
    return flags


def _column_entries(
    info: TableInfo, names: Sequence[str], columns: Sequence[list[Any]], keys: list[bytes]
) -> list[tuple[Any, list[bytes]]]:
    """Each entry index's keys: its fields' prefix, then the storage key."""
    out = []
    for index in info.entry_indexes:
        # The prefix function reads the index's fields from a document: give it just those.
        tops = {f.split(".", 1)[0] for f in index.user_fields}
        picked = [(k, col) for k, col in zip(names, columns) if k in tops]
        docs = rows_from_columns([k for k, _ in picked], [col for _, col in picked], len(keys))
        assert index.prefix is not None  # entry indexes have one
        out.append((index, list(map(bytes.__add__, map(index.prefix, docs), keys))))
    return out
