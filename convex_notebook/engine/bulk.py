"""Bulk writes for imports: whole batches of documents through one write transaction.

Used by ``app.import_dataframe`` and the snapshot/table importers (``convex_notebook.io``).
Every invariant of single writes holds: names and values are checked (``normalize_document``),
the schema validates each document, every index gets its entries, and the transaction's write
set lists every written key (so live queries over the table re-run once, at the commit).

What differs from ``db.insert``: the per-transaction limits of functions do not apply (a data
import is not a function call; Convex's imports have no such limits either), rows are written
with ``executemany`` in key order, and documents may keep the ``_id`` and ``_creationTime``
they were exported with (as in ``npx convex import``).
"""

from __future__ import annotations

import inspect
import math
import re
import sqlite3
import struct
import time
from array import array
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import repeat
from typing import TYPE_CHECKING, Any

try:  # the json module's C string encoder: what the document encoder itself uses
    from json.encoder import c_encode_basestring as _json_str
except ImportError:  # pragma: no cover - pure-Python json
    _json_str = None
if _json_str is None:  # pragma: no cover
    from json.encoder import py_encode_basestring as _json_str

from ..values import MISSING, Int64, decode_id, dumps_document, encode_value, loads_document, normalize_document
from ..values._check import MAX_OBJECT_FIELDS, _top_field_problem
from ..values._codec import _encode, to_json
from ..values._ids import new_ids, new_ids_ordered
from ..values._keys import _float_key, _pack_tag_u64
from ..values._model import _Missing
from ..values._size import MAX_DOCUMENT_SIZE, SYSTEM_FIELDS_SIZE
from .transaction import DatabaseError, Transaction

if TYPE_CHECKING:
    from .database import TableInfo

__all__ = [
    "ImportRowError",
    "clear_table",
    "ensure_table",
    "insert_columns",
    "insert_documents",
    "iter_table",
    "rows_from_columns",
    "table_count",
]

_SYSTEM = ("_id", "_creationTime")
_pack_d = struct.Struct("<d").pack
_unpack_q = struct.Struct("<q").unpack


class ImportRowError(DatabaseError):
    """A document of a bulk write was rejected; ``row`` is its 0-based position."""

    def __init__(self, row: int, message: str) -> None:
        super().__init__(message)
        self.row = row
        self.reason = message


def _require(txn: Transaction) -> None:
    if not txn.writable:
        raise DatabaseError("Bulk writes need a write transaction")


def table_count(txn: Transaction, table: str) -> int:
    info = txn.db.table(table)
    return txn.db.store.count_documents(info.number) if info is not None else 0


def ensure_table(txn: Transaction, table: str, number: int | None = None) -> "TableInfo":
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
    """Delete every document of ``table`` (recording every removed key); return how many."""
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
    writes.keys.setdefault((table, "by_id"), []).extend(keys)
    for index in info.entry_indexes:
        writes.keys.setdefault((table, index.name), []).extend(store.entry_keys(index.index_id))
    store.delete_table_contents(info.number, [ix.index_id for ix in info.entry_indexes])
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


def _new_ids(number: int, n: int) -> list[str]:
    """Fresh ids like ``db.insert``'s: a millisecond prefix, then 10 random bytes."""
    return new_ids(number, n, _time_prefix())


def _time_prefix() -> bytes:
    return (time.time_ns() // 1_000_000).to_bytes(6, "big")




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

    missing_ids = [i for i in range(n) if ids[i] is MISSING] if keep_system_fields else range(n)
    fresh = _new_ids(number, len(missing_ids))
    for i, doc_id in zip(missing_ids, fresh):
        ids[i] = doc_id
    missing_cts = [i for i in range(n) if cts[i] is MISSING] if keep_system_fields else range(n)
    if missing_cts:
        now, last = db.clock.now_ms(), db.last_creation_time
        start = now if now > last else math.nextafter(last, math.inf)
        for i, ct in zip(missing_cts, _creation_times(start, len(missing_cts))):
            cts[i] = ct
    latest = max(cts) if keep_system_fields else cts[-1]

    indexes = [(ix.index_id, ix.name, ix.key) for ix in info.entry_indexes]
    # The store's entry rows: (index_id, key, doc_key), or (index_id, key) where an entry's
    # key alone locates its document (the key ends with the document's key).
    with_doc_key = "doc_key" in inspect.signature(store.insert_entry).parameters
    doc_rows: list[tuple[int, bytes, str, int]] = []
    entry_rows: list[list[tuple[int, bytes, bytes]]] = [[] for _ in indexes]
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
        full = {"_id": doc_id, "_creationTime": cts[i]}
        full.update(value)
        text, plain = dumps_document(full)
        doc_key = enc(doc_id)
        doc_rows.append((number, doc_key, text, plain))
        for rows, (index_id, name, key) in zip(entry_rows, indexes):
            if name == "by_creation_time":  # its key is (_creationTime, _id): reuse doc_key
                entry = float_key(full["_creationTime"]) + doc_key
            else:
                entry = key(full)
            rows.append((index_id, entry, doc_key) if with_doc_key else (index_id, entry))
        written += size

    # Key order makes SQLite's B-tree inserts appends rather than random page splits.
    doc_rows.sort(key=lambda r: r[1])
    with _duplicate_ids_refused(table):
        store.insert_documents(doc_rows)
    writes = _record_documents(txn, table, n, [r[1] for r in doc_rows])
    for rows, (_index_id, name, _key) in zip(entry_rows, indexes):
        rows.sort(key=lambda r: r[1])
        store.insert_entries(rows)
        writes.keys.setdefault((table, name), []).extend(r[1] for r in rows)
    txn.documents_written += n
    txn.bytes_written += written
    if latest > db.last_creation_time:
        db.last_creation_time = latest
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


def _record_documents(txn: Transaction, table: str, n: int, doc_keys: Iterable[bytes]) -> Any:
    """Add ``n`` inserted documents (their ``by_id`` keys) to the write set; returns it."""
    writes = txn.writes
    writes.tables.add(table)
    writes.documents += n
    writes.keys.setdefault((table, "by_id"), []).extend(doc_keys)
    return writes


def table_documents(txn: Transaction, table: str) -> list[dict]:
    """Every document of ``table``, decoded (``_id`` order; no read limits: for the backend's
    own reads such as the scheduler's, index builds and exports)."""
    return [loads_document(text, plain) for rows in iter_table(txn, table) for text, plain in rows]


def iter_table(txn: Transaction, table: str, batch: int = 65536) -> Iterable[list[tuple[str, int]]]:
    """Batches of ``(json, plain)`` storage rows of every document of ``table`` (``_id`` order).

    For exports and DataFrames: reads are not counted against the transaction's limits.
    """
    info = txn.db.table(table)
    if info is None:
        return iter(())
    return txn.db.store.iter_documents_ordered(info.number, batch)



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
    values: list[Any]  # floats (formatted by %s exactly as the JSON encoder writes them) or text
    size: int  # the Convex size of the column's fields, summed over the rows
    largest: int  # an upper bound of one row's field size
    special: list[int] = field(default_factory=list)  # rows whose value is not plain JSON


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
            return _EncodedColumn(prefix + "%s", col, len(col) * (per_field + 9), per_field + 9)
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


def _creation_keys(cts: list[float]) -> list[bytes]:
    """The encoded ``_creationTime`` of each document (``encode_value``), consecutive floats at once."""
    start = cts[0] if cts else 0.0
    if start > 0.0 and math.isfinite(start):
        bits = _unpack_q(_pack_d(start))[0]
        if _unpack_q(_pack_d(cts[-1]))[0] == bits + len(cts) - 1:  # made by _creation_times
            first = bits | (1 << 63)  # a positive float's key: its bits with the sign bit set
            return list(map(_pack_tag_u64, repeat(4, len(cts)), range(first, first + len(cts))))
    return list(map(_float_key, cts))


def insert_columns(
    txn: Transaction,
    table: str,
    names: Sequence[str],
    columns: Sequence[list[Any]],
    n: int,
    *,
    keep_system_fields: bool = False,
) -> list[str]:
    """``insert_documents(txn, table, rows_from_columns(names, columns, n), ...)``, faster.

    The stored documents, index entries, write set and errors are the same. Columns whose
    values are floats, strings, booleans, nulls, Int64s or bytes (or missing) take the
    column-wise path when the table has no schema to validate and no ``_id``/``_creationTime``
    column is given; anything else goes row by row.
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
        docs = rows_from_columns(names, columns, n)
        return insert_documents(txn, table, docs, keep_system_fields=keep_system_fields)
    info = ensure_table(txn, table)
    if n == 0:
        return []
    ids, ordered = _fresh_ids(info.number, n)
    now, last = db.clock.now_ms(), db.last_creation_time
    cts = _creation_times(now if now > last else math.nextafter(last, math.inf), n)
    texts, plains = _documents_text(ids, cts, encoded, n)
    # encode_value of an id: fresh ids are base32 text (no NUL to escape).
    doc_keys = list(map(b"\x07%b\x00".__mod__, map(str.encode, ids)))
    entries = _column_entries(info, names, columns, _creation_keys(cts), doc_keys)
    rows: Iterable[tuple[bytes, str, int]] = zip(doc_keys, texts, plains)
    if not ordered:  # key order makes the B-tree inserts appends
        rows = sorted(rows, key=lambda r: r[0])
    with _duplicate_ids_refused(table):
        db.store.insert_table_documents(info.number, rows)
    writes = _record_documents(txn, table, n, doc_keys)
    for index, keys in entries:
        if index.prefix is not None:  # by_creation_time's keys increase with the times
            keys = sorted(keys)
        db.store.insert_index_keys(index.index_id, keys)
        writes.keys.setdefault((table, index.name), []).extend(keys)
    txn.documents_written += n
    txn.bytes_written += n * (2 + SYSTEM_FIELDS_SIZE) + sum(e.size for e in encoded)
    if cts[-1] > db.last_creation_time:
        db.last_creation_time = cts[-1]
    return ids


def _fresh_ids(number: int, n: int) -> tuple[list[str], bool]:
    """New ids, and whether they ascend (then the rows need no sorting before the writes)."""
    ids = new_ids_ordered(number, n, _time_prefix())
    if ids is not None:
        return ids, True
    return _new_ids(number, n), False


def _documents_text(
    ids: list[str], cts: list[float], encoded: list[_EncodedColumn], n: int
) -> tuple[list[str], Iterable[int]]:
    """The documents' storage text (``dumps_document``'s) and plain flags, one format per row."""
    template = '{"_id":"%s","_creationTime":%s' + "".join(e.slot for e in encoded) + "}"
    texts = list(map(template.__mod__, zip(ids, cts, *(e.values for e in encoded))))
    # A document with a special value (Int64, bytes, NaN...) is convex_encoded_json, as in
    # dumps_document: the other values' text is the same either way, so only the flag differs.
    if not any(e.special for e in encoded):
        return texts, repeat(1, n)
    flags = [1] * n
    for e in encoded:
        for i in e.special:
            flags[i] = 0
    return texts, flags


def _column_entries(
    info: "TableInfo", names: Sequence[str], columns: Sequence[list[Any]], ct_keys: list[bytes], doc_keys: list[bytes]
) -> list[tuple[Any, list[bytes]]]:
    """Each entry index's keys: its fields' prefix, then ``_creationTime`` and ``_id``."""
    suffixes = list(map(bytes.__add__, ct_keys, doc_keys))
    out = []
    for index in info.entry_indexes:
        if index.prefix is None:  # by_creation_time
            out.append((index, suffixes))
            continue
        # The prefix function reads the index's fields from a document: give it just those.
        tops = {f.split(".", 1)[0] for f in index.user_fields}
        picked = [(k, col) for k, col in zip(names, columns) if k in tops]
        docs = rows_from_columns([k for k, _ in picked], [col for _, col in picked], len(doc_keys))
        out.append((index, list(map(bytes.__add__, map(index.prefix, docs), suffixes))))
    return out
