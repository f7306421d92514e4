"""One execution's view of the database: reads, buffered writes, bookkeeping, limits.

A transaction reads one snapshot (``Database.begin_snapshot``: its thread's reader
connection), or the database as it was at an earlier timestamp (``travel_to``). Three kinds:

* read-only (queries);
* optimistic (mutations): writes are buffered in an overlay over the snapshot
  (``engine.overlay``), so reads, index scans included, see the transaction's own writes;
  ``apply`` writes them to the store at commit, once validated. Sub-transactions
  (``ctx.run_mutation``) save and restore the buffer;
* exclusive (bulk writes: imports, schema pushes, clearing): the committer is held for the
  whole transaction, which reads and writes the store's writer connection directly, with
  SQL SAVEPOINTs for sub-transactions.

Every kind keeps the read set and the write set that validation and reactivity need.
"""

from __future__ import annotations

import copy
import os
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import InvalidValueError
from ..values import MISSING, decode_id, encode_id, encode_value, prefix_end
from ..values._keys import T_STRING
from .overlay import TableOverlay, merge_rows
from .readset import KeyRange, ReadSet, WriteSet, point_range
from .stored import (
    CT_KEY_LEN,
    SYSTEM_TABLES,
    dumps_user,
    id_key_candidate,
    is_native,
    load_row,
    load_rows,
    native_internal,
    user_fields,
)

if TYPE_CHECKING:
    from .database import Database, IndexInfo, TableInfo

__all__ = ["DatabaseError", "RandomPool", "Transaction", "TransactionLimits"]

_STRING_TAG = bytes((T_STRING,))  # an encoded id starts so


class RandomPool:
    """Random bytes from ``os.urandom``, drawn a page at a time (one system call per id costs
    a third of making the id). Not thread-safe: each database has one, used under a lock.
    A forked child starts with an empty pool (it must not reuse its parent's bytes)."""

    __slots__ = ("__weakref__", "_buf", "_pos")
    _PAGE = 4096

    def __init__(self) -> None:
        self._buf = b""
        self._pos = 0
        _POOLS.add(self)

    def _reset(self) -> None:
        self._buf = b""
        self._pos = 0

    def take(self, n: int) -> bytes:
        pos = self._pos
        end = pos + n
        if end > len(self._buf):
            self._buf = os.urandom(max(self._PAGE, n))
            pos, end = 0, n
        self._pos = end
        return self._buf[pos:end]


_POOLS: weakref.WeakSet[RandomPool] = weakref.WeakSet()
if hasattr(os, "register_at_fork"):
    def _reset_pools() -> None:
        for pool in list(_POOLS):
            pool._reset()

    os.register_at_fork(after_in_child=_reset_pools)


def _new_id(table_number: int, creation_time: float, randomness: bytes) -> str:
    """A native id (``engine.stored``): the creation time's order bytes, then 8 random bytes.

    Ids stay unguessable, and the id alone locates its document's row.
    """
    return encode_id(table_number, native_internal(creation_time, randomness))


class DatabaseError(InvalidValueError):
    """A database operation was given bad arguments (unknown id, wrong table, system field...)."""


def _require_unchanged(op: str, doc_id: str, old: dict, key: str, value: Any) -> None:
    """A patch or replace may repeat a system field's value (or leave it out), not change it."""
    if value is not MISSING and value != old[key]:
        raise DatabaseError(
            f"db.{op} on {doc_id}: provided value {value!r} doesn't match '{key}' field of the document ({old[key]!r})"
        )


class LimitError(DatabaseError):
    """A transaction read or wrote more than Convex allows."""


@dataclass(frozen=True)
class TransactionLimits:
    """Per-transaction limits (Convex's defaults)."""

    documents_read: int = 32_000
    bytes_read: int = 16 * 1024 * 1024
    index_ranges: int = 4_096
    documents_written: int = 16_000
    bytes_written: int = 16 * 1024 * 1024


@dataclass
class _Savepoint:
    name: str
    writes: WriteSet
    created_tables: bool
    # An optimistic transaction's buffer as it was (None for an exclusive one).
    buffered: tuple[dict[int, TableOverlay], dict[bytes, dict | None], dict[str, TableInfo], set[bytes], list[tuple[str, bytes | None]]] | None = None


class Transaction:
    """A query's or mutation's access to the database (see module docstring)."""

    def __init__(self, db: Database, *, writable: bool, now_ms: float, exclusive_ts: int | None = None) -> None:
        self.db = db
        self.writable = writable
        self.now_ms = now_ms
        # Exclusive: the commit's timestamp, known from the start (the committer is ours).
        self.exclusive_ts = exclusive_ts
        self._buffered = writable and exclusive_ts is None
        self.source: Any = db.store if exclusive_ts is not None else None  # what reads read
        self.snapshot_ts = db.last_ts if exclusive_ts is None else exclusive_ts
        self.snapshot_started = exclusive_ts is not None
        self.read_ts: int | None = None  # time travel: the past timestamp read
        self.commit_ts: int | None = None
        # Per table number: the buffered writes (optimistic) or the past versions (time travel).
        self.overlays: dict[int, TableOverlay] = {}
        self._base: dict[bytes, dict | None] = {}  # buffered keys -> their snapshot version
        self._foreign: set[bytes] = set()  # buffered inserts with foreign ids
        self.new_tables: dict[str, TableInfo] = {}  # tables an optimistic transaction creates
        self._files: list[tuple[str, bytes | None]] = []  # buffered file writes: (storage id, bytes or None)
        self.after_commit: list[Callable[[], None]] = []
        self.reads = ReadSet()
        self.writes = WriteSet()
        self.paginated = False
        # Reactivity bookkeeping: a paginated query's pinned end cursor (in from the previous
        # run of a live query, out from this one) and whether the code looked at the clock.
        self.journal: str | None = None
        self.journal_out: str | None = None
        self.read_time = False
        self.functions: set[str] = set()  # paths run via ctx.run_query / run_mutation
        self.limits = db.limits
        self.documents_read = 0
        self.bytes_read = 0
        self.index_ranges = 0
        self.documents_written = 0
        self.bytes_written = 0
        self._created_tables = False
        self._savepoints: list[_Savepoint] = []
        self._reader: Any = None
        # A mutation's snapshot rows by storage key, as its reads returned them (its snapshot
        # never changes): a patch or get after a read (read-modify-write) finds the document
        # without asking the store again.
        self._stored_rows: dict[bytes, tuple[str, int]] | None = {} if self._buffered else None

    # -- snapshots --------------------------------------------------------------------------
    def start_snapshot(self) -> None:
        """Open the snapshot this transaction reads (its thread's reader connection); a
        transaction already reading on this thread shares its snapshot."""
        if self.snapshot_started:
            return
        reader = self.db.store.reader()
        if reader.depth:
            self.snapshot_ts = reader.snapshot_ts
        else:
            self.snapshot_ts = reader.snapshot_ts = self.db.begin_snapshot(reader)
        reader.depth += 1
        self._reader = self.source = reader
        self.snapshot_started = True

    def end_snapshot(self) -> None:
        reader = self._reader
        if reader is not None:
            self._reader = None
            reader.depth -= 1
            if not reader.depth:
                reader.end()

    def _src(self) -> Any:
        """The store connection reads go to (opening the snapshot on first use)."""
        if self.source is None:
            self.start_snapshot()
        return self.source

    def travel_to(self, ts: int | None) -> None:
        """Read the database as it was at ``ts`` (None: the snapshot itself)."""
        if ts is not None and ts < self.snapshot_ts:
            self.read_ts = ts

    def _overlay(self, number: int) -> TableOverlay | None:
        """The versions laid over the store's for one table, if any."""
        overlay = self.overlays.get(number)
        if overlay is None and self.read_ts is not None:
            overlay = self.overlays[number] = self.db.history.versions_at(
                self._src(), self.read_ts, number, self.snapshot_ts
            )
        return overlay

    def on_commit(self, action: Callable[[], None]) -> None:
        """Run ``action`` once this (exclusive) transaction has committed."""
        self.after_commit.append(action)

    def has_writes(self) -> bool:
        # (a write set alone counts: the backend's own state changes are commits too)
        return bool(self.writes) or bool(self.new_tables) or bool(self._files) or any(self.overlays.values())

    # -- file storage (the bytes of _storage documents, written with them) ------------------
    def put_file(self, storage_id: str, data: bytes) -> None:
        if self._buffered:
            self._files.append((storage_id, data))
        else:
            self.db.store.put_file(storage_id, data)

    def delete_file(self, storage_id: str) -> None:
        if self._buffered:
            self._files.append((storage_id, None))
        else:
            self.db.store.delete_file(storage_id)

    def get_file(self, storage_id: str) -> bytes | None:
        for sid, data in reversed(self._files):
            if sid == storage_id:
                return data
        return self._src().get_file(storage_id)

    @property
    def usage(self) -> dict[str, int]:
        """What this transaction read and wrote (Convex's per-call usage)."""
        return {
            "documents_read": self.documents_read,
            "bytes_read": self.bytes_read,
            "index_ranges": self.index_ranges,
            "documents_written": self.documents_written,
            "bytes_written": self.bytes_written,
        }

    # -- catalog ----------------------------------------------------------------------------
    def table(self, name: str) -> TableInfo | None:
        """A table as this transaction sees it (its own new tables included)."""
        if self.new_tables:
            info = self.new_tables.get(name)
            if info is not None:
                return info
        return self.db.table(name)

    def table_names(self) -> list[str]:
        """The user tables this transaction sees, by name (its own new tables included)."""
        names = set(self.db.table_names())
        names.update(name for name in self.new_tables if not name.startswith("_"))
        return sorted(names)

    def system_table(self, name: str) -> TableInfo:
        """A system table, created on first use: only in an exclusive transaction (imports),
        which writes the catalog directly."""
        if self.exclusive_ts is None:
            raise DatabaseError(f"The system table {name!r} is made only by an exclusive transaction")
        return self.db.system_table(name)

    def table_by_number(self, number: int) -> TableInfo | None:
        if self.new_tables:
            for info in self.new_tables.values():
                if info.number == number:
                    return info
        return self.db.table_by_number(number)

    def _create_table(self, name: str, system: bool = False) -> TableInfo:
        """A new table for this transaction's writes (created in the store at commit, or
        now in an exclusive transaction)."""
        db = self.db
        self._created_tables = True
        if not self._buffered:
            return db.system_table(name) if system else db.create_table(name)
        number = SYSTEM_TABLES[name] if system else db.reserve_table_number()
        info = self.new_tables[name] = db.pending_table(name, number)
        return info

    # -- limits -----------------------------------------------------------------------------
    def _count_range(self) -> None:
        self.index_ranges += 1
        if self.index_ranges > self.limits.index_ranges:
            raise LimitError(
                f"Too many index ranges read in one transaction (limit: {self.limits.index_ranges}); "
                "each db.get and db.query counts as one"
            )

    def _count_read(self, nbytes: int) -> None:
        self.documents_read += 1
        self.bytes_read += nbytes
        if self.documents_read > self.limits.documents_read:
            raise LimitError(f"Scanned too many documents in one transaction (limit: {self.limits.documents_read})")
        if self.bytes_read > self.limits.bytes_read:
            raise LimitError(f"Read too much data in one transaction (limit: {self.limits.bytes_read} bytes)")

    def _count_write(self, nbytes: int) -> None:
        self.documents_written += 1
        self.bytes_written += nbytes
        if self.documents_written > self.limits.documents_written:
            raise LimitError(f"Wrote too many documents in one transaction (limit: {self.limits.documents_written})")
        if self.bytes_written > self.limits.bytes_written:
            raise LimitError(f"Wrote too much data in one transaction (limit: {self.limits.bytes_written} bytes)")

    # -- sub-transactions -------------------------------------------------------------------
    def savepoint(self) -> _Savepoint:
        if self._buffered:
            buffered = (
                {n: ov.copy() for n, ov in self.overlays.items()}, dict(self._base),
                dict(self.new_tables), set(self._foreign), list(self._files),
            )
            sp = _Savepoint("", copy.deepcopy(self.writes), self._created_tables, buffered)
        else:
            sp = _Savepoint(self.db.store.savepoint(), copy.deepcopy(self.writes), self._created_tables)
        self._savepoints.append(sp)
        return sp

    def release(self, sp: _Savepoint) -> None:
        if sp.buffered is None:
            self.db.store.release(sp.name)
        self._savepoints.remove(sp)

    def rollback_to(self, sp: _Savepoint) -> None:
        self._savepoints.remove(sp)
        self.writes = sp.writes
        if sp.buffered is not None:
            self.overlays, self._base, self.new_tables, self._foreign, self._files = sp.buffered
        else:
            self.db.store.rollback_to(sp.name)
            if self._created_tables:
                # A table created inside the rolled-back part is gone (even if an earlier one stays).
                self.db.reload_catalog()
        self._created_tables = sp.created_tables

    # -- ids --------------------------------------------------------------------------------
    def resolve_id(
        self, doc_id: Any, op: str, table: str | None = None, only: str | None = None
    ) -> TableInfo | None:
        """The table of ``doc_id`` (None if that table does not exist); checks ``table``, and
        ``only``: ``"user"`` (functions' ``ctx.db``) or ``"system"`` (``ctx.db.system``) tables."""
        if not isinstance(doc_id, str):
            raise DatabaseError(
                f"Invalid argument `id` for `db.{op}`: expected a document ID string, got {doc_id!r}"
            )
        decoded = decode_id(doc_id)
        if decoded is None:
            raise DatabaseError(f"Unable to decode ID: {doc_id!r} is not a valid document ID")
        info = self.table_by_number(decoded[0])
        if table is not None:
            actual = info.name if info else None
            if actual != table:
                if actual is None:
                    raise DatabaseError(
                        f"Invalid argument `id` for `db.{op}`: expected ID in table {table!r} "
                        f"but got an ID of a table that does not exist"
                    )
                raise DatabaseError(
                    f"Invalid argument `id`, expected ID in table {table!r} but got ID in table {actual!r}"
                )
        if only is not None and info is not None and (info.name[0] == "_") != (only == "system"):
            if only == "system":
                raise DatabaseError(f"db.system.{op}({doc_id!r}): a document of the user table {info.name}: use ctx.db.{op}()")
            hint = "read it with ctx.db.system.get()" if op == "get" else "system tables are read-only"
            raise DatabaseError(f"db.{op}({doc_id!r}): a document of the system table {info.name}: {hint}")
        return info

    # -- reads ------------------------------------------------------------------------------
    def get(self, doc_id: Any, table: str | None = None, only: str | None = None) -> dict | None:
        info = self.resolve_id(doc_id, "get", table, only)
        self._count_range()
        key = encode_value(doc_id)
        if info is None:
            return None
        self.reads.add(point_range(info.name, "by_id", key))
        row = self._find(info, doc_id, key)
        if row is None:
            return None
        self._count_read(len(row[1]))
        return load_row(*row)

    def _find(self, info: TableInfo, doc_id: str, id_key: bytes) -> tuple[bytes, str, int] | None:
        """The stored ``(key, json, plain)`` of a document by id (``id_key``: its encoding)."""
        decoded = decode_id(doc_id)
        if decoded is None:
            return None
        overlays = self.overlays
        if overlays or self.read_ts is not None:
            overlay = self._overlay(info.number)
            if overlay is not None:
                okey = overlay.key_for_id(id_key)
                if okey is not None:
                    version = overlay.versions[okey]
                    return (okey, version.text, version.plain) if version.doc is not None else None
        if self.new_tables and self.new_tables.get(info.name) is info:
            return None  # a table this transaction creates: nothing stored yet
        return self._stored_find(info, doc_id, id_key)

    def _fetch(
        self, index: IndexInfo, lo: bytes, hi: bytes, descending: bool, limit: int
    ) -> tuple[list[tuple[bytes, str, int]], list[dict]]:
        """Up to ``limit`` entries of ``index`` in ``[lo, hi)``: ``(index key, json, plain)``
        rows and their documents (the overlay's versions merged in, if any)."""
        overlay = self._overlay(index.table_number) if (self.overlays or self.read_ts is not None) else None
        if overlay:
            name = index.name
            if name == "by_id":
                def storage_key(k: bytes) -> bytes:
                    return overlay.by_id.get(k, b"")
            elif name == "by_creation_time":
                def storage_key(k: bytes) -> bytes:
                    return k
            else:
                n = index.doc_key_len

                def storage_key(k: bytes) -> bytes:
                    return k[-n:]

            return merge_rows(
                lambda a, b, n_: self._fetch_stored(index, a, b, descending, n_),
                overlay, index, lo, hi, descending, limit, storage_key,
            )
        return self._fetch_stored(index, lo, hi, descending, limit)

    def _fetch_stored(
        self, index: IndexInfo, lo: bytes, hi: bytes, descending: bool, limit: int
    ) -> tuple[list[tuple[bytes, str, int]], list[dict]]:
        """``_fetch`` from the store alone (at the time travelled to, if any)."""
        if index.index_id < 0:  # an index of a table this transaction creates: nothing stored
            return [], []
        store = self._src()
        ts = self.read_ts
        name = index.name
        if name == "by_creation_time":  # the documents table itself
            rows = store.scan(index.table_number, None, lo, hi, descending, limit, 0, ts)
            self._remember(rows, 0)
            return rows, load_rows(rows)
        if name == "by_id":
            stored = self._id_rows(index, lo, hi, descending, limit)
            return [(k[CT_KEY_LEN:], t, p) for k, t, p in stored], load_rows(stored)
        rows = store.scan(index.table_number, index.index_id, lo, hi, descending, limit, index.doc_key_len, ts)
        self._remember(rows, index.doc_key_len)
        return rows, load_rows(rows, index.doc_key_len)

    def _remember(self, rows: list[tuple[bytes, str, int]], key_len: int) -> None:
        """Keep a mutation's few scanned rows for ``_stored_find`` (a big scan is rarely
        written back row by row, and would only fill the dict)."""
        cache = self._stored_rows
        if cache is None or len(rows) > 64:
            return
        if key_len:
            for key, text, plain in rows:
                cache[key[-key_len:]] = (text, plain)
        else:
            for key, text, plain in rows:
                cache[key] = (text, plain)

    def _id_rows(
        self, index: IndexInfo, lo: bytes, hi: bytes, descending: bool, limit: int
    ) -> list[tuple[bytes, str, int]]:
        """Stored rows of a by_id range: one id's (the usual ``eq``) found from the id itself."""
        if hi == prefix_end(lo) and lo[:1] == _STRING_TAG and lo[-1:] == b"\x00" and limit > 0:
            try:
                doc_id = lo[1:-1].decode("ascii")
            except UnicodeDecodeError:
                doc_id = None
            decoded = decode_id(doc_id) if doc_id is not None else None
            info = self.table_by_number(index.table_number)
            if decoded is not None and decoded[0] == index.table_number and info is not None:
                row = self._stored_find(info, doc_id, lo)  # type: ignore[arg-type]
                return [row] if row is not None else []
        return self._src().scan_by_id(index.table_number, lo, hi, descending, limit, self.read_ts)

    def _stored_find(self, info: TableInfo, doc_id: str, id_key: bytes) -> tuple[bytes, str, int] | None:
        """``_find`` in the store alone (overlays aside), at the time travelled to, if any."""
        decoded = decode_id(doc_id)
        if decoded is None:
            return None
        key = id_key_candidate(decoded[1], id_key)
        cache = self._stored_rows
        if cache is not None:
            seen = cache.get(key)
            if seen is not None:
                return key, seen[0], seen[1]
        store = self._src()
        ts = self.read_ts
        row = store.get_document(info.number, key, ts)
        if row is not None:
            if cache is not None:
                cache[key] = row[0], row[1]
            return key, row[0], row[1]
        return store.find_foreign(info.number, id_key, ts) if info.foreign_ids else None

    def table_rows(self, info: TableInfo) -> list[tuple[bytes, str, int]]:
        """``(storage key, text, plain)`` of every document of a table as this transaction
        sees it, in key order (no reads recorded, no limits: for derived indexes)."""
        rows: list[tuple[bytes, str, int]] = []
        if not (self.new_tables and self.new_tables.get(info.name) is info):  # (new: nothing stored)
            rows = list(self._src().iter_table_documents(info.number, self.read_ts))
        overlay = self._overlay(info.number) if (self.overlays or self.read_ts is not None) else None
        if overlay:
            rows = [row for row in rows if row[0] not in overlay.versions]
            rows.extend(overlay.rows())
            rows.sort()
        return rows

    # -- for search indexes (engine.search) --------------------------------------------------
    def sees_index(self, info: TableInfo) -> bool:
        """Whether the store's search indexes of ``info`` are what this transaction sees: no
        time travel, no buffered writes to it, no unsynced writes of an exclusive transaction."""
        if self.read_ts is not None or info.number in self.overlays:
            return False
        return self.exclusive_ts is None or info.name not in self.writes.tables

    def buffered_versions(self, info: TableInfo) -> dict[bytes, tuple[dict | None, dict | None]] | None:
        """A mutation's buffered writes to ``info``: storage key -> (snapshot version, buffered
        version), None for the past and exclusive transactions (their versions are the table)."""
        if not self._buffered or self.read_ts is not None:
            return None
        overlay = self.overlays.get(info.number)
        if overlay is None:
            return {}
        return {key: (self._base.get(key), version.doc) for key, version in overlay.versions.items()}

    def document_at_key(self, info: TableInfo, key: bytes) -> tuple[dict, int] | None:
        """The document stored under storage key ``key`` as this transaction sees it, with its
        stored size (no read recorded)."""
        overlay = self._overlay(info.number) if (self.overlays or self.read_ts is not None) else None
        if overlay is not None:
            version = overlay.versions.get(key)
            if version is not None:
                return (load_row(key, version.text, version.plain), len(version.text)) if version.doc is not None else None
        if self.new_tables and self.new_tables.get(info.name) is info:
            return None
        row = self._src().get_document(info.number, key, self.read_ts)
        return (load_row(key, row[0], row[1]), len(row[0])) if row is not None else None

    def count_documents(self, info: TableInfo) -> int:
        """How many documents a table holds as this transaction sees it."""
        overlay = self._overlay(info.number) if (self.overlays or self.read_ts is not None) else None
        if overlay:
            return len(self.table_rows(info))
        return self._src().count_documents(info.number, self.read_ts)

    def iter_documents_ordered(self, table_number: int, batch: int = 65536) -> Iterator[list[tuple[bytes, str, int]]]:
        """Batches of ``(storage key, text, plain)`` of a table as this transaction sees it, in
        key order (no reads recorded, no limits: exports)."""
        if self.overlays or self.read_ts is not None:
            info = self.table_by_number(table_number)
            rows = self.table_rows(info) if info is not None else []
            return iter([rows[i : i + batch] for i in range(0, len(rows), batch)])
        return self._src().iter_documents_ordered(table_number, batch)

    def json_batches(self, table_number: int, id_len: int) -> Iterator[tuple[str, str, str, bytes]]:
        """A table's documents joined by SQLite a batch at a time (``StoreReads.iter_json_batches``):
        only for a transaction that reads the store as it is (no overlay)."""
        if self.overlays or self.read_ts is not None:
            raise DatabaseError("json_batches() reads the store as it is: not in the past, not with buffered writes")
        return self._src().iter_json_batches(table_number, id_len)

    def scan(
        self, table: str, index: IndexInfo | None, index_name: str, lo: bytes, hi: bytes, descending: bool,
        batch: int = 64,
    ) -> Iterator[tuple[bytes, dict, int]]:
        """Yield ``(key, document, size)`` for keys in ``[lo, hi)``, recording what was read.

        The recorded range grows as rows are yielded, so a consumer that stops early (take,
        first, paginate, a ``break``) depends only on the part it actually saw.
        """
        self._count_range()
        if descending:
            read = self.reads.add(KeyRange(table, index_name, hi, hi))
        else:
            read = self.reads.add(KeyRange(table, index_name, lo, lo))
        if index is None:  # table (or index) does not exist yet: empty, but still watched
            read.lo, read.hi = lo, hi
            return
        batch = max(1, min(batch, 1024))
        max_docs, max_bytes = self.limits.documents_read, self.limits.bytes_read
        while True:
            rows, docs = self._fetch(index, lo, hi, descending, batch)
            for (key, text, _plain), doc in zip(rows, docs):
                # Inlined limit accounting: this loop runs once per document read.
                size = len(text)
                self.documents_read += 1
                self.bytes_read += size
                if self.documents_read > max_docs or self.bytes_read > max_bytes:
                    self._count_read(0)  # raises the right error
                if descending:
                    read.lo = key
                else:
                    read.hi = key + b"\x00"
                yield key, doc, size
            if len(rows) < batch:
                break
            last = rows[-1][0]
            if descending:
                hi = last
            else:
                lo = last + b"\x00"
            batch = min(batch * 2, 1024)
        if descending:
            read.lo = lo
        else:
            read.hi = hi

    def scan_all(
        self, table: str, index: IndexInfo | None, index_name: str, lo: bytes, hi: bytes, descending: bool,
        keep: Callable[[dict], bool] | None = None,
    ) -> list[dict]:
        """Every document with a key in ``[lo, hi)`` (those ``keep`` accepts), in key order.

        ``scan`` consumed to its end, with the same reads, limits and errors, but a batch of
        rows at a time: made for ``collect``, which always reads its whole range.
        """
        self._count_range()
        if descending:
            read = self.reads.add(KeyRange(table, index_name, hi, hi))
        else:
            read = self.reads.add(KeyRange(table, index_name, lo, lo))
        if index is None:  # table (or index) does not exist yet: empty, but still watched
            read.lo, read.hi = lo, hi
            return []
        out: list[dict] = []
        batch = 256
        while True:
            rows, docs = self._fetch(index, lo, hi, descending, batch)
            self._count_batch(rows, read, descending)
            out.extend(docs if keep is None else [doc for doc in docs if keep(doc)])
            if len(rows) < batch:
                break
            last = rows[-1][0]
            if descending:
                hi = read.lo = last
            else:
                lo = last + b"\x00"
                read.hi = lo
            batch = min(batch * 2, 1024)
        if descending:
            read.lo = lo
        else:
            read.hi = hi
        return out

    def _count_batch(self, rows: list[tuple[bytes, str, int]], read: KeyRange, descending: bool) -> None:
        """Count a batch of rows read against the limits; past a limit, fail at exactly the
        row (and with exactly the read range) where ``scan`` would."""
        limits = self.limits
        documents = self.documents_read + len(rows)
        nbytes = self.bytes_read + sum([len(row[1]) for row in rows])
        if documents <= limits.documents_read and nbytes <= limits.bytes_read:
            self.documents_read, self.bytes_read = documents, nbytes
            return
        for key, text, _plain in rows:
            self._count_read(len(text))  # raises at the first row past a limit
            if descending:
                read.lo = key
            else:
                read.hi = key + b"\x00"

    # -- writes -----------------------------------------------------------------------------
    def _require_writable(self, op: str) -> None:
        if not self.writable:
            raise DatabaseError(f"db.{op} is not available in a query: queries are read-only (use a mutation)")

    def insert(self, table: Any, value: Any) -> str:
        if not self.writable:
            self._require_writable("insert")
        self.db.check_table_name(table, "insert into")
        if not isinstance(value, dict):
            raise DatabaseError(f"db.insert into {table!r}: Value must be an Object, got {type(value).__name__}")
        if "_id" in value:
            raise DatabaseError(f"db.insert into {table!r}: Provided document ID; `_id` is assigned by the database")
        if "_creationTime" in value:
            raise DatabaseError(
                f"db.insert into {table!r}: Provided creation time; `_creationTime` is assigned by the database"
            )
        db = self.db
        doc, size, plain = db.prepare_document(table, value)
        info = self.table(table)
        if info is None:
            info = self._create_table(table)
            self.writes.add_table_created(table)
        ct, randomness = db.new_document_stamp()
        doc_id = _new_id(info.number, ct, randomness)
        self._write_new(info, doc_id, ct, doc, size, plain)
        return doc_id

    def insert_system(
        self, table: str, value: dict, *, doc_id: str | None = None, creation_time: float | None = None
    ) -> str:
        """Insert into a system table (the backend's own writes: no user checks, no schema);
        an import passes the ``doc_id`` (of this table) and ``creation_time`` to keep."""
        self._require_writable("insert")
        info = self.table(table)
        if info is None:
            info = self._create_table(table, system=True)
        doc, size, plain = self.db.prepare_document(table, value)
        ct = self.db.next_creation_time() if creation_time is None else creation_time
        if doc_id is None:
            doc_id = _new_id(info.number, ct, self.db.new_randomness(8))
            foreign = False
        else:
            decoded = decode_id(doc_id)
            if decoded is None or decoded[0] != info.number:
                raise DatabaseError(f"{doc_id!r} is not an id of the system table {table}")
            if self._find(info, doc_id, encode_value(doc_id)) is not None:
                raise DatabaseError(f"A document with id {doc_id!r} already exists in {table}")
            foreign = not is_native(decoded[1], ct)
        self._write_new(info, doc_id, ct, doc, size, plain, foreign)
        return doc_id

    def patch(self, doc_id: Any, fields: Any, table: str | None = None, only: str | None = None) -> None:
        self._require_writable("patch")
        info, old = self._existing(doc_id, "patch", "Update", table, only)
        if not isinstance(fields, dict):
            raise DatabaseError(f"db.patch: Value must be an Object, got {type(fields).__name__}")
        new = dict(old)
        for key, value in fields.items():
            if key in ("_id", "_creationTime"):
                _require_unchanged("patch", doc_id, old, key, value)
                continue
            if value is MISSING:
                new.pop(key, None)
            else:
                new[key] = value
        self._rewrite(info, doc_id, old, new)

    def replace(self, doc_id: Any, value: Any, table: str | None = None, only: str | None = None) -> None:
        self._require_writable("replace")
        info, old = self._existing(doc_id, "replace", "Replace", table, only)
        if not isinstance(value, dict):
            raise DatabaseError(f"db.replace: Value must be an Object, got {type(value).__name__}")
        new = {"_id": old["_id"], "_creationTime": old["_creationTime"]}
        for key, v in value.items():
            if key in ("_id", "_creationTime"):
                _require_unchanged("replace", doc_id, old, key, v)
                continue
            new[key] = v
        self._rewrite(info, doc_id, old, new)

    def delete(self, doc_id: Any, table: str | None = None, only: str | None = None) -> None:
        self._require_writable("delete")
        info, old = self._existing(doc_id, "delete", "Delete", table, only)
        self._write(info, doc_id, old, None, 0)

    def _existing(
        self, doc_id: Any, op: str, verb: str, table: str | None, only: str | None = None
    ) -> tuple[TableInfo, dict]:
        info = self.resolve_id(doc_id, op, table, only)
        if info is None:
            raise DatabaseError(f'Table for ID "{doc_id}" not found')
        key = encode_value(doc_id)
        row = self._find(info, doc_id, key)
        if row is None:
            raise DatabaseError(f"{verb} on nonexistent document ID {doc_id}")
        # A write depends on what it overwrote: record the read like Convex does.
        self.reads.add(point_range(info.name, "by_id", key))
        return info, load_row(*row)

    def _rewrite(self, info: TableInfo, doc_id: str, old: dict, new: dict) -> None:
        doc, size, plain = self.db.prepare_document(info.name, user_fields(new), doc_id=doc_id)
        full = {"_id": old["_id"], "_creationTime": old["_creationTime"]}
        full.update(doc)
        self._write(info, doc_id, old, full, size, dumps_user(doc, plain))

    def _write_new(
        self, info: TableInfo, doc_id: str, creation_time: float, user: dict, size: int,
        plain: bool | None = None, foreign: bool = False,
    ) -> None:
        """Insert a document (the hot path): its user fields ``user`` (``plain``: known to be
        plain JSON), stored under its creation time and id; ``foreign``: see ``engine.stored``."""
        self._count_write(size)
        table = info.name
        writes = self.writes
        writes.tables.add(table)
        writes.documents += 1
        add = writes.add
        id_key = encode_value(doc_id)
        add(table, "by_id", id_key)
        key = encode_value(creation_time) + id_key
        add(table, "by_creation_time", key)
        entry_indexes = info.entry_indexes
        # (index fields are user fields: ``user`` has them)
        entry_keys = [index.prefix(user) + key for index in entry_indexes]  # type: ignore[misc]
        for index, entry_key in zip(entry_indexes, entry_keys):
            add(table, index.name, entry_key)
        text, plain = dumps_user(user, plain)
        if self._buffered:
            overlay = self.overlays.get(info.number)
            if overlay is None:
                overlay = self.overlays[info.number] = TableOverlay(info.number)
            doc = {"_id": doc_id, "_creationTime": creation_time}
            doc.update(user)
            overlay.set(key, doc, text, plain)
            self._base.setdefault(key, None)
            if foreign:
                self._foreign.add(key)
            return
        store = self.db.store
        store.insert_document(info.number, key, text, plain, foreign, self.exclusive_ts or 0)
        if foreign:
            info.foreign_ids = True
        if entry_indexes:
            store.insert_entries([(index.index_id, k) for index, k in zip(entry_indexes, entry_keys)])

    def _write(
        self, info: TableInfo, doc_id: str, old: dict, new: dict | None, size: int,
        stored: tuple[str, bool] | None = None,
    ) -> None:
        """Update (``new``, with its ``stored`` text and plain flag) or delete (``new`` and
        ``stored`` None) a document, with
        its index maintenance; record the touched keys. An update keeps ``_id`` and
        ``_creationTime``: every index key of both versions ends with the same storage key.
        """
        store = self.db.store
        self._count_write(size)
        table = info.name
        writes = self.writes
        writes.tables.add(table)
        writes.documents += 1
        id_key = encode_value(doc_id)
        writes.add(table, "by_id", id_key)
        suffix = encode_value(old["_creationTime"]) + id_key
        writes.add(table, "by_creation_time", suffix)
        removed: list[tuple[int, bytes]] = []
        added: list[tuple[int, bytes]] = []
        for index in info.entry_indexes:
            prefix = index.prefix
            old_key = prefix(old) + suffix  # type: ignore[misc]
            writes.add(table, index.name, old_key)
            new_key = None
            if new is not None:
                new_key = prefix(new) + suffix  # type: ignore[misc]
                if new_key != old_key:
                    writes.add(table, index.name, new_key)
            if old_key != new_key:
                removed.append((index.index_id, old_key))
                if new_key is not None:
                    added.append((index.index_id, new_key))
        if self._buffered:
            overlay = self.overlays.get(info.number)
            if overlay is None:
                overlay = self.overlays[info.number] = TableOverlay(info.number)
            if suffix not in self._base:
                self._base[suffix] = old
            if new is None:
                overlay.set(suffix, None)
            else:
                assert stored is not None  # an update comes with its text (_rewrite)
                overlay.set(suffix, new, *stored)
            return
        ts = self.exclusive_ts or 0
        if removed:
            store.delete_entries(removed)
        if new is None:
            store.delete_document(info.number, suffix, ts)
        else:
            assert stored is not None  # an update comes with its text (_rewrite)
            store.update_document(info.number, suffix, *stored, ts)
        if len(added) == 1:
            store.insert_entry(*added[0])
        elif added:
            store.insert_entries(added)

    # -- commit -----------------------------------------------------------------------------
    def apply(self, ts: int, tables: dict[int, TableInfo]) -> None:
        """Write the buffered writes to the store at commit ``ts`` (inside the committer's
        SQLite transaction); ``tables``: the tables this transaction created, as created."""
        store = self.db.store
        base = self._base
        foreign = self._foreign
        removed: list[tuple[int, bytes]] = []
        added: list[tuple[int, bytes]] = []
        for number, overlay in self.overlays.items():
            info = tables.get(number) or self.db.table_by_number(number)
            assert info is not None
            indexes = info.entry_indexes
            for key, version in overlay.versions.items():
                old = base.get(key)
                new = version.doc
                if old is None:
                    if new is None:
                        continue  # inserted and deleted again: nothing to write
                    is_foreign = key in foreign
                    store.insert_document(number, key, version.text, version.plain, is_foreign, ts)
                    if is_foreign:
                        info.foreign_ids = True
                    for index in indexes:
                        added.append((index.index_id, index.prefix(new) + key))  # type: ignore[misc]
                    continue
                for index in indexes:
                    prefix = index.prefix
                    old_key = prefix(old) + key  # type: ignore[misc]
                    new_key = prefix(new) + key if new is not None else None  # type: ignore[misc]
                    if old_key != new_key:
                        removed.append((index.index_id, old_key))
                        if new_key is not None:
                            added.append((index.index_id, new_key))
                if new is None:
                    store.delete_document(number, key, ts)
                else:
                    store.update_document(number, key, version.text, version.plain, ts)
        if removed:
            store.delete_entries(removed)
        if len(added) == 1:
            store.insert_entry(*added[0])
        elif added:
            store.insert_entries(added)
        for storage_id, data in self._files:
            if data is None:
                store.delete_file(storage_id)
            else:
                store.put_file(storage_id, data)
