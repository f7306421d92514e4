"""The database: catalog (tables, indexes), schema, clock, and the commit pipeline.

Concurrency is Convex's (MVCC with optimistic commits; see ``docs/CONCURRENCY.md``):

* every commit gets a timestamp (nanoseconds, strictly increasing, following the clock);
* a query reads one snapshot: its thread's reader connection in a read transaction, pinned
  to the latest commit's timestamp when it starts; no lock is held while user code runs;
* a mutation reads a snapshot too and buffers its writes (``engine.overlay``); its commit is
  validated against the write sets committed since its snapshot (``engine.writelog``) and
  applied by the one committer, or refused with :class:`OccConflict` (the backend re-runs it);
* bulk writers (imports, schema pushes, clearing) run *exclusive* transactions: they hold the
  committer for their duration and write the store directly; readers never wait for them;
* history (``engine.history``): every write keeps the version it replaced, for a window.
"""

from __future__ import annotations

import json
import math
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from ..store import SqliteStore, StoredIndex
from ..store.fulltext import TextIndexStore
from ..store.sqlite import FIRST_TABLE_NUMBER
from ..values import (
    encode_id,
    encode_value,
    id_table_number,
    normalize_document,
)
from ..values._check import check_canonical_document
from ..values.schema import SchemaDefinition, TableDefinition
from .clock import Clock, SystemClock
from .filters import field_getter
from .history import History, HistoryError
from .migrate import migrate
from .readset import WriteSet
from .stored import CT_KEY_LEN, SYSTEM_TABLES, key_creation_time, load_row
from .textindex import TextIndex, apply_declared, sync_commit
from .transaction import DatabaseError, RandomPool, Transaction, TransactionLimits
from .writelog import Conflict, WriteLog

__all__ = ["Database", "HistoryError", "IndexInfo", "OccConflict", "SchemaError", "TableInfo"]

# History kept by default (Convex keeps less; a notebook asks "what did this look like an hour ago?").
DEFAULT_HISTORY_NS = 3600 * 10**9

_TABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
SYSTEM_INDEXES = ("by_id", "by_creation_time")
# The backend's own indexes on system tables (made with the table, or when a file lacks them):
# the scheduler finds pending jobs and expired ones without reading every job it keeps.
SYSTEM_TABLE_INDEXES: dict[str, dict[str, tuple[str, ...]]] = {
    "_scheduled_functions": {"by_state": ("state.kind", "scheduledTime"), "by_completed_time": ("completedTime",)},
    "_environment_variables": {"by_name": ("name",)},  # backend/env.py
}


class OccConflict(Exception):
    """An optimistic commit read something another commit changed since its snapshot: the
    transaction must re-run (the backend does, a few times, before it gives up)."""

    def __init__(self, conflict: Conflict) -> None:
        self.conflict = conflict
        super().__init__(f"write conflict on table {conflict.table!r}" if conflict.table else "stale snapshot")


class SchemaError(DatabaseError):
    """A schema could not be applied (existing documents violate it, bad definition, ...)."""


@dataclass
class IndexInfo:
    """A queryable index: its range fields and the function computing a document's key.

    A key is ``prefix(doc)`` (the user fields; None for by_creation_time, which has none)
    followed by the document's storage key, the encoded ``_creationTime`` and ``_id``: writers
    that already have that suffix (the same for every index of a document) only compute the
    prefixes. by_id's key is the encoded ``_id``.
    """

    index_id: int
    table: str
    table_number: int
    name: str
    user_fields: tuple[str, ...]
    staged: bool = False
    key: Callable[[dict], bytes] = field(repr=False, default=lambda doc: b"")
    prefix: Callable[[dict], bytes] | None = field(repr=False, default=None)
    doc_key_len: int = 0  # length of the table's document keys (the tail of every entry key)

    @property
    def entries_id(self) -> int | None:
        """The id under which entries are stored; None for the system indexes (by_creation_time
        is the documents table itself, by_id is found from the id: see ``engine.stored``)."""
        return None if self.name in SYSTEM_INDEXES else self.index_id

    @property
    def range_fields(self) -> tuple[str, ...]:
        if self.name == "by_id":
            return ("_id",)
        return self.user_fields + ("_creationTime",)


def _make_prefix_function(user_fields: tuple[str, ...]) -> Callable[[dict], bytes] | None:
    """The encoded user fields of a document's key (None when the index has none)."""
    enc = encode_value
    if not user_fields:
        return None
    getters = tuple(field_getter(f) for f in user_fields)
    if len(getters) == 1:
        g = getters[0]
        return lambda doc: enc(g(doc))
    return lambda doc: b"".join([enc(g(doc)) for g in getters])


def _make_key_function(name: str, prefix: Callable[[dict], bytes] | None) -> Callable[[dict], bytes]:
    enc = encode_value
    if name == "by_id":
        return lambda doc: enc(doc["_id"])
    if prefix is None:
        return lambda doc: enc(doc["_creationTime"]) + enc(doc["_id"])
    return lambda doc: prefix(doc) + enc(doc["_creationTime"]) + enc(doc["_id"])


def doc_key_length(table_number: int) -> int:
    """Length of the storage keys (creation time and id) of a table: fixed by its number."""
    return CT_KEY_LEN + len(encode_value(encode_id(table_number, bytes(16))))


@dataclass
class TableInfo:
    name: str
    number: int
    indexes: dict[str, IndexInfo] = field(default_factory=dict)
    # Whether some document's id is foreign (``engine.stored``): only then can a get miss the
    # id's own storage key and still find the document. Never unset while the process runs.
    foreign_ids: bool = False
    # Its text search indexes by name (``engine.textindex``), kept in the store on commit.
    text_indexes: dict[str, TextIndex] = field(default_factory=dict)
    # Change ``indexes`` through set_index / remove_index: they keep this list current.
    _entry_indexes: list[IndexInfo] = field(default_factory=list, repr=False)

    @property
    def entry_indexes(self) -> list[IndexInfo]:
        """Indexes with stored entries: the user's (the system ones have none)."""
        return self._entry_indexes

    def set_index(self, index: IndexInfo) -> None:
        self.indexes[index.name] = index
        self._refresh()

    def remove_index(self, name: str) -> None:
        del self.indexes[name]
        self._refresh()

    def _refresh(self) -> None:
        self._entry_indexes = [ix for ix in self.indexes.values() if ix.name not in SYSTEM_INDEXES]


class Database:
    """Tables, indexes and documents in SQLite, accessed through :class:`Transaction`."""

    def __init__(
        self,
        path: str | None = None,
        *,
        clock: Clock | None = None,
        limits: TransactionLimits | None = None,
        history_ns: int = DEFAULT_HISTORY_NS,
    ) -> None:
        self.store = SqliteStore(path)
        self.clock = clock or SystemClock()
        try:
            migrate(self.store, self.clock_ns())  # a file an older version wrote
        except BaseException:
            self.store.close()
            raise
        self.limits = limits or TransactionLimits()
        # The committer: one commit (or exclusive transaction) at a time. Re-entrant: commit
        # listeners may commit (the scheduler's bookkeeping), and exclusive writers nest.
        self.commit_lock = threading.RLock()
        # Held while a commit becomes visible (its COMMIT, the catalog, last_ts) and while a
        # snapshot starts: a snapshot's timestamp is exactly the state its connection sees.
        self._publish = threading.Lock()
        self._ids = threading.Lock()  # creation times, id randomness, table numbers
        self.random = RandomPool()  # randomness of new ids (used under self._ids)
        self.commit_listeners: list[Callable[[WriteSet, int], None]] = []
        self.write_log = WriteLog()
        self.closed = False
        self._tables: dict[str, TableInfo] = {}
        self._by_number: dict[int, TableInfo] = {}
        self._reserved_numbers: set[int] = set()
        self.schema: SchemaDefinition | None = None
        self.reload_catalog()
        # Timestamps must never go backwards, across restarts too. The commit timestamp follows
        # the clock and is saved every few commits (not on every one: that write costs 15%
        # of a commit); creation times are recovered from the documents' keys (their latest).
        saved_ts = int(self.store.get_meta("ts") or 0)
        self.last_ts = max(saved_ts, self.clock_ns(), self.store.latest_revision_ts() or 0)
        self.last_creation_time = self._recover_creation_time()
        self._commits_since_save = 0
        self.history = History(self, history_ns)
        self._ensure_system_indexes()
        saved = self.store.get_meta("schema")
        if saved:
            self.schema = SchemaDefinition.from_json(json.loads(saved))
            self._ensure_text_indexes(self.schema)

    def _ensure_text_indexes(self, schema: SchemaDefinition) -> None:
        """Build the search indexes the saved schema declares and the file lacks (a file an
        older version wrote), once, as the database opens."""
        def matches(info: TableInfo | None, table_def: TableDefinition) -> bool:
            have = {n: (i.stored.search_field, i.stored.filter_fields) for n, i in (info.text_indexes if info else {}).items()}
            return have == {d.name: (d.search_field, tuple(d.filter_fields)) for d in table_def.search_indexes}

        stale = [name for name, table_def in schema.tables.items() if not matches(self._tables.get(name), table_def)]
        if not stale:
            return
        with self.write(exclusive=True):
            for name in stale:
                info = self._tables.get(name) or self.create_table(name)
                apply_declared(self, info, schema.tables[name].search_indexes)
            self._refresh_text_tables()

    def clock_ns(self) -> int:
        """The clock, in nanoseconds (commit timestamps follow it)."""
        return int(self.clock.now_ms() * 1_000_000)

    def _next_ts(self) -> int:
        """The timestamp of the next commit (under the commit lock)."""
        return max(self.last_ts + 1, self.clock_ns())

    # -- catalog ----------------------------------------------------------------------------
    def reload_catalog(self) -> None:
        tables = {name: TableInfo(name, num) for name, num in self.store.load_tables().items()}
        by_number = {t.number: t for t in tables.values()}
        for stored in self.store.load_indexes():
            table = by_number[stored.table_number]
            table.set_index(self._index_info(table.name, stored))
        for number in self.store.has_foreign_ids():
            by_number[number].foreign_ids = True
        for stored_text in TextIndexStore(self.store.conn).load():
            table = by_number[stored_text.table_number]
            table.text_indexes[stored_text.name] = TextIndex.of(stored_text, table.name)
        self._tables, self._by_number = tables, by_number
        self._refresh_text_tables()

    def _refresh_text_tables(self) -> None:
        """The names of the tables with search indexes (commits to others skip them at once)."""
        self.text_tables = frozenset(name for name, info in self._tables.items() if info.text_indexes)

    @staticmethod
    def _index_info(table: str, stored: StoredIndex) -> IndexInfo:
        prefix = _make_prefix_function(stored.fields)
        return IndexInfo(
            stored.index_id, table, stored.table_number, stored.name, stored.fields, stored.staged,
            _make_key_function(stored.name, prefix), prefix, doc_key_length(stored.table_number),
        )

    def table(self, name: str) -> TableInfo | None:
        return self._tables.get(name)

    def table_by_number(self, number: int) -> TableInfo | None:
        return self._by_number.get(number)

    def table_names(self) -> list[str]:
        """The user tables, by name (system tables such as ``_scheduled_functions`` apart)."""
        return sorted(name for name in self._tables if not name.startswith("_"))

    def system_table(self, name: str) -> TableInfo:
        """A system table (inside the caller's exclusive transaction), created on first use."""
        info = self._tables.get(name)
        if info is None:
            if name not in SYSTEM_TABLES:
                raise DatabaseError(f"{name!r} is not a system table")
            info = self.create_table(name, SYSTEM_TABLES[name])
            self._add_system_indexes(info)
        return info

    @staticmethod
    def _missing_system_indexes(info: TableInfo) -> dict[str, tuple[str, ...]]:
        """The system table's own indexes it lacks, by name."""
        return {k: f for k, f in SYSTEM_TABLE_INDEXES.get(info.name, {}).items() if k not in info.indexes}

    def _add_system_indexes(self, info: TableInfo) -> None:
        """Create the system table's own indexes it lacks (inside an exclusive transaction)."""
        for index_name, fields in self._missing_system_indexes(info).items():
            self._create_index(info, index_name, fields, False)

    def _ensure_system_indexes(self) -> None:
        """A file written before a system table had its indexes gets them (one transaction)."""
        tables = [info for info in self._tables.values() if self._missing_system_indexes(info)]
        if not tables:
            return
        with self.write(exclusive=True):
            for info in tables:
                self._add_system_indexes(info)

    def table_name_for_id(self, doc_id: str) -> str | None:
        number = id_table_number(doc_id)
        info = self._by_number.get(number) if number is not None else None
        return info.name if info else None

    def check_table_name(self, name: Any, op: str) -> None:
        if name in self._tables and name[0] != "_":  # (system tables are in the catalog too)
            return
        if not isinstance(name, str):
            raise DatabaseError(f"Cannot {op} table {name!r}: a table name must be a string")
        if name.startswith("_"):
            raise DatabaseError(f"Cannot {op} {name!r}: System tables (prefixed with `_`) are read-only.")
        if not _TABLE_NAME.match(name):
            raise DatabaseError(
                f"Invalid table name {name!r}: use letters, digits and underscores, starting with a letter"
            )

    def create_table(self, name: str, number: int | None = None) -> TableInfo:
        """Create a table with its system indexes (inside the caller's exclusive transaction);
        ``number`` chooses its table number (imports that keep ids)."""
        if number is None:
            number = self.reserve_table_number()
        number = self.store.create_table(name, number)
        info = TableInfo(name, number)
        for index_name in SYSTEM_INDEXES:
            index_id = self.store.create_index(number, index_name, ())
            info.set_index(self._index_info(name, StoredIndex(index_id, number, index_name, ())))
        self._tables[name] = info
        self._by_number[number] = info
        return info

    def reserve_table_number(self) -> int:
        """A user table number nobody has (a mutation's new table gets it at commit)."""
        with self._ids:
            used = set(self._by_number) | self._reserved_numbers
            number = max([FIRST_TABLE_NUMBER - 1, *(n for n in used if n >= FIRST_TABLE_NUMBER)]) + 1
            self._reserved_numbers.add(number)
            return number

    def pending_table(self, name: str, number: int) -> TableInfo:
        """A table a mutation creates, as its transaction sees it until the commit (its
        index ids are assigned then)."""
        info = TableInfo(name, number)
        fields: dict[str, tuple[str, ...]] = {n: () for n in SYSTEM_INDEXES}
        fields.update(SYSTEM_TABLE_INDEXES.get(name, {}))
        for index_name, index_fields in fields.items():
            info.set_index(self._index_info(name, StoredIndex(-1, number, index_name, index_fields)))
        return info

    # -- documents --------------------------------------------------------------------------
    def prepare_document(
        self, table: str, value: dict, doc_id: str | None = None
    ) -> tuple[dict, int, bool | None]:
        """Validate a document's user fields against the schema and Convex's limits: the
        canonical fields, their size, and whether they are plain JSON (None: not known)."""
        table_def = self._validated_table(table)
        if table_def is None:
            return (*normalize_document(value, table=table), None)
        fast = table_def.document_fast_path()
        if fast is not None and type(value) is dict:
            prepared = fast(value, self.table_name_for_id)
            if prepared is not None:
                return prepared
        validated = table_def.validate_document(value, id_table=self.table_name_for_id, doc_id=doc_id)
        # The validator's result is a fresh dict of canonical values: check the limits without
        # copying it again (unless it holds something normalize_document would convert).
        size = check_canonical_document(validated, table=table)
        if size is None:
            return (*normalize_document(validated, table=table), None)
        return validated, size, None

    def _validated_table(self, table: str) -> TableDefinition | None:
        schema = self.schema
        if schema is None or not schema.schema_validation:
            return None
        return schema.tables.get(table)

    def next_creation_time(self) -> float:
        """Strictly increasing creation times, even within one millisecond."""
        with self._ids:
            return self._next_creation_time_locked()

    def _next_creation_time_locked(self) -> float:
        now = self.clock.now_ms()
        last = self.last_creation_time
        ct = now if now > last else math.nextafter(last, math.inf)
        self.last_creation_time = ct
        return ct

    def new_randomness(self, n: int) -> bytes:
        with self._ids:
            return self.random.take(n)

    def new_document_stamp(self) -> tuple[float, bytes]:
        """A new document's creation time and its id's 8 random bytes (both at once: one
        lock for an insert, not two)."""
        with self._ids:
            return self._next_creation_time_locked(), self.random.take(8)

    def _recover_creation_time(self) -> float:
        latest = 0.0
        for info in self._tables.values():
            key = self.store.last_document_key(info.number)
            if key:
                latest = max(latest, key_creation_time(key))
        return latest

    # -- transactions -----------------------------------------------------------------------
    def latest_ts(self) -> int:
        """The timestamp of the latest commit."""
        return self.last_ts

    def read(self, at: int | None = None) -> _ReadScope:
        """``with db.read() as txn``: a read-only transaction on the latest snapshot, or on
        the one at ``at`` (a timestamp within the history)."""
        return _ReadScope(self, at)

    def write(self, *, exclusive: bool = False) -> _WriteScope | _ExclusiveScope:
        """``with db.write() as txn``: an optimistic read-write transaction, committed when
        the block exits normally (raising :class:`OccConflict` when something it read
        changed meanwhile), else dropped. ``exclusive=True``: the transaction holds the
        committer while it runs and writes the store directly (bulk writes)."""
        return _ExclusiveScope(self) if exclusive else _WriteScope(self)

    def document_deltas(
        self, cursor: int, limit: int, table: str | None = None
    ) -> tuple[list[tuple[int, str, str, dict | None]], int, bool]:
        """Convex's streaming export after ``cursor`` (a timestamp within the history):
        ``([(ts, table, id, document or None if deleted)], next cursor, more?)``."""
        from .history import document_deltas

        with self.read() as txn:
            latest = txn.snapshot_ts
            if cursor != latest:
                self.history.check_readable(cursor, latest)
            number = None
            if table is not None:
                info = self.table(table)
                if info is None:
                    return [], latest, False
                number = info.number
            changes, end, more = document_deltas(txn._src(), cursor, latest, limit, number)
        out = []
        for ts, table_number, key, doc in changes:
            info = self.table_by_number(table_number)
            if info is None or (info.name.startswith("_") and table is None):
                continue  # system tables are not exported
            doc_id = key[CT_KEY_LEN + 1 : -1].decode("ascii")
            out.append((ts, info.name, doc_id, doc))
        return out, end, more

    def advance_ts(self, ts: int) -> None:
        """Make the next commit's timestamp later than ``ts`` (a client has seen it)."""
        with self.commit_lock, self._publish:
            self.last_ts = max(self.last_ts, ts)

    def begin_snapshot(self, reader: Any) -> int:
        """Start a read transaction on ``reader`` and return the timestamp it sees."""
        with self._publish:
            reader.begin()
            return self.last_ts

    def _commit_optimistic(self, txn: Transaction) -> int:
        """Validate and apply a mutation's buffered writes (see module docstring)."""
        if not txn.has_writes():
            return txn.snapshot_ts
        new_tables = txn.new_tables
        with self.commit_lock:
            conflict = None
            if txn.snapshot_started and txn.reads.ranges:
                conflict = self.write_log.conflict(txn.snapshot_ts, txn.reads)
            if new_tables:
                for name, info in new_tables.items():
                    if conflict is None and (name in self._tables or info.number in self._by_number):
                        conflict = Conflict(None, name)
            if conflict is not None:
                self._unreserve(txn)
                raise OccConflict(conflict)
            ts = self._next_ts()
            store = self.store
            store.begin()
            try:
                created = [self._create_pending(info) for info in new_tables.values()] if new_tables else []
                txn.apply(ts, {info.number: info for info in created} if created else {})
                if self.text_tables:
                    sync_commit(self, txn.writes)
                self._housekeeping(ts, txn.documents_written)
                with self._publish:
                    store.commit()
                    for info in created:
                        self._tables[info.name] = info
                        self._by_number[info.number] = info
                    self.last_ts = ts
            except BaseException:
                store.rollback()
                self._unreserve(txn)
                raise
            if new_tables:
                self._unreserve(txn)
            self._published(txn.writes, ts)
            return ts

    def _unreserve(self, txn: Transaction) -> None:
        """The table numbers a transaction reserved are the catalog's now, or free again."""
        if txn.new_tables:
            with self._ids:
                self._reserved_numbers.difference_update(i.number for i in txn.new_tables.values())

    def _create_pending(self, pending: TableInfo) -> TableInfo:
        """Create a mutation's new table in the store (inside its commit): the real index ids."""
        store = self.store
        number = store.create_table(pending.name, pending.number)
        info = TableInfo(pending.name, number)
        for index in pending.indexes.values():
            index_id = store.create_index(number, index.name, index.user_fields, index.staged)
            info.set_index(self._index_info(pending.name, StoredIndex(index_id, number, index.name, index.user_fields, index.staged)))
        info.foreign_ids = pending.foreign_ids
        return info

    def _housekeeping(self, ts: int, written: int) -> None:
        """Inside a commit: save the clock now and then, forget history past its window."""
        self._commits_since_save += 1
        if self._commits_since_save >= 256:
            self.store.set_meta("ts", str(ts))
            self._commits_since_save = 0
        history = self.history
        if history.due(ts, written):
            history.compact(ts, written)

    def _published(self, writes: WriteSet, ts: int) -> None:
        """After a commit became visible (under the commit lock): logs, caches, listeners,
        then the WAL's upkeep (after the listeners: live queries are not kept waiting)."""
        self.write_log.append(ts, writes)
        if writes:
            for listener in list(self.commit_listeners):
                listener(writes, ts)
        self.store.tidy_wal()

    # -- schema -----------------------------------------------------------------------------
    def set_schema(self, schema: SchemaDefinition | None) -> None:
        """Apply a schema atomically: check existing documents, create, backfill and drop indexes."""
        with self.write(exclusive=True) as txn:
            self._apply_schema(schema)
            self._refresh_text_tables()
            self.store.set_meta("schema", json.dumps(schema.to_json()) if schema else "")
            txn.writes.tables.update(self._tables)
            txn.writes.everything = True
            txn.on_commit(lambda: setattr(self, "schema", schema))

    def _apply_schema(self, schema: SchemaDefinition | None) -> None:
        wanted: dict[str, TableDefinition] = dict(schema.tables) if schema else {}
        for name, table_def in wanted.items():
            info = self._tables.get(name) or self.create_table(name)
            if schema is not None and schema.schema_validation:
                for key, text, plain in list(self.store.iter_table_documents(info.number)):
                    doc = load_row(key, text, plain)
                    doc_id = doc["_id"]
                    user = {k: v for k, v in doc.items() if k not in ("_id", "_creationTime")}
                    try:
                        table_def.validate_document(user, id_table=self.table_name_for_id, doc_id=doc_id)
                    except Exception as exc:
                        raise SchemaError(
                            f"Schema validation failed: document {doc_id} in table {name!r} "
                            f"does not match the schema: {exc}"
                        ) from exc
            apply_declared(self, info, table_def.search_indexes)
            declared = {ix.name: ix for ix in table_def.indexes}
            for index_name, index in list(info.indexes.items()):
                if index_name in SYSTEM_INDEXES:
                    continue
                target = declared.get(index_name)
                # A changed field list or staged flag rebuilds the index (enabling a staged one).
                if (
                    target is None
                    or tuple(target.fields) != index.user_fields
                    or bool(getattr(target, "staged", False)) != index.staged
                ):
                    self.store.drop_index(index.index_id)
                    info.remove_index(index_name)
            for index_name, ix in declared.items():
                if index_name not in info.indexes:
                    self._create_index(info, index_name, tuple(ix.fields), bool(getattr(ix, "staged", False)))
        # Indexes of tables the schema no longer mentions are dropped too (Convex's push does);
        # system tables are not the schema's.
        for name, info in self._tables.items():
            if name in wanted or name in SYSTEM_TABLES:
                continue
            apply_declared(self, info, ())
            for index_name, index in list(info.indexes.items()):
                if index_name not in SYSTEM_INDEXES:
                    self.store.drop_index(index.index_id)
                    info.remove_index(index_name)

    def _create_index(self, info: TableInfo, name: str, fields: tuple[str, ...], staged: bool) -> None:
        index_id = self.store.create_index(info.number, name, fields, staged)
        index = self._index_info(info.name, StoredIndex(index_id, info.number, name, fields, staged))
        rows = []
        for key, text, plain in self.store.iter_table_documents(info.number):
            rows.append((index_id, index.key(load_row(key, text, plain))))
            if len(rows) >= 10_000:
                self.store.insert_entries(rows)
                rows = []
        if rows:
            self.store.insert_entries(rows)
        info.set_index(index)

    def close(self) -> None:
        """Save the timestamp and close the file (idempotent)."""
        with self.commit_lock:
            if self.closed:
                return
            self.closed = True
            try:
                self.store.set_meta("ts", str(self.last_ts))
            finally:
                self.store.close()


# The transaction scopes are plain classes rather than @contextmanager generators: they run
# once per function call, and a generator-based context manager costs about a microsecond more.


class _ReadScope:
    __slots__ = ("at", "db", "txn")

    def __init__(self, db: Database, at: int | None) -> None:
        self.db = db
        self.at = at

    def __enter__(self) -> Transaction:
        db = self.db
        self.txn = txn = Transaction(db, writable=False, now_ms=db.clock.now_ms())
        txn.start_snapshot()
        try:
            if self.at is not None:
                txn.travel_to(db.history.check_readable(self.at, txn.snapshot_ts))
        except BaseException:
            txn.end_snapshot()
            raise
        return txn

    def __exit__(self, *exc: object) -> None:
        self.txn.end_snapshot()


class _WriteScope:
    __slots__ = ("db", "txn")

    def __init__(self, db: Database) -> None:
        self.db = db

    def __enter__(self) -> Transaction:
        db = self.db
        self.txn = Transaction(db, writable=True, now_ms=db.clock.now_ms())
        return self.txn

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        txn = self.txn
        # The snapshot is done with before the commit: the commit's listeners (live queries
        # re-run at the new state) read on this thread.
        txn.end_snapshot()
        if exc_type is None:
            txn.commit_ts = self.db._commit_optimistic(txn)


class _ExclusiveScope:
    __slots__ = ("db", "saved_creation_time", "txn")

    def __init__(self, db: Database) -> None:
        self.db = db

    def __enter__(self) -> Transaction:
        db = self.db
        db.commit_lock.acquire()
        try:
            ts = db._next_ts()
            self.txn = txn = Transaction(db, writable=True, now_ms=db.clock.now_ms(), exclusive_ts=ts)
            self.saved_creation_time = db.last_creation_time
            db.store.begin()
        except BaseException:
            db.commit_lock.release()
            raise
        return txn

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        db, txn = self.db, self.txn
        store = db.store
        try:
            if exc_type is not None:
                store.rollback()
                db.last_creation_time = self.saved_creation_time
                db.reload_catalog()
                return
            ts = txn.exclusive_ts
            assert ts is not None
            try:
                if db.text_tables and txn.writes:
                    sync_commit(db, txn.writes)
                # (committed even without documents written: tables and indexes may be new)
                db._housekeeping(ts, txn.documents_written)
                with db._publish:
                    store.commit()
                    if txn.writes:
                        db.last_ts = ts
            except BaseException:
                store.rollback()
                db.reload_catalog()
                raise
            txn.commit_ts = ts if txn.writes else db.last_ts
            for action in txn.after_commit:
                action()
            if txn.writes:
                db._published(txn.writes, ts)
        finally:
            db.commit_lock.release()
