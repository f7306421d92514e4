"""Bring a database file an older version wrote to the current layout.

Version 3 (history, no text search indexes) gets the catalog of search indexes (its DDL is
already there: it is made with the store); the database then builds the FTS5 tables its saved
schema declares, from the documents (``engine.textindex``), once, as it opens.

Version 2 (documents by creation time, no history) only lacks the documents' ``ts`` column and
the write log: it gets them, and its history starts when it is converted.

Version 1 stored each document under its encoded ``_id`` with its whole JSON, and wrote
``by_creation_time`` entries; the current layout (``engine.stored``) stores it under its
``by_creation_time`` key with its user fields. Other index entries already end with
``(_creationTime, _id)`` and stay as they are. One transaction: a failure changes nothing.
"""

from __future__ import annotations

from typing import Any

from ..store.sqlite import FORMAT, SqliteStore
from ..values import decode_id, loads_document
from .stored import dumps_user, is_native, storage_key, user_fields
from .transaction import DatabaseError

__all__ = ["migrate"]


def migrate(store: SqliteStore, now_ns: int = 0) -> int:
    """Bring an older file to the current format; returns how many documents moved."""
    if store.format == FORMAT:
        return 0
    conn = store.conn
    moved = 0
    store.begin()
    try:
        store.add_foreign_ids_index()
        if store.format == 3:
            store.set_meta("format", str(FORMAT))
            store.commit()
            store.format = FORMAT
            return 0
        if store.format == 2:
            store.set_meta("format", str(FORMAT))
            store.set_meta("history_from", str(max(now_ns, int(store.get_meta("ts") or 0))))
            store.commit()
            store.format = FORMAT
            return 0
        tables = [r[0] for r in conn.execute("SELECT table_number FROM tables")]
        for number in tables:
            old = conn.execute(
                "SELECT json, plain FROM documents WHERE table_number = ?", (number,)
            ).fetchall()
            conn.execute("DELETE FROM documents WHERE table_number = ?", (number,))
            natives: list[tuple[Any, ...]] = []
            foreigns: list[tuple[Any, ...]] = []
            for text, plain in old:
                try:
                    doc = loads_document(text, plain)
                    ct, doc_id = doc["_creationTime"], doc["_id"]
                    decoded = decode_id(doc_id)
                    if type(ct) is not float or decoded is None:
                        raise ValueError("no valid _id and _creationTime")
                except (ValueError, KeyError, TypeError) as exc:
                    reason = f"no {exc.args[0]}" if isinstance(exc, KeyError) else str(exc)
                    raise DatabaseError(
                        f"Cannot convert {store.path} to the current layout (nothing was changed): "
                        f"a document of table number {number} is unreadable ({reason}): {text[:80]!r}"
                    ) from None
                row = (storage_key(ct, doc_id), *dumps_user(user_fields(doc)))
                (natives if is_native(decoded[1], ct) else foreigns).append(row)
            store.insert_table_documents(number, natives)
            store.insert_table_documents(number, foreigns, foreign=True)
            moved += len(old)
        # by_creation_time is the documents table now: its entries go.
        conn.execute(
            "DELETE FROM index_entries WHERE index_id IN "
            "(SELECT index_id FROM indexes WHERE name = 'by_creation_time')"
        )
        store.set_meta("format", str(FORMAT))
        store.commit()
    except BaseException:
        store.rollback()
        raise
    store.format = FORMAT
    return moved
