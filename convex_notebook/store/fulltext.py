"""SQLite FTS5 tables of text search indexes: the rows, not their meaning (``engine.textindex``).

One FTS5 table per search index, ``search_<index_id>``, written in the same SQLite transaction
as the documents, so it is exactly as durable and as snapshot-consistent as they are. Columns:

* ``t``: the search field's tokens, already normalised by the engine and joined by spaces
  (the ``ascii`` tokenizer then splits on the spaces and changes nothing else);
* ``f``: one token per filter field, naming its value (``eq`` filters are FTS5 terms, so a
  filtered search intersects posting lists instead of filtering every match);
* ``k``: the document's storage key (not indexed).

A row's rowid is its document's creation time (the bits of the positive float, which sort as
it does), so ``ORDER BY rank, rowid DESC`` is "best first, ties newest first" without reading
any row. Two documents with the same creation time in one index are rare (imports keep
creation times): the second goes to the next free rowid and is listed in ``search_shifted``.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["TEXT_INDEX_DDL", "StoredTextIndex", "TextIndexStore"]

# In the store's DDL (``store.sqlite``): the catalog of search indexes and the rows that could
# not have their natural rowid.
TEXT_INDEX_DDL = (
    """CREATE TABLE IF NOT EXISTS search_indexes (
        index_id INTEGER PRIMARY KEY,
        table_number INTEGER NOT NULL,
        name TEXT NOT NULL,
        search_field TEXT NOT NULL,
        filter_fields TEXT NOT NULL,
        UNIQUE (table_number, name)
    )""",
    """CREATE TABLE IF NOT EXISTS search_shifted (
        index_id INTEGER NOT NULL,
        key BLOB NOT NULL,
        row INTEGER NOT NULL,
        PRIMARY KEY (index_id, key)
    ) WITHOUT ROWID""",
)


@dataclass(frozen=True)
class StoredTextIndex:
    """A row of ``search_indexes``."""

    index_id: int
    table_number: int
    name: str
    search_field: str
    filter_fields: tuple[str, ...]

    @property
    def fts(self) -> str:
        return f"search_{int(self.index_id)}"


def _varints(data: bytes) -> list[int]:
    """SQLite's big-endian varints (FTS5's averages record is a list of them)."""
    out, i = [], 0
    while i < len(data):
        value = 0
        for j in range(9):
            byte = data[i]
            i += 1
            if j == 8:
                value = (value << 8) | byte
                break
            value = (value << 7) | (byte & 0x7F)
            if not byte & 0x80:
                break
        out.append(value)
    return out


class TextIndexStore:
    """The SQL of search indexes on one connection (the writer's, or a snapshot reader's)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    # -- catalog ------------------------------------------------------------------------------
    def load(self) -> list[StoredTextIndex]:
        rows = self.conn.execute(
            "SELECT index_id, table_number, name, search_field, filter_fields FROM search_indexes ORDER BY index_id"
        )
        return [StoredTextIndex(i, t, n, s, tuple(json.loads(f))) for i, t, n, s, f in rows]

    def create(self, table_number: int, name: str, search_field: str, filter_fields: tuple[str, ...]) -> StoredTextIndex:
        cur = self.conn.execute(
            "INSERT INTO search_indexes (table_number, name, search_field, filter_fields) VALUES (?, ?, ?, ?)",
            (table_number, name, search_field, json.dumps(list(filter_fields))),
        )
        assert cur.lastrowid is not None
        stored = StoredTextIndex(cur.lastrowid, table_number, name, search_field, tuple(filter_fields))
        # detail=full: BM25 needs each term's frequency in a row.
        self.conn.execute(f"CREATE VIRTUAL TABLE {stored.fts} USING fts5(t, f, k UNINDEXED, tokenize='ascii')")
        # Its terms, per column (``only_term``): a prefix that no longer term extends is
        # searched as a plain term, which FTS5 answers without merging doclists.
        self.conn.execute(f"CREATE VIRTUAL TABLE {stored.fts}_terms USING fts5vocab({stored.fts}, 'col')")
        return stored

    def drop(self, stored: StoredTextIndex) -> None:
        self.conn.execute(f"DROP TABLE IF EXISTS {stored.fts}_terms")
        self.conn.execute(f"DROP TABLE IF EXISTS {stored.fts}")
        self.conn.execute("DELETE FROM search_shifted WHERE index_id = ?", (stored.index_id,))
        self.conn.execute("DELETE FROM search_indexes WHERE index_id = ?", (stored.index_id,))

    # -- rows -----------------------------------------------------------------------------------
    def find(self, stored: StoredTextIndex, rowid: int, key: bytes) -> tuple[int, str, str] | None:
        """``(rowid, t, f)`` of the row of the document stored under ``key`` (whose natural
        rowid is ``rowid``), if it is indexed."""
        row = self.conn.execute(f"SELECT t, f, k FROM {stored.fts} WHERE rowid = ?", (rowid,)).fetchone()
        if row is not None and row[2] == key:
            return rowid, row[0], row[1]
        shifted = self.conn.execute(
            "SELECT row FROM search_shifted WHERE index_id = ? AND key = ?", (stored.index_id, key)
        ).fetchone()
        if shifted is None:
            return None
        row = self.conn.execute(f"SELECT t, f FROM {stored.fts} WHERE rowid = ?", (shifted[0],)).fetchone()
        return (shifted[0], row[0], row[1]) if row is not None else None

    def delete(self, stored: StoredTextIndex, rowid: int, natural: int, key: bytes) -> None:
        self.conn.execute(f"DELETE FROM {stored.fts} WHERE rowid = ?", (rowid,))
        if rowid != natural:
            self.conn.execute("DELETE FROM search_shifted WHERE index_id = ? AND key = ?", (stored.index_id, key))

    def insert(self, stored: StoredTextIndex, natural: int, key: bytes, tokens: str, filters: str) -> None:
        """Index a document at its natural rowid, or the next free one (listed as shifted)."""
        rowid = natural
        while self.conn.execute(f"SELECT 1 FROM {stored.fts} WHERE rowid = ?", (rowid,)).fetchone() is not None:
            rowid += 1
        self.conn.execute(f"INSERT INTO {stored.fts} (rowid, t, f, k) VALUES (?, ?, ?, ?)", (rowid, tokens, filters, key))
        if rowid != natural:
            self.conn.execute(
                "INSERT OR REPLACE INTO search_shifted (index_id, key, row) VALUES (?, ?, ?)",
                (stored.index_id, key, rowid),
            )

    def insert_many(self, stored: StoredTextIndex, rows: Iterable[tuple[int, bytes, str, str]]) -> None:
        """Index ``(natural rowid, key, tokens, filters)`` rows into an index being built."""
        for natural, key, tokens, filters in rows:
            try:
                self.conn.execute(
                    f"INSERT INTO {stored.fts} (rowid, t, f, k) VALUES (?, ?, ?, ?)", (natural, tokens, filters, key)
                )
            except sqlite3.IntegrityError:  # the same creation time as another document
                self.insert(stored, natural, key, tokens, filters)

    def clear(self, stored: StoredTextIndex) -> None:
        self.conn.execute(f"DELETE FROM {stored.fts}")
        self.conn.execute("DELETE FROM search_shifted WHERE index_id = ?", (stored.index_id,))

    # -- searching --------------------------------------------------------------------------------
    def ranked(self, stored: StoredTextIndex, match: str, limit: int) -> list[int]:
        """Rowids matching ``match``, best first (BM25 on the text column; ties newest first)."""
        return [r[0] for r in self.conn.execute(
            f"SELECT rowid FROM {stored.fts} WHERE {stored.fts} MATCH ? "
            f"ORDER BY bm25({stored.fts}, 1.0, 0.0) , rowid DESC LIMIT ?",
            (match, limit),
        )]

    def only_term(self, stored: StoredTextIndex, prefix: str) -> bool:
        """Whether ``prefix`` is a term of the text column that no other term there extends."""
        found = self.conn.execute(
            f"SELECT term FROM {stored.fts}_terms WHERE term >= ? AND term < ? AND col = 't' LIMIT 2",
            (prefix, prefix + "\U0010ffff"),
        ).fetchall()
        return len(found) == 1 and found[0][0] == prefix

    def keys(self, stored: StoredTextIndex, rowids: list[int]) -> list[bytes]:
        """The storage keys of these rows, in the same order (one rowid lookup each: FTS5
        answers ``rowid IN (...)`` by scanning)."""
        out = []
        for rowid in rowids:
            row = self.conn.execute(f"SELECT k FROM {stored.fts} WHERE rowid = ?", (rowid,)).fetchone()
            if row is not None:
                out.append(row[0])
        return out

    def matches(self, stored: StoredTextIndex, match: str) -> list[tuple[bytes, str, str]]:
        """``(key, t, f)`` of every row matching ``match`` (unranked)."""
        return self.conn.execute(f"SELECT k, t, f FROM {stored.fts} WHERE {stored.fts} MATCH ?", (match,)).fetchall()

    def totals(self, stored: StoredTextIndex) -> tuple[int, int]:
        """``(rows, tokens)`` of the index, as BM25 counts them (FTS5's averages record)."""
        row = self.conn.execute(f"SELECT block FROM {stored.fts}_data WHERE id = 1").fetchone()
        values = _varints(bytes(row[0])) if row is not None and row[0] else []
        if not values:
            return 0, 0
        return values[0], sum(values[1:])
