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
import sqlite3
import struct
import time
from array import array
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from ..values import MISSING, decode_id, dumps_document, encode_value, normalize_document
from ..values._ids import new_ids
from ..values._keys import _float_key
from .transaction import DatabaseError, Transaction

if TYPE_CHECKING:
    from .database import TableInfo

__all__ = ["ImportRowError", "clear_table", "ensure_table", "insert_documents", "iter_table", "table_count"]

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
    return new_ids(number, n, (time.time_ns() // 1_000_000).to_bytes(6, "big"))


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
    try:
        store.insert_documents(doc_rows)
    except sqlite3.IntegrityError:
        raise DatabaseError(
            f"Cannot import into {table!r}: a document with one of the imported _id values already exists"
        ) from None
    writes = txn.writes
    writes.tables.add(table)
    writes.documents += n
    writes.keys.setdefault((table, "by_id"), []).extend(r[1] for r in doc_rows)
    for rows, (_index_id, name, _key) in zip(entry_rows, indexes):
        rows.sort(key=lambda r: r[1])
        store.insert_entries(rows)
        writes.keys.setdefault((table, name), []).extend(r[1] for r in rows)
    txn.documents_written += n
    txn.bytes_written += written
    if latest > db.last_creation_time:
        db.last_creation_time = latest
    return ids


def iter_table(txn: Transaction, table: str, batch: int = 65536) -> Iterable[list[tuple[str, int]]]:
    """Batches of ``(json, plain)`` storage rows of every document of ``table`` (``_id`` order).

    For exports and DataFrames: reads are not counted against the transaction's limits.
    """
    info = txn.db.table(table)
    if info is None:
        return iter(())
    return txn.db.store.iter_documents_ordered(info.number, batch)

