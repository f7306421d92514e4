"""The database: catalog (tables, indexes), schema, clock, lock, and the commit pipeline.

Concurrency model: one re-entrant lock serialises every query and mutation execution against
the single SQLite connection. That gives serializable transactions (N concurrent
read-modify-write mutations give N effects) and consistent snapshots, at the price of
parallelism that the GIL would mostly deny us anyway. Actions run outside the lock.
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from ..store import SqliteStore, StoredIndex
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
from .migrate import migrate
from .readset import WriteSet
from .stored import CT_KEY_LEN, key_creation_time, load_row
from .transaction import DatabaseError, RandomPool, Transaction, TransactionLimits

__all__ = ["Database", "IndexInfo", "TableInfo", "SchemaError"]

_TABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
SYSTEM_INDEXES = ("by_id", "by_creation_time")
# System tables and their table numbers (below the user tables' 10001, as in Convex). Only the
# backend writes them; functions read them through ``ctx.db.system``.
SYSTEM_TABLES = {"_storage": 1, "_scheduled_functions": 2, "_environment_variables": 3}
# The backend's own indexes on system tables (made with the table, or when a file lacks them):
# the scheduler finds pending jobs and expired ones without reading every job it keeps.
SYSTEM_TABLE_INDEXES: dict[str, dict[str, tuple[str, ...]]] = {
    "_scheduled_functions": {"by_state": ("state.kind", "scheduledTime"), "by_completed_time": ("completedTime",)},
    "_environment_variables": {"by_name": ("name",)},  # backend/env.py
}


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
    ) -> None:
        self.store = SqliteStore(path)
        try:
            migrate(self.store)  # a file an older version wrote
        except BaseException:
            self.store.close()
            raise
        self.clock = clock or SystemClock()
        self.limits = limits or TransactionLimits()
        self.lock = threading.RLock()
        self.random = RandomPool()  # randomness of new ids (used under the lock)
        self.commit_listeners: list[Callable[[WriteSet, int], None]] = []
        # Data derived from a table (search tokens, vector matrices), keyed (table, what): a
        # commit that writes the table drops its entries.
        self.table_caches: dict[tuple[str, str], Any] = {}
        self.commit_listeners.append(self._drop_table_caches)
        self.closed = False
        self._tables: dict[str, TableInfo] = {}
        self._by_number: dict[int, TableInfo] = {}
        self.schema: SchemaDefinition | None = None
        self.reload_catalog()
        self._ensure_system_indexes()
        # Timestamps must never go backwards, across restarts too. The commit timestamp follows
        # the wall clock and is saved every few commits (not on every one: that write costs 15%
        # of a commit); creation times are recovered from the documents' keys (their latest).
        saved_ts = int(self.store.get_meta("ts") or 0)
        self.last_ts = max(saved_ts, time.time_ns())
        self.last_creation_time = self._recover_creation_time()
        self._commits_since_save = 0
        saved = self.store.get_meta("schema")
        if saved:
            self.schema = SchemaDefinition.from_json(json.loads(saved))

    # -- catalog ----------------------------------------------------------------------------
    def reload_catalog(self) -> None:
        tables = {name: TableInfo(name, num) for name, num in self.store.load_tables().items()}
        by_number = {t.number: t for t in tables.values()}
        for stored in self.store.load_indexes():
            table = by_number[stored.table_number]
            table.set_index(self._index_info(table.name, stored))
        for number in self.store.has_foreign_ids():
            by_number[number].foreign_ids = True
        self._tables, self._by_number = tables, by_number

    @staticmethod
    def _index_info(table: str, stored: StoredIndex) -> IndexInfo:
        prefix = _make_prefix_function(stored.fields)
        return IndexInfo(
            stored.index_id, table, stored.table_number, stored.name, stored.fields, stored.staged,
            _make_key_function(stored.name, prefix), prefix, doc_key_length(stored.table_number),
        )

    def _drop_table_caches(self, writes: WriteSet, ts: int) -> None:
        if self.table_caches:
            for key in [k for k in self.table_caches if writes.everything or k[0] in writes.tables]:
                self.table_caches.pop(key, None)

    def table(self, name: str) -> TableInfo | None:
        return self._tables.get(name)

    def table_by_number(self, number: int) -> TableInfo | None:
        return self._by_number.get(number)

    def table_names(self) -> list[str]:
        """The user tables, by name (system tables such as ``_scheduled_functions`` apart)."""
        return sorted(name for name in self._tables if not name.startswith("_"))

    def system_table(self, name: str) -> TableInfo:
        """A system table (inside the caller's write transaction), created on first use."""
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
        """Create the system table's own indexes it lacks (inside a write transaction)."""
        for index_name, fields in self._missing_system_indexes(info).items():
            self._create_index(info, index_name, fields, False)

    def _ensure_system_indexes(self) -> None:
        """A file written before a system table had its indexes gets them (one transaction)."""
        tables = [info for info in self._tables.values() if self._missing_system_indexes(info)]
        if not tables:
            return
        self.store.begin()
        try:
            for info in tables:
                self._add_system_indexes(info)
            self.store.commit()
        except BaseException:
            self.store.rollback()
            self.reload_catalog()
            raise

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
        """Create a table with its system indexes (inside the caller's transaction);
        ``number`` chooses its table number (imports that keep ids)."""
        number = self.store.create_table(name, number)
        info = TableInfo(name, number)
        for index_name in SYSTEM_INDEXES:
            index_id = self.store.create_index(number, index_name, ())
            info.set_index(self._index_info(name, StoredIndex(index_id, number, index_name, ())))
        self._tables[name] = info
        self._by_number[number] = info
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
        now = self.clock.now_ms()
        last = self.last_creation_time
        ct = now if now > last else math.nextafter(last, math.inf)
        self.last_creation_time = ct
        return ct

    # -- transactions -----------------------------------------------------------------------
    def read(self) -> "_ReadScope":
        """``with db.read() as txn``: a read-only transaction at the latest committed state."""
        return _ReadScope(self)

    def write(self) -> "_WriteScope":
        """``with db.write() as txn``: a read-write transaction, committed when the block exits
        normally (then the commit listeners run, still under the lock), else rolled back."""
        return _WriteScope(self)

    def _abort(self, txn: Transaction, saved_creation_time: float) -> None:
        self.store.rollback()
        self.last_creation_time = saved_creation_time
        if txn._created_tables:
            self.reload_catalog()

    def _recover_creation_time(self) -> float:
        latest = 0.0
        for info in self._tables.values():
            key = self.store.last_document_key(info.number)
            if key:
                latest = max(latest, key_creation_time(key))
        return latest

    def _commit(self, txn: Transaction) -> int:
        if not txn.writes and not txn._created_tables:
            self.store.rollback()  # nothing written: nothing to make durable
            return self.last_ts
        ts = max(self.last_ts + 1, time.time_ns())
        self._commits_since_save += 1
        if self._commits_since_save >= 256:
            self.store.set_meta("ts", str(ts))
            self._commits_since_save = 0
        try:
            self.store.commit()
        except BaseException:
            self.store.rollback()
            self.reload_catalog()
            raise
        self.last_ts = ts
        return ts

    # -- schema -----------------------------------------------------------------------------
    def set_schema(self, schema: SchemaDefinition | None) -> None:
        """Apply a schema atomically: check existing documents, create, backfill and drop indexes."""
        with self.lock:
            self.store.begin()
            try:
                self._apply_schema(schema)
                self.store.set_meta("schema", json.dumps(schema.to_json()) if schema else "")
                self.store.commit()
            except BaseException:
                self.store.rollback()
                self.reload_catalog()
                raise
            self.schema = schema
            writes = WriteSet(tables=set(self._tables), everything=True)
            for listener in list(self.commit_listeners):
                listener(writes, self.last_ts)

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
        with self.lock:
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
    __slots__ = ("db",)

    def __init__(self, db: Database) -> None:
        self.db = db

    def __enter__(self) -> Transaction:
        db = self.db
        db.lock.acquire()
        try:
            return Transaction(db, writable=False, now_ms=db.clock.now_ms())
        except BaseException:
            db.lock.release()
            raise

    def __exit__(self, *exc: Any) -> None:
        self.db.lock.release()


class _WriteScope:
    __slots__ = ("db", "txn", "saved_creation_time")

    def __init__(self, db: Database) -> None:
        self.db = db

    def __enter__(self) -> Transaction:
        db = self.db
        db.lock.acquire()
        try:
            self.txn = txn = Transaction(db, writable=True, now_ms=db.clock.now_ms())
            self.saved_creation_time = db.last_creation_time
            db.store.begin()
        except BaseException:
            db.lock.release()
            raise
        return txn

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        db, txn = self.db, self.txn
        try:
            if exc_type is not None:
                db._abort(txn, self.saved_creation_time)
                return
            ts = db._commit(txn)
            writes = txn.writes
            if writes:
                for listener in list(db.commit_listeners):
                    listener(writes, ts)
        finally:
            db.lock.release()
