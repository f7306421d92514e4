"""SQLite persistence: documents, ordered index entries, catalog, clock.

The store is deliberately dumb: it knows rows and byte keys, not Convex semantics. Index
entries hold order-preserving byte keys (see ``values._keys``) so that SQLite's memcmp order on
BLOBs *is* Convex's index order and a range scan reads only its range. Documents are stored
under their ``by_creation_time`` key (see ``engine.stored``), and every index key ends with it,
so an entry is only its key: a scan finds the document from the key's last ``doc_key_len``
bytes (the same for every document of a table). Smaller entries mean fewer B-tree pages
written per commit.

MVCC: every document row carries the timestamp of the commit that wrote it (``ts``), and
``revisions`` keeps, for every later write, the version it replaced (an undo log): the state
at any retained timestamp T is "rows with ts <= T" plus "revisions' old versions that were
current at T" (``engine.history``). One *writer* connection applies commits (the engine's
committer, one at a time); *reader* connections, one per thread, read consistent snapshots
(SQLite's WAL snapshot isolation: a read transaction sees the database as of its start and
never blocks the writer). A commit is one SQLite transaction; in-memory databases are private
temporary files (WAL needs a file), so they behave exactly like file databases. File
databases use WAL with ``synchronous=NORMAL``: a committed transaction survives the process
being killed (it is in the WAL file, written before COMMIT returns).

Copying the WAL back into the database file (a checkpoint) is done by a background thread on
a connection of its own, not by whichever commit crosses SQLite's threshold: a large import's
commit would otherwise pay for rewriting everything it wrote, and every commit for copying its
pages. Once the WAL is past ``WAL_PAGES``, the committer copies the last few pages itself so
that SQLite starts the WAL over (see ``_Checkpointer``): its file stays a few MiB under any
stream of commits.
"""

from __future__ import annotations

import json
import os
import sqlite3
import tempfile
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from .fulltext import TEXT_INDEX_DDL

__all__ = ["FIRST_TABLE_NUMBER", "FORMAT", "SqliteStore", "StoredIndex", "submit_started"]

# Convex numbers user tables from 10001; keeping that makes our ids look like theirs.
FIRST_TABLE_NUMBER = 10001

_DDL = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tables (
    table_number INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS indexes (
    index_id INTEGER PRIMARY KEY,
    table_number INTEGER NOT NULL,
    name TEXT NOT NULL,
    fields TEXT NOT NULL,
    staged INTEGER NOT NULL DEFAULT 0,
    UNIQUE (table_number, name)
);
-- Documents are keyed by their by_creation_time key (_creationTime, then _id), so this table
-- *is* that index; the text holds the user fields. foreign_id flags the documents whose id does
-- not embed their creation time (see engine/stored.py): only those need an id index.
CREATE TABLE IF NOT EXISTS documents (
    table_number INTEGER NOT NULL,
    key BLOB NOT NULL,
    json TEXT NOT NULL,
    plain INTEGER NOT NULL,
    foreign_id INTEGER NOT NULL DEFAULT 0,
    ts INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (table_number, key)
) WITHOUT ROWID;
-- File storage: the bytes of each _storage document, written in the same transaction.
CREATE TABLE IF NOT EXISTS files (storage_id TEXT PRIMARY KEY, data BLOB NOT NULL);
-- An entry's key ends with its document's key: nothing else to store.
CREATE TABLE IF NOT EXISTS index_entries (
    index_id INTEGER NOT NULL,
    key BLOB NOT NULL,
    PRIMARY KEY (index_id, key)
) WITHOUT ROWID;
"""
# Older files get this in their migration's transaction (engine/migrate.py).
_HISTORY_DDL = """
-- The write log with undo: one row per document a commit wrote (ts: the commit), holding the
-- version it replaced (prev_*: NULL for an insert) and whether the write deleted it. A bulk
-- insert logs one row for a whole batch: its keys [key, key_hi] written at ts.
CREATE TABLE IF NOT EXISTS revisions (
    ts INTEGER NOT NULL,
    table_number INTEGER NOT NULL,
    key BLOB NOT NULL,
    prev_ts INTEGER,
    prev_json TEXT,
    prev_plain INTEGER,
    deleted INTEGER NOT NULL DEFAULT 0,
    key_hi BLOB,
    PRIMARY KEY (ts, table_number, key)
) WITHOUT ROWID
"""
# The id part of a storage key (after the 9-byte creation time), indexed for foreign ids only.
_FOREIGN_IDS = (
    "CREATE INDEX IF NOT EXISTS foreign_ids ON documents (table_number, substr(key, 10)) "
    "WHERE foreign_id = 1"
)
# The layout's version, in meta "format": 4 has text search indexes (FTS5 tables, see
# store/fulltext.py); 3 keeps history (documents.ts, revisions); 2 stores documents by creation
# time without history; 1 by id.
FORMAT = 4
# Greater than every commit timestamp (SQLite integers are signed 64-bit).
_MAX_TS = (1 << 63) - 1
# Bytes of a database file read through a memory map (address space, not memory).
MMAP_SIZE = 1 << 30
# The WAL size (pages) past which the checkpointer has it started over (SQLite's
# autocheckpoint default), and past which a commit checkpoints itself: the bound when the
# checkpointer lags (a burst of commits faster than its passes, a starved thread).
WAL_PAGES = 1000
WAL_LIMIT_PAGES = 8 * WAL_PAGES
# json_each and the other JSON functions are built into SQLite from 3.38.
MIN_SQLITE = (3, 38, 0)


def check_sqlite(version: tuple[int, int, int] = sqlite3.sqlite_version_info) -> None:
    """Refuse an SQLite too old for the store (its bulk writes use the JSON functions)."""
    if tuple(version) < MIN_SQLITE:
        have = ".".join(map(str, version))
        need = ".".join(map(str, MIN_SQLITE))
        raise RuntimeError(
            f"convex_notebook needs SQLite {need} or newer (its JSON functions); this Python's "
            f"sqlite3 module has SQLite {have}: use a newer Python build"
        )


def submit_started(pool: ThreadPoolExecutor, fn: Callable[..., Any], *args: Any) -> Future:
    """``pool.submit(fn, *args)``, returning once the worker is running ``fn``.

    A store call on a worker thread overlaps the caller's work only while SQLite executes,
    with the GIL released. Without this handshake, a caller going straight into a long C call
    (a JSON parse, a join) keeps the worker from even starting its statement until that call
    ends; with it, the worker is already inside SQLite.
    """
    started = threading.Event()

    def run() -> Any:
        started.set()
        return fn(*args)

    future = pool.submit(run)
    started.wait()
    return future


class _Checkpointer:
    """Checkpoints a WAL database from its own connection and thread, a little after commits.

    PASSIVE checkpoints never block the writer or readers; the delay lets a burst of commits
    share one. A checkpointer on another thread always trails a stream of commits, and SQLite
    starts the WAL over only when a write begins with all of it copied: so once the WAL is past
    ``WAL_PAGES``, the thread sets ``restart_due`` and the committer copies the few pages
    committed since, after its next commit (``SqliteStore.tidy_wal``); the WAL then restarts
    instead of growing without end.
    """

    DELAY_S = 0.05

    def __init__(self, path: str) -> None:
        self._path = path
        self._wake = threading.Event()
        self._stop = threading.Event()
        self.restart_due = False
        self._thread = threading.Thread(target=self._run, name="sqlite-checkpoint", daemon=True)
        self._thread.start()

    def poke(self) -> None:
        if not self._wake.is_set():  # (set() takes the Event's lock: most commits find it set)
            self._wake.set()

    def _run(self) -> None:
        conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        try:
            while True:
                self._wake.wait()
                if self._stop.wait(self.DELAY_S):  # let a burst of commits gather
                    return
                self._wake.clear()
                if self._stop.is_set():  # stop() came between the wait and the clear: its
                    return  # wake-up was just cleared, and the next wait would never end
                try:
                    _busy, frames, _copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                    if frames >= WAL_PAGES:
                        self.restart_due = True
                except sqlite3.Error:  # e.g. the file went away: the next commit pokes again
                    pass
        finally:
            conn.close()

    def release(self) -> None:
        """Let the thread end (and close its connection) without waiting for it."""
        self._stop.set()
        self._wake.set()

    def stop(self) -> None:
        self.release()
        self._thread.join()


def _temporary_file() -> str:
    """A new, empty file for an in-memory store (RAM-backed where /dev/shm exists)."""
    shm = "/dev/shm"
    directory = shm if os.path.isdir(shm) and os.access(shm, os.W_OK) else None
    fd, path = tempfile.mkstemp(prefix="convex-notebook-", suffix=".sqlite3", dir=directory)
    os.close(fd)
    return path


def _remove_files(path: str) -> None:
    for name in (path, path + "-wal", path + "-shm"):
        try:
            os.remove(name)
        except OSError:
            pass


def _release(checkpointer: _Checkpointer | None, readers: list, temporary: str | None) -> None:
    """What a store dropped without ``close()`` lets go of."""
    if checkpointer is not None:
        checkpointer.release()
    for reader in list(readers):
        try:
            reader.close()
        except Exception:  # noqa: BLE001, S110 - closing: one reader's failure must not keep the others open
            pass
    if temporary is not None:
        _remove_files(temporary)


@dataclass(frozen=True)
class StoredIndex:
    """An index row of the catalog: ``fields`` exclude the implicit ``_creationTime``/``_id``."""

    index_id: int
    table_number: int
    name: str
    fields: tuple[str, ...]
    staged: bool = False


class StoreReads:
    """The reads of a store, on one connection: the writer's (inside a write transaction it
    sees its own writes) or a snapshot reader's (``SnapshotReader``).

    Reads of documents take ``ts``: None reads the connection's state; a timestamp reads
    only the rows written at or before it (time travel; ``engine.history`` adds the older
    versions those rows replaced).
    """

    conn: sqlite3.Connection
    _exec: Callable[..., sqlite3.Cursor]

    def get_meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def load_tables(self) -> dict[str, int]:
        return {name: num for num, name in self.conn.execute("SELECT table_number, name FROM tables")}

    def load_indexes(self) -> list[StoredIndex]:
        rows = self.conn.execute(
            "SELECT index_id, table_number, name, fields, staged FROM indexes ORDER BY index_id"
        )
        return [StoredIndex(i, t, n, tuple(json.loads(f)), bool(s)) for i, t, n, f, s in rows]

    def get_document(self, table_number: int, key: bytes, ts: int | None = None) -> tuple[str, int] | None:
        """``(json, plain)`` of the document stored under ``key``, or None."""
        if ts is None:
            return self._exec(
                "SELECT json, plain FROM documents WHERE table_number = ? AND key = ?", (table_number, key)
            ).fetchone()
        return self._exec(
            "SELECT json, plain FROM documents WHERE table_number = ? AND key = ? AND ts <= ?",
            (table_number, key, ts),
        ).fetchone()

    def find_foreign(self, table_number: int, id_key: bytes, ts: int | None = None) -> tuple[bytes, str, int] | None:
        """``(key, json, plain)`` of the foreign-id document whose encoded id is ``id_key``."""
        return self._exec(
            # INDEXED BY: without statistics the planner would scan the table's primary key.
            "SELECT key, json, plain FROM documents INDEXED BY foreign_ids "
            "WHERE table_number = ? AND substr(key, 10) = ? AND foreign_id = 1 AND ts <= ?",
            (table_number, id_key, _MAX_TS if ts is None else ts),
        ).fetchone()

    def document_ts(self, table_number: int, key: bytes) -> int | None:
        """The timestamp of the commit that wrote the current version of a document."""
        row = self._exec(
            "SELECT ts FROM documents WHERE table_number = ? AND key = ?", (table_number, key)
        ).fetchone()
        return row[0] if row else None

    def has_foreign_ids(self) -> set[int]:
        """The table numbers with foreign-id documents."""
        return {r[0] for r in self.conn.execute("SELECT DISTINCT table_number FROM documents WHERE foreign_id = 1")}

    def iter_table_documents(self, table_number: int, ts: int | None = None) -> Iterator[tuple[bytes, str, int]]:
        """Every ``(key, json, plain)`` of a table, in key order."""
        return self.conn.execute(
            "SELECT key, json, plain FROM documents WHERE table_number = ? AND ts <= ? ORDER BY key",
            (table_number, _MAX_TS if ts is None else ts),
        )

    def count_documents(self, table_number: int, ts: int | None = None) -> int:
        if ts is None:
            return self.conn.execute(
                "SELECT COUNT(*) FROM documents WHERE table_number = ?", (table_number,)
            ).fetchone()[0]
        return self.conn.execute(
            "SELECT COUNT(*) FROM documents WHERE table_number = ? AND ts <= ?", (table_number, ts)
        ).fetchone()[0]

    def last_document_key(self, table_number: int) -> bytes | None:
        """The greatest key of a table's documents (its latest creation time), if any."""
        row = self.conn.execute(
            "SELECT key FROM documents WHERE table_number = ? ORDER BY key DESC LIMIT 1", (table_number,)
        ).fetchone()
        return row[0] if row else None

    def scan(
        self,
        table_number: int,
        index_id: int | None,
        lo: bytes,
        hi: bytes,
        descending: bool,
        limit: int,
        doc_key_len: int = 0,
        ts: int | None = None,
    ) -> list[tuple[bytes, str, int]]:
        """Up to ``limit`` ``(key, json, plain)`` rows with ``lo <= key < hi`` in key order.

        ``index_id`` None scans the documents themselves, i.e. the by_creation_time index. For
        an index, ``doc_key_len`` is the length of the table's document keys (the tail of every
        entry key). ``ts`` reads only the rows written at or before it.
        """
        if index_id is None:
            if ts is None:
                sql = _SCAN_DOCUMENTS_DESC if descending else _SCAN_DOCUMENTS_ASC
                return self._exec(sql, (table_number, lo, hi, limit)).fetchall()
            sql = _SCAN_DOCUMENTS_TS_DESC if descending else _SCAN_DOCUMENTS_TS_ASC
            return self._exec(sql, (table_number, lo, hi, ts, limit)).fetchall()
        if doc_key_len <= 0:
            raise ValueError("scanning an index needs the length of the table's document keys")
        if ts is None:
            sql = _SCAN_DESC if descending else _SCAN_ASC
            return self._exec(sql, (table_number, -doc_key_len, index_id, lo, hi, limit)).fetchall()
        sql = _SCAN_TS_DESC if descending else _SCAN_TS_ASC
        return self._exec(sql, (table_number, -doc_key_len, index_id, lo, hi, ts, limit)).fetchall()

    def scan_by_id(
        self, table_number: int, lo: bytes, hi: bytes, descending: bool, limit: int, ts: int | None = None
    ) -> list[tuple[bytes, str, int]]:
        """Up to ``limit`` ``(key, json, plain)`` documents whose encoded id (the key after its
        creation time) is in ``[lo, hi)``, in id order. Ids have no stored order: SQLite reads
        the table and sorts (by_id ranges wider than one id are rare; ``get`` never comes here)."""
        sql = _SCAN_IDS_DESC if descending else _SCAN_IDS_ASC
        return self._exec(sql, (table_number, lo, hi, _MAX_TS if ts is None else ts, limit)).fetchall()


    def table_number_owner(self, number: int) -> str | None:
        """The name of the table numbered ``number``, if any."""
        row = self.conn.execute("SELECT name FROM tables WHERE table_number = ?", (number,)).fetchone()
        return row[0] if row else None

    def document_keys(self, table_number: int) -> list[bytes]:
        return [r[0] for r in self.conn.execute("SELECT key FROM documents WHERE table_number = ?", (table_number,))]

    def entry_keys(self, index_id: int) -> list[bytes]:
        return [r[0] for r in self.conn.execute("SELECT key FROM index_entries WHERE index_id = ?", (index_id,))]

    def get_file(self, storage_id: str) -> bytes | None:
        row = self._exec("SELECT data FROM files WHERE storage_id = ?", (storage_id,)).fetchone()
        return bytes(row[0]) if row is not None else None

    def iter_json_batches(
        self, table_number: int, id_len: int, batch: int = 100_000, ts: int | None = None
    ) -> Iterator[tuple[str, str, str, bytes]]:
        """A table's documents in key order, ``batch`` at a time, each batch joined by SQLite:
        ``(texts, plains, ids, times)`` = their texts comma-separated, their plain flags as
        "0"/"1" characters, their ids (the ``id_len`` characters of each key after its
        9-byte creation time and string tag) comma-separated, and the 8 order bytes of their
        creation times concatenated. No Python object per document.

        The next batch's query runs on a worker thread while the caller handles the current
        one (SQLite releases the GIL as it executes): the caller must not use this connection
        until the iterator is exhausted or closed. ``ts``: only rows written at or before it.
        """
        sql = (
            "SELECT group_concat(json, ','), group_concat(plain, ''), "
            "group_concat(CAST(substr(key, 11, ?) AS TEXT), ','), "
            "CAST(group_concat(substr(key, 2, 8), '') AS BLOB), count(*), max(key) "
            "FROM (SELECT key, json, plain FROM documents WHERE table_number = ? AND key > ? "
            "AND ts <= ? ORDER BY key LIMIT ?)"
        )
        upto = _MAX_TS if ts is None else ts

        def fetch(after: bytes) -> tuple[Any, ...]:
            return self.conn.execute(sql, (id_len, table_number, after, upto, batch)).fetchone()

        with ThreadPoolExecutor(1, thread_name_prefix="read-ahead") as pool:
            row = fetch(b"")
            while row[4]:
                texts, plains, ids, times, count, last = row
                ahead = submit_started(pool, fetch, last) if count == batch else None
                try:
                    yield texts, plains, ids, times
                finally:
                    if ahead is not None:
                        wait([ahead])  # the connection is idle again before anything else
                if ahead is None:
                    return
                row = ahead.result()

    def iter_documents_ordered(
        self, table_number: int, batch: int = 65536, ts: int | None = None
    ) -> Iterator[list[tuple[bytes, str, int]]]:
        """Batches of ``(key, json, plain)`` of a table's documents in key order."""
        cur = self.conn.execute(
            "SELECT key, json, plain FROM documents WHERE table_number = ? AND ts <= ? ORDER BY key",
            (table_number, _MAX_TS if ts is None else ts),
        )
        while True:
            rows = cur.fetchmany(batch)
            if not rows:
                return
            yield rows



    # -- history (engine/history.py) ------------------------------------------------------------
    def versions_replaced_after(self, ts: int, table_number: int | None = None) -> list[tuple[int, bytes, int, str, int]]:
        """``(table_number, key, prev_ts, json, plain)`` of the versions that were current at
        ``ts`` and have been replaced or deleted since (one per document)."""
        if table_number is None:
            return self._exec(
                "SELECT table_number, key, prev_ts, prev_json, prev_plain FROM revisions "
                "WHERE ts > ? AND prev_ts <= ?",
                (ts, ts),
            ).fetchall()
        return self._exec(
            "SELECT table_number, key, prev_ts, prev_json, prev_plain FROM revisions "
            "WHERE ts > ? AND table_number = ? AND prev_ts <= ?",
            (ts, table_number, ts),
        ).fetchall()

    def revisions_between(
        self, after: int, upto: int, limit: int, table_number: int | None = None
    ) -> list[tuple[Any, ...]]:
        """Write-log rows with ``after < ts <= upto`` (of one table, if given), in (ts, table,
        key) order: ``(ts, table_number, key, prev_ts, prev_json, prev_plain, deleted, key_hi)``."""
        only = "" if table_number is None else f" AND table_number = {int(table_number)}"
        return self._exec(
            "SELECT ts, table_number, key, prev_ts, prev_json, prev_plain, deleted, key_hi FROM revisions "
            f"WHERE ts > ? AND ts <= ?{only} ORDER BY ts, table_number, key LIMIT ?",
            (after, upto, limit),
        ).fetchall()

    def next_revision(self, table_number: int, key: bytes, after: int) -> tuple[int, str | None, int | None] | None:
        """``(ts, prev_ts, prev_json, prev_plain)`` of the first write to a document after ``after``."""
        return self._exec(
            "SELECT ts, prev_json, prev_plain FROM revisions WHERE ts > ? AND table_number = ? AND key = ? "
            "ORDER BY ts LIMIT 1",
            (after, table_number, key),
        ).fetchone()

    def batch_documents(self, table_number: int, lo: bytes, hi: bytes, ts: int) -> list[tuple[bytes, str, int]]:
        """The current documents of a bulk-inserted key range still at their insert's ``ts``."""
        return self._exec(
            "SELECT key, json, plain FROM documents WHERE table_number = ? AND key >= ? AND key <= ? AND ts = ? "
            "ORDER BY key",
            (table_number, lo, hi, ts),
        ).fetchall()

    def batch_rewritten(self, table_number: int, lo: bytes, hi: bytes, ts: int) -> list[tuple[bytes, str, int]]:
        """The versions a bulk insert at ``ts`` wrote in ``[lo, hi]`` that later writes replaced."""
        return self._exec(
            "SELECT key, prev_json, prev_plain FROM revisions WHERE ts > ? AND table_number = ? "
            "AND key >= ? AND key <= ? AND prev_ts = ? ORDER BY key",
            (ts, table_number, lo, hi, ts),
        ).fetchall()

    def oldest_revision_ts(self) -> int | None:
        row = self._exec("SELECT MIN(ts) FROM revisions").fetchone()
        return row[0] if row else None

    def latest_revision_ts(self) -> int | None:
        row = self._exec("SELECT MAX(ts) FROM revisions").fetchone()
        return row[0] if row else None


class SnapshotReader(StoreReads):
    """A reader connection: ``begin()`` opens a read transaction, whose view (SQLite's WAL
    snapshot) stays fixed until ``end()``, whatever the writer commits meanwhile."""

    def __init__(self, path: str, uri: bool = False) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, uri=uri)
        self.conn.execute(f"PRAGMA mmap_size={MMAP_SIZE}")
        self.conn.execute("PRAGMA cache_size=-65536")
        self.conn.execute("PRAGMA temp_store=MEMORY")
        self.conn.execute("PRAGMA query_only=1")
        self._exec = self.conn.cursor().execute
        self.depth = 0  # transactions of this thread reading the current snapshot
        self.snapshot_ts = 0  # the engine's timestamp of it

    def begin(self) -> None:
        """Start a snapshot (the first read of a transaction fixes SQLite's view)."""
        self._exec("BEGIN")
        self._exec("SELECT 1 FROM meta LIMIT 1").fetchall()

    def end(self) -> None:
        if self.conn.in_transaction:
            self._exec("COMMIT")

    def close(self) -> None:
        self.conn.close()


class SqliteStore(StoreReads):
    """Rows and byte-keyed index entries in one SQLite database (a file, or ``:memory:``)."""

    def __init__(self, path: str | None = None) -> None:
        check_sqlite()
        self.path = path or ":memory:"
        self.in_memory = self.path == ":memory:"
        # An in-memory store is a private temporary file (in shared memory where there is
        # some): WAL snapshots need a file, and then readers behave as on a file store.
        self.file = _temporary_file() if self.in_memory else self.path
        try:
            # isolation_level=None: we issue BEGIN/COMMIT ourselves, so a commit is exactly one
            # SQLite transaction and savepoints nest predictably.
            self.conn = sqlite3.connect(self.file, isolation_level=None, check_same_thread=False)
            self.conn.execute("PRAGMA journal_mode=WAL")
            # In memory nothing is to survive the process: no need to wait for the disk.
            self.conn.execute("PRAGMA synchronous=OFF" if self.in_memory else "PRAGMA synchronous=NORMAL")
            # Checkpoints are _Checkpointer's job; SQLite's own only bounds the WAL.
            self.conn.execute(f"PRAGMA wal_autocheckpoint={WAL_LIMIT_PAGES}")
            # Reads through a memory map instead of a read() system call per page the cache
            # misses: a 100-document index query on a million documents takes a third less.
            self.conn.execute(f"PRAGMA mmap_size={MMAP_SIZE}")
            self.conn.execute("PRAGMA temp_store=MEMORY")
            # 64 MiB of page cache (the default is 2 MiB): index scans over big tables stay in memory.
            self.conn.execute("PRAGMA cache_size=-65536")
            self.format = self._open_format()
            self.conn.executescript(_DDL)
            if self.format == FORMAT:  # (a file to migrate gets these in its transaction)
                self.add_foreign_ids_index()
                self.conn.execute(_HISTORY_DDL)
        except BaseException:
            if self.in_memory:
                _remove_files(self.file)
            raise
        self._savepoints = 0
        # One reusable cursor for the hot statements whose results are read at once (saves
        # creating a cursor per statement); anything returning a live cursor uses conn.execute.
        self._exec = self.conn.cursor().execute
        self._readers: list[SnapshotReader] = []
        self._readers_lock = threading.Lock()
        self._local = threading.local()
        self._checkpointer: _Checkpointer | None = _Checkpointer(self.file)
        # A store dropped without close() (a notebook cell re-run) ends its thread too, and an
        # in-memory one removes its files.
        weakref.finalize(self, _release, self._checkpointer, self._readers, self.file if self.in_memory else None)

    def reader(self) -> SnapshotReader:
        """This thread's reader connection (made on first use)."""
        reader = getattr(self._local, "reader", None)
        if reader is None:
            reader = SnapshotReader(self.file)
            self._local.reader = reader
            with self._readers_lock:
                self._readers.append(reader)
        return reader

    def _open_format(self) -> int:
        """The layout of the file's documents: FORMAT, or 1 or 2 for a file an older version
        wrote (``engine.migrate`` converts it, in one transaction)."""
        columns = [r[1] for r in self.conn.execute("PRAGMA table_info(documents)")]
        if not columns:
            return FORMAT
        if "foreign_id" not in columns:
            return 1
        if "ts" not in columns:
            return 2
        found = self.conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'search_indexes'").fetchone()
        return FORMAT if found else 3

    def add_foreign_ids_index(self) -> None:
        """The documents' foreign_id and ts columns (older files lack them), the id index, the
        write log and the catalog of search indexes."""
        columns = [r[1] for r in self.conn.execute("PRAGMA table_info(documents)")]
        if "foreign_id" not in columns:
            self.conn.execute("ALTER TABLE documents ADD COLUMN foreign_id INTEGER NOT NULL DEFAULT 0")
        if "ts" not in columns:
            self.conn.execute("ALTER TABLE documents ADD COLUMN ts INTEGER NOT NULL DEFAULT 0")
        self.conn.execute(_FOREIGN_IDS)
        self.conn.execute(_HISTORY_DDL)
        for statement in TEXT_INDEX_DDL:
            self.conn.execute(statement)

    # -- transactions -----------------------------------------------------------------------
    def begin(self) -> None:
        self._exec("BEGIN IMMEDIATE")

    def commit(self) -> None:
        self._exec("COMMIT")
        if self._checkpointer is not None:
            self._checkpointer.poke()

    def tidy_wal(self) -> None:
        """After a commit, by the committer (no other write in between) but outside any lock
        readers wait on: once the checkpointer asks, copy the pages committed since its last
        pass, so that the next commit starts the WAL over. Tried again after the next commit
        while the checkpointer's own pass holds the copy; after its next pass while a reader
        holds an older snapshot (not at every commit of a long query)."""
        checkpointer = self._checkpointer
        if checkpointer is None or not checkpointer.restart_due:
            return
        try:
            busy, _frames, _copied = self.conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        except sqlite3.Error:  # (busy: the checkpointer is copying; anything else: next time)
            return
        if not busy:
            checkpointer.restart_due = False

    def rollback(self) -> None:
        if self.conn.in_transaction:
            self.conn.execute("ROLLBACK")
        self._savepoints = 0

    def savepoint(self) -> str:
        self._savepoints += 1
        name = f"sp{self._savepoints}"
        self.conn.execute(f"SAVEPOINT {name}")
        return name

    def release(self, name: str) -> None:
        self.conn.execute(f"RELEASE {name}")
        self._savepoints -= 1

    def rollback_to(self, name: str) -> None:
        self.conn.execute(f"ROLLBACK TO {name}")
        self.conn.execute(f"RELEASE {name}")
        self._savepoints -= 1

    def close(self) -> None:
        with self._readers_lock:
            readers, self._readers[:] = list(self._readers), []
        for reader in readers:
            reader.close()
        if self._checkpointer is not None:
            self._checkpointer.stop()
            self._checkpointer = None
        self.conn.close()  # the last connection to close checkpoints what is left
        if self.in_memory:
            _remove_files(self.file)

    # -- meta -------------------------------------------------------------------------------
    def set_meta(self, key: str, value: str) -> None:
        self.conn.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    # -- catalog ----------------------------------------------------------------------------
    def create_table(self, name: str, number: int | None = None) -> int:
        """Add a table; ``number`` picks its table number (imports keep ids that way)."""
        if number is None:
            row = self.conn.execute("SELECT MAX(table_number) FROM tables").fetchone()
            number = max(FIRST_TABLE_NUMBER, (row[0] or 0) + 1)
        self.conn.execute("INSERT INTO tables (table_number, name) VALUES (?, ?)", (number, name))
        return number

    def create_index(self, table_number: int, name: str, fields: tuple[str, ...], staged: bool = False) -> int:
        cur = self.conn.execute(
            "INSERT INTO indexes (table_number, name, fields, staged) VALUES (?, ?, ?, ?)",
            (table_number, name, json.dumps(list(fields)), int(staged)),
        )
        assert cur.lastrowid is not None  # an INSERT sets it
        return cur.lastrowid

    def drop_index(self, index_id: int) -> None:
        self.conn.execute("DELETE FROM index_entries WHERE index_id = ?", (index_id,))
        self.conn.execute("DELETE FROM indexes WHERE index_id = ?", (index_id,))

    # -- documents ---------------------------------------------------------------------------
    def put_document(
        self, table_number: int, key: bytes, text: str, plain: int, foreign: bool = False, ts: int = 0
    ) -> None:
        """Write a document, replacing the one with that key if any (no history: fixtures)."""
        self._exec(
            "INSERT OR REPLACE INTO documents (table_number, key, json, plain, foreign_id, ts) VALUES (?, ?, ?, ?, ?, ?)",
            (table_number, key, text, plain, foreign, ts),
        )

    def update_document(self, table_number: int, key: bytes, text: str, plain: int, ts: int = 0) -> None:
        """Rewrite an existing document's text at commit ``ts`` (its key and id flag stay),
        logging the version it replaces."""
        self._exec(_LOG_PREVIOUS, (ts, 0, table_number, key))
        self._exec(
            "UPDATE documents SET json = ?, plain = ?, ts = ? WHERE table_number = ? AND key = ?",
            (text, plain, ts, table_number, key),
        )

    def insert_document(
        self, table_number: int, key: bytes, text: str, plain: int, foreign: bool = False, ts: int = 0
    ) -> None:
        """Add a new document at commit ``ts``, logged; an existing key is an error
        (sqlite3.IntegrityError)."""
        self._exec(
            "INSERT INTO documents (table_number, key, json, plain, foreign_id, ts) VALUES (?, ?, ?, ?, ?, ?)",
            (table_number, key, text, plain, foreign, ts),
        )
        self._exec(_LOG_INSERT, (ts, table_number, key))

    def delete_document(self, table_number: int, key: bytes, ts: int = 0) -> None:
        """Delete a document at commit ``ts``, logging the version it removes."""
        self._exec(_LOG_PREVIOUS, (ts, 1, table_number, key))
        self._exec("DELETE FROM documents WHERE table_number = ? AND key = ?", (table_number, key))

    def log_batch(self, ts: int, table_number: int, lo: bytes, hi: bytes) -> None:
        """Log a bulk insert of the keys ``[lo, hi]`` at ``ts`` (one row for the batch)."""
        self._exec(
            "INSERT INTO revisions (ts, table_number, key, key_hi) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (ts, table_number, key) DO UPDATE SET key_hi = max(coalesce(key_hi, x''), excluded.key_hi)",
            (ts, table_number, lo, hi),
        )

    def compact_revisions(self, before: int, at_most: int) -> int:
        """Forget up to about ``at_most`` write-log rows older than ``before`` (oldest first);
        returns how many went."""
        row = self._exec(
            "SELECT ts FROM revisions WHERE ts < ? ORDER BY ts LIMIT 1 OFFSET ?", (before, max(0, at_most - 1))
        ).fetchone()
        upto = before if row is None else row[0] + 1
        return self._exec("DELETE FROM revisions WHERE ts < ?", (upto,)).rowcount

    # -- index entries ----------------------------------------------------------------------
    def insert_entries(self, rows: list[tuple[int, bytes]]) -> None:
        """Add ``(index_id, key)`` entries (each key ending with its document's key)."""
        self.conn.executemany("INSERT INTO index_entries (index_id, key) VALUES (?, ?)", rows)

    def insert_entry(self, index_id: int, key: bytes) -> None:
        self._exec("INSERT INTO index_entries (index_id, key) VALUES (?, ?)", (index_id, key))

    def delete_entries(self, rows: list[tuple[int, bytes]]) -> None:
        self.conn.executemany("DELETE FROM index_entries WHERE index_id = ? AND key = ?", rows)

    # -- bulk operations (imports: engine/bulk.py) --------------------------------------------
    def renumber_table(self, old: int, new: int) -> None:
        """Give an empty table another number (its documents and entries must be gone)."""
        self.conn.execute("UPDATE tables SET table_number = ? WHERE table_number = ?", (new, old))
        self.conn.execute("UPDATE indexes SET table_number = ? WHERE table_number = ?", (new, old))
        self.conn.execute("UPDATE search_indexes SET table_number = ? WHERE table_number = ?", (new, old))

    def insert_table_documents(
        self, table_number: int, rows: Iterable[tuple[bytes, str, int]], foreign: bool = False, ts: int = 0
    ) -> None:
        """Add new ``(key, json, plain)`` documents of one table; an existing key is an error.

        The table number is part of the statement, not a parameter of every row: binding
        fewer values per row is measurably faster for a million rows.
        """
        self.conn.executemany(
            f"INSERT INTO documents (table_number, key, json, plain, foreign_id, ts) "
            f"VALUES ({int(table_number)}, ?, ?, ?, {int(bool(foreign))}, {int(ts)})",
            rows,
        )

    def insert_documents_json(
        self, table_number: int, keys: bytes, key_len: int, texts: str, plains: bytes = b"", foreigns: bytes = b"",
        ts: int = 0,
    ) -> None:
        """Add a batch of new documents of one table in one statement (an existing key is an
        error): ``keys`` concatenated (``key_len`` bytes each), ``texts`` a JSON array of their
        texts (compact JSON objects), ``plains``/``foreigns`` one b"0"/b"1" byte per document
        (empty for all plain, none foreign; bytes, not text: a blob's substr is an offset, a
        text's a scan from its start).

        SQLite splits the batch itself (``json_each`` keeps each object's text as written), so
        no Python object is made per row and the whole batch is one C-level loop.
        """
        n = int(key_len)
        plain = "CAST(substr(:plains, e.key + 1, 1) AS INTEGER)" if plains else "1"
        foreign = "CAST(substr(:foreigns, e.key + 1, 1) AS INTEGER)" if foreigns else "0"
        self.conn.execute(
            f"INSERT INTO documents (table_number, key, json, plain, foreign_id, ts) "
            f"SELECT {int(table_number)}, substr(:keys, e.key * {n} + 1, {n}), e.value, {plain}, {foreign}, {int(ts)} "
            f"FROM json_each(:texts) AS e",
            {"keys": keys, "texts": texts, "plains": plains, "foreigns": foreigns},
        )

    def insert_index_keys(self, index_id: int, keys: Iterable[bytes]) -> None:
        """Add entries with these keys to one index (as :meth:`insert_entries`)."""
        self.conn.executemany(
            f"INSERT INTO index_entries (index_id, key) VALUES ({int(index_id)}, ?)", zip(keys)
        )

    # -- file storage ---------------------------------------------------------------------------
    def put_file(self, storage_id: str, data: bytes) -> None:
        self._exec("INSERT INTO files (storage_id, data) VALUES (?, ?)", (storage_id, data))

    def delete_file(self, storage_id: str) -> None:
        self._exec("DELETE FROM files WHERE storage_id = ?", (storage_id,))

    def delete_table_contents(self, table_number: int, index_ids: list[int], ts: int = 0) -> None:
        """Remove every document of a table (logging each at commit ``ts``) and every entry
        of its indexes."""
        self.conn.execute(
            "INSERT INTO revisions (ts, table_number, key, prev_ts, prev_json, prev_plain, deleted) "
            "SELECT ?, table_number, key, ts, json, plain, 1 FROM documents WHERE table_number = ? AND true "
            "ON CONFLICT (ts, table_number, key) DO UPDATE SET deleted = 1",
            (ts, table_number),
        )
        self.conn.execute("DELETE FROM documents WHERE table_number = ?", (table_number,))
        for index_id in index_ids:
            self.conn.execute("DELETE FROM index_entries WHERE index_id = ?", (index_id,))
# Log the version a write replaces (params: ts, deleted, table_number, key). A second write
# of one document in one commit keeps the first's previous version.
_LOG_PREVIOUS = (
    "INSERT INTO revisions (ts, table_number, key, prev_ts, prev_json, prev_plain, deleted) "
    "SELECT ?1, table_number, key, ts, json, plain, ?2 FROM documents WHERE table_number = ?3 AND key = ?4 "
    "ON CONFLICT (ts, table_number, key) DO UPDATE SET deleted = excluded.deleted"
)
_LOG_INSERT = (
    "INSERT INTO revisions (ts, table_number, key) VALUES (?, ?, ?) "
    "ON CONFLICT (ts, table_number, key) DO UPDATE SET deleted = 0"
)
# substr(key, -n): the last n bytes of the entry key, i.e. its document's key.
_SCAN = (
    "SELECT i.key, d.json, d.plain FROM index_entries i "
    "JOIN documents d ON d.table_number = ? AND d.key = substr(i.key, ?) "
    "WHERE i.index_id = ? AND i.key >= ? AND i.key < ? ORDER BY i.key {} LIMIT ?"
)
_SCAN_ASC = _SCAN.format("ASC")
_SCAN_DESC = _SCAN.format("DESC")
# Time travel: only the rows written at or before a timestamp.
_SCAN_TS = _SCAN.replace("ORDER BY", "AND d.ts <= ? ORDER BY")
_SCAN_TS_ASC = _SCAN_TS.format("ASC")
_SCAN_TS_DESC = _SCAN_TS.format("DESC")
_SCAN_DOCUMENTS = (
    "SELECT key, json, plain FROM documents "
    "WHERE table_number = ? AND key >= ? AND key < ? ORDER BY key {} LIMIT ?"
)
_SCAN_DOCUMENTS_ASC = _SCAN_DOCUMENTS.format("ASC")
_SCAN_DOCUMENTS_DESC = _SCAN_DOCUMENTS.format("DESC")
_SCAN_DOCUMENTS_TS = _SCAN_DOCUMENTS.replace("ORDER BY", "AND ts <= ? ORDER BY")
_SCAN_DOCUMENTS_TS_ASC = _SCAN_DOCUMENTS_TS.format("ASC")
_SCAN_DOCUMENTS_TS_DESC = _SCAN_DOCUMENTS_TS.format("DESC")
# by_id order: a storage key's id part is what follows its 9-byte creation time.
_SCAN_IDS = (
    "SELECT key, json, plain FROM documents WHERE table_number = ? "
    "AND substr(key, 10) >= ? AND substr(key, 10) < ? AND ts <= ? ORDER BY substr(key, 10) {} LIMIT ?"
)
_SCAN_IDS_ASC = _SCAN_IDS.format("ASC")
_SCAN_IDS_DESC = _SCAN_IDS.format("DESC")
