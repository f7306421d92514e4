"""The storage layout (engine/stored.py): documents under their by_creation_time key, native ids
found from the id alone, foreign ids (a Convex snapshot's) through their flagged rows, by_id
ranges in id order, and files of the first layout rewritten when opened."""

from __future__ import annotations

import json
import os
import sqlite3

import pytest

import convex_notebook as cn
from convex_notebook import define_schema, define_table, v
from convex_notebook.engine import bulk
from convex_notebook.engine.stored import is_native, storage_key
from convex_notebook.values import decode_id, encode_id, encode_value


def _foreign_docs(number: int, n: int, start: float = 1_600_000_000_000.0) -> list[dict]:
    """Documents as a Convex export has them: random ids, older creation times."""
    return [
        {"_id": encode_id(number, os.urandom(16)), "_creationTime": start + i, "k": float(i)}
        for i in range(n)
    ]


def _import(app, table: str, docs: list[dict]) -> list[str]:
    with app.database.write(exclusive=True) as txn:
        return bulk.insert_documents(txn, table, docs, keep_system_fields=True)


def _stored(app, table: str) -> list[tuple[bytes, str, int]]:
    info = app.database.table(table)
    return list(app.database.store.iter_table_documents(info.number))


def test_a_document_is_stored_under_its_creation_key_with_its_user_fields(app):
    doc_id = app.run(lambda ctx: ctx.db.insert("t", {"a": 1.0, "s": "x"}))
    doc = app.run(lambda ctx: ctx.db.get(doc_id))
    [(key, text, plain)] = _stored(app, "t")
    assert key == storage_key(doc["_creationTime"], doc_id)
    assert json.loads(text) == {"a": 1.0, "s": "x"} and plain == 1
    assert is_native(decode_id(doc_id)[1], doc["_creationTime"])
    assert list(doc) == ["_id", "_creationTime", "a", "s"]


def test_foreign_ids_are_found_updated_and_deleted(app):
    number = app.run(lambda ctx: decode_id(ctx.db.insert("t", {"k": -1.0}))[0])
    docs = _foreign_docs(number, 20)
    ids = _import(app, "t", docs)
    assert ids == [d["_id"] for d in docs]
    assert app.database.table("t").foreign_ids
    got = app.run(lambda ctx: ctx.db.get(ids[7]))
    assert got == docs[7]
    app.run(lambda ctx: ctx.db.patch(ids[7], {"k": 70.0}))
    app.run(lambda ctx: ctx.db.replace(ids[8], {"r": True}))
    app.run(lambda ctx: ctx.db.delete(ids[9]))
    assert app.run(lambda ctx: ctx.db.get(ids[7]))["k"] == 70.0
    assert app.run(lambda ctx: ctx.db.get(ids[8])) == {"_id": ids[8], "_creationTime": docs[8]["_creationTime"], "r": True}
    assert app.run(lambda ctx: ctx.db.get(ids[9])) is None
    # The foreign documents are older: a table query reads them first, in creation order.
    times = app.run(lambda ctx: [d["_creationTime"] for d in ctx.db.query("t").collect()])
    assert times == sorted(times) and len(times) == 20


def test_an_id_the_table_has_is_refused_and_nothing_is_written(app):
    number = app.run(lambda ctx: decode_id(ctx.db.insert("t", {"k": -1.0}))[0])
    docs = _foreign_docs(number, 3)
    _import(app, "t", docs)
    again = [{"_id": docs[1]["_id"], "_creationTime": 5.0, "k": 1.0}]  # same id, other time
    with pytest.raises(bulk.ImportRowError, match="already exists"):
        _import(app, "t", [{"k": 9.0}, *again])
    assert app.run(lambda ctx: len(ctx.db.query("t").collect())) == 4


def test_by_id_ranges_read_in_id_order(app):
    number = app.run(lambda ctx: decode_id(ctx.db.insert("t", {"k": -1.0}))[0])
    _import(app, "t", _foreign_docs(number, 30))
    for i in range(5):
        app.run(lambda ctx: ctx.db.insert("t", {"k": 100.0 + i}))
    all_ids = sorted(app.run(lambda ctx: [d["_id"] for d in ctx.db.query("t").collect()]))
    asc = app.run(lambda ctx: [d["_id"] for d in ctx.db.query("t").with_index("by_id").collect()])
    desc = app.run(lambda ctx: [d["_id"] for d in ctx.db.query("t").with_index("by_id").order("desc").collect()])
    assert asc == all_ids and desc == all_ids[::-1]
    pivot = all_ids[10]
    after = app.run(lambda ctx: [d["_id"] for d in ctx.db.query("t").with_index("by_id", lambda q: q.gt("_id", pivot)).take(5)])
    assert after == all_ids[11:16]
    for doc_id in (all_ids[0], all_ids[-1]):  # a foreign one and a native one, by eq
        got = app.run(lambda ctx: ctx.db.query("t").with_index("by_id", lambda q: q.eq("_id", doc_id)).collect())
        assert [d["_id"] for d in got] == [doc_id]
    missing = encode_id(number, bytes(16))
    assert app.run(lambda ctx: ctx.db.query("t").with_index("by_id", lambda q: q.eq("_id", missing)).collect()) == []
    assert app.run(lambda ctx: ctx.db.get(missing)) is None


def test_a_by_id_page_is_live(app):
    app.run(lambda ctx: ctx.db.insert("t", {"k": 0.0}))

    @app.query()
    def count_by_id(ctx):
        return len(ctx.db.query("t").with_index("by_id").collect())

    sub = app.subscribe("count_by_id")
    assert sub.value == 1
    app.run(lambda ctx: ctx.db.insert("t", {"k": 1.0}))
    assert sub.value == 2
    sub.close()


def test_reopen_finds_foreign_ids_and_recovers_the_clock(tmp_path):
    path = tmp_path / "db.sqlite3"
    app = cn.Backend(path, echo_logs=False)
    number = app.run(lambda ctx: decode_id(ctx.db.insert("t", {"k": -1.0}))[0])
    docs = _foreign_docs(number, 5, start=4_000_000_000_000.0)  # later than now
    _import(app, "t", docs)
    app.close()
    app = cn.Backend(path, echo_logs=False)
    try:
        assert app.run(lambda ctx: ctx.db.get(docs[2]["_id"])) == docs[2]
        new = app.run(lambda ctx: ctx.db.get(ctx.db.insert("t", {"k": 1.0})))
        assert new["_creationTime"] > docs[-1]["_creationTime"]  # creation times never go back
    finally:
        app.close()


# -- the first layout, rewritten ------------------------------------------------------------

_V1_DDL = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE tables (table_number INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE indexes (index_id INTEGER PRIMARY KEY, table_number INTEGER NOT NULL, name TEXT NOT NULL,
    fields TEXT NOT NULL, staged INTEGER NOT NULL DEFAULT 0, UNIQUE (table_number, name));
CREATE TABLE documents (table_number INTEGER NOT NULL, key BLOB NOT NULL, json TEXT NOT NULL,
    plain INTEGER NOT NULL, PRIMARY KEY (table_number, key)) WITHOUT ROWID;
CREATE TABLE files (storage_id TEXT PRIMARY KEY, data BLOB NOT NULL);
CREATE TABLE index_entries (index_id INTEGER NOT NULL, key BLOB NOT NULL, PRIMARY KEY (index_id, key)) WITHOUT ROWID;
"""


def _write_v1(path, docs: list[dict]) -> None:
    """A file as version 1 wrote it: documents under their id with their whole JSON, and the
    entries of by_creation_time and of a user index by_k."""
    conn = sqlite3.connect(path)
    conn.executescript(_V1_DDL)
    conn.execute("INSERT INTO tables VALUES (10001, 'items')")
    conn.executemany(
        "INSERT INTO indexes (index_id, table_number, name, fields) VALUES (?, 10001, ?, ?)",
        [(1, "by_id", "[]"), (2, "by_creation_time", "[]"), (3, "by_k", '["k"]')],
    )
    schema = define_schema({"items": define_table({"k": v.float64()}).index("by_k", ["k"])})
    conn.execute("INSERT INTO meta VALUES ('schema', ?)", (json.dumps(schema.to_json()),))
    for d in docs:
        suffix = encode_value(d["_creationTime"]) + encode_value(d["_id"])
        conn.execute("INSERT INTO documents VALUES (10001, ?, ?, 1)", (encode_value(d["_id"]), json.dumps(d)))
        conn.execute("INSERT INTO index_entries VALUES (2, ?)", (suffix,))
        conn.execute("INSERT INTO index_entries VALUES (3, ?)", (encode_value(d["k"]) + suffix,))
    conn.commit()
    conn.close()


def test_a_first_layout_file_is_rewritten_when_opened(tmp_path):
    path = tmp_path / "old.sqlite3"
    docs = [
        {"_id": encode_id(10001, os.urandom(16)), "_creationTime": 1_700_000_000_000.0 + i, "k": float(-i)}
        for i in range(50)
    ]
    _write_v1(path, docs)
    for _reopen in range(2):  # the second open finds the current layout: nothing to do
        app = cn.Backend(path, echo_logs=False)
        try:
            assert app.run(lambda ctx: ctx.db.query("items").collect()) == docs
            assert app.run(lambda ctx: ctx.db.get(docs[3]["_id"])) == docs[3]
            by_k = app.run(lambda ctx: [d["k"] for d in ctx.db.query("items").with_index("by_k").collect()])
            assert by_k == sorted(d["k"] for d in docs)
            assert app.df("items")["_id"].tolist() == [d["_id"] for d in docs]
        finally:
            app.close()
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT COUNT(*) FROM index_entries WHERE index_id = 2").fetchone() == (0,)
    conn.close()


def test_an_unreadable_first_layout_file_is_refused_and_left_as_it_was(tmp_path):
    path = tmp_path / "old.sqlite3"
    docs = [{"_id": encode_id(10001, os.urandom(16)), "_creationTime": 1_700_000_000_000.0, "k": 1.0}]
    _write_v1(path, docs)
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO documents VALUES (10001, X'0701', '{\"no\": \"system fields\"}', 1)")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    for _attempt in range(2):  # the same clear error each time: the file was not half-converted
        with pytest.raises(cn.DatabaseError, match=r"Cannot convert .*nothing was changed.*table number 10001 is unreadable \(no _creationTime\)"):
            cn.Backend(path, echo_logs=False)
    conn = sqlite3.connect(path)
    columns = [r[1] for r in conn.execute("PRAGMA table_info(documents)")]
    count = conn.execute("SELECT COUNT(*) FROM documents").fetchone()[0]
    conn.close()
    assert "foreign_id" not in columns and count == 2
    assert len(path.read_bytes()) == len(before)
