"""bulk.insert_columns: the column-wise import path stores exactly what the row path stores."""

from __future__ import annotations

import math
import os
import sqlite3

import pytest

import convex_notebook as cn
from convex_notebook import MISSING, Int64, v
from convex_notebook.engine import bulk
from convex_notebook.engine.transaction import DatabaseError
from convex_notebook.values import decode_id, dumps_document, encode_value, loads_document, values_equal
from convex_notebook.engine.stored import is_native, load_row, storage_key, user_fields
from convex_notebook.values._ids import _BASE32, _base32_bulk, encode_id, ids_from_internals

NAMES = ["f", "s", "b", "mixed", "sparse", "big", "clean"]


def _columns() -> list[list]:
    # 1.3e-05 and 1e-07: where repr and the document encoder (orjson) spell a float differently.
    floats = [0.5, -1.25, 0.0, 1e16, 5e-324, 123456789.0, -3.0, 2.0**53, 1.3168556207476811e-05, 1e-07]
    strings = ["plain", 'quo"te', "back\\slash", "tab\tnew\nline\x00\x1f", "héllo", "日本", "😀 emoji",
               "", "\u2028sep", "%s %d"]
    bools = [True, False] * 5
    mixed = [None, 1.5, "x", True, Int64(-7), b"\x00\xff", math.nan, -0.0, math.inf, Int64(2**63 - 1)]
    sparse = [MISSING, 1.0, MISSING, "y", MISSING, None, MISSING, Int64(3), MISSING, -math.inf]
    big = [float(i) for i in range(10)]
    clean = ["a", "é", "日本", "😀", "", "%s %%", "x y", "\u2028", "\x7f", "z"]  # nothing to escape
    return [floats, strings, bools, mixed, sparse, big, clean]


def _stored(app, table):
    db = app.database
    info = db.table(table)
    rows = list(db.store.iter_table_documents(info.number))
    return info, rows


def test_column_path_stores_the_row_path_text_entries_and_sizes(app):
    names, columns = NAMES, _columns()
    n = len(columns[0])
    db = app.database
    with db.write(exclusive=True) as txn:
        ids = bulk.insert_columns(txn, "cols", names, columns, n)
        col_bytes = txn.bytes_written
        col_keys = {k: list(v) for k, v in txn.writes.keys.items()}
    with db.write(exclusive=True) as txn:
        bulk.insert_documents(txn, "rows", bulk.rows_from_columns(names, columns, n))
        row_bytes = txn.bytes_written
    assert col_bytes == row_bytes
    info, rows = _stored(app, "cols")
    assert len(rows) == n
    expected = bulk.rows_from_columns(names, columns, n)
    by_id = {}
    for key, text, plain in rows:
        doc = load_row(key, text, plain)
        # Byte for byte what the normal write path (dumps_document) makes of the user fields.
        assert (text, bool(plain)) == (lambda t: (t[0], bool(t[1])))(dumps_document(user_fields(doc)))
        assert key == storage_key(doc["_creationTime"], doc["_id"])
        by_id[doc["_id"]] = doc
    for i, doc_id in enumerate(ids):
        doc = by_id[doc_id]
        user = {k: x for k, x in doc.items() if k not in ("_id", "_creationTime")}
        assert list(user) == list(expected[i])
        assert values_equal(user, expected[i])
    # Creation times increase in column order; every index entry is what index.key computes.
    times = [by_id[i]["_creationTime"] for i in ids]
    assert times == sorted(times) and len(set(times)) == n
    for index in info.entry_indexes:
        want = sorted(index.key(d) for d in by_id.values())
        assert db.store.entry_keys(index.index_id) == want
        assert sorted(col_keys[("cols", index.name)]) == want
    assert sorted(col_keys[("cols", "by_id")]) == sorted(encode_value(i) for i in ids)
    assert col_keys[("cols", "by_creation_time")] == [r[0] for r in rows]


def test_special_values_round_trip_exactly(app):
    columns = _columns()
    with app.database.write(exclusive=True) as txn:
        ids = bulk.insert_columns(txn, "t", NAMES, columns, 10)
    docs = {d["_id"]: d for d in app.run(lambda ctx: ctx.db.query("t").collect())}
    mixed = [docs[i].get("mixed", MISSING) for i in ids]
    assert type(mixed[4]) is Int64 and mixed[4] == -7
    assert mixed[5] == b"\x00\xff" and math.isnan(mixed[6])
    assert math.copysign(1.0, mixed[7]) == -1.0
    assert [docs[i].get("sparse", MISSING) is MISSING for i in ids] == [x is MISSING for x in columns[4]]


def test_user_index_entries_match_the_row_path(app):
    app.set_schema(cn.define_schema(
        {"t": cn.define_table({"f": v.float64(), "s": v.string()}).index("by_s", ["s", "f"])},
        schema_validation=False,
    ))
    cols = [[3.0, 1.0, 2.0, 1.0], ["b", "a", "b", MISSING]]
    with app.database.write(exclusive=True) as txn:
        bulk.insert_columns(txn, "t", ["f", "s"], cols, 4)
    got = app.run(lambda ctx: [d["f"] for d in ctx.db.query("t").with_index("by_s").collect()])
    assert got == [1.0, 1.0, 2.0, 3.0]
    info, _rows = _stored(app, "t")
    docs = [load_row(k, t, p) for k, t, p in _rows]
    index = info.indexes["by_s"]
    assert app.database.store.entry_keys(index.index_id) == sorted(index.key(d) for d in docs)


@pytest.mark.parametrize(
    "names, columns, row, message",
    [
        (["a"], [[1.0, "ok", "bad \ud800"]], 2, "lone surrogate"),
        (["a", "_b"], [[1.0, 2.0], [1.0, 2.0]], 0, "starts with an underscore"),
        (["a"], [[1.0, {1, 2}]], 1, "Python set"),
        (["a"], [[1.0, 2**60]], 1, "outside ±2^53"),
        (["a"], [[1.0, "x" * (1 << 20)]], 1, "too large"),
    ],
)
def test_rejected_rows_name_the_row_and_write_nothing(app, names, columns, row, message):
    with pytest.raises(bulk.ImportRowError) as err:
        with app.database.write(exclusive=True) as txn:
            bulk.insert_columns(txn, "t", names, columns, len(columns[0]))
    assert err.value.row == row and message in str(err.value)
    assert app.database.table("t") is None


def test_schema_errors_are_the_row_path_errors(app):
    app.set_schema(cn.define_schema({"t": cn.define_table({"a": v.float64()})}))
    with pytest.raises(bulk.ImportRowError) as err:
        with app.database.write(exclusive=True) as txn:
            bulk.insert_columns(txn, "t", ["a"], [[1.0, "no"]], 2)
    assert err.value.row == 1 and "does not match the schema" in str(err.value)
    assert app.run(lambda ctx: ctx.db.query("t").collect()) == []


@pytest.mark.parametrize("number", [10001, 5])  # 20-byte ids (whole-buffer path) and 19-byte ones
def test_ids_from_internals_is_the_per_id_encoder(number):
    for n in (1, 2, 255, 256, 5000):
        internal = os.urandom(16 * n)
        ids = ids_from_internals(number, internal)
        assert ids == [encode_id(number, internal[i : i + 16]) for i in range(0, 16 * n, 16)]
        assert all(decode_id(i) == (number, internal[16 * k : 16 * k + 16]) for k, i in enumerate(ids[:50]))


def test_fresh_ids_are_native_and_ascend_with_creation_time(app):
    with app.database.write(exclusive=True) as txn:
        ids = bulk.insert_columns(txn, "t", ["a"], [[float(i) for i in range(3000)]], 3000)
    assert ids == sorted(ids) and len(set(ids)) == 3000
    docs = app.run(lambda ctx: ctx.db.query("t").collect())
    assert [d["_id"] for d in docs] == ids
    assert all(is_native(decode_id(d["_id"])[1], d["_creationTime"]) for d in docs)


def test_bulk_base32_is_the_per_id_encoder():
    buf = os.urandom(20 * 200)
    assert _base32_bulk(buf).decode() == "".join(_BASE32[20](buf[i : i + 20]) for i in range(0, len(buf), 20))


def test_a_sparse_first_column_stores_the_row_path_text(app):
    names = ["sparse", "f", "clean"]
    cols = _columns()
    columns = [cols[4], cols[0], cols[6]]
    with app.database.write(exclusive=True) as txn:
        bulk.insert_columns(txn, "t", names, columns, 10)
    rows = _stored(app, "t")[1]
    expected = bulk.rows_from_columns(names, columns, 10)
    for (key, text, plain), want in zip(rows, expected):
        assert (text, bool(plain)) == (lambda t: (t[0], bool(t[1])))(dumps_document(want))
        assert values_equal(user_fields(load_row(key, text, plain)), want)


def test_batches_overlap_sqlite_and_report_progress(app, monkeypatch):
    monkeypatch.setattr(bulk, "_BATCH", 7)  # 50 rows: 8 batches on the worker thread
    seen = []
    with app.database.write(exclusive=True) as txn:
        ids = bulk.insert_columns(txn, "t", ["a"], [[float(i) for i in range(50)]], 50, progress=seen.append)
    assert seen == [7] * 7 + [1]
    docs = app.run(lambda ctx: ctx.db.query("t").collect())
    assert [d["_id"] for d in docs] == ids and [d["a"] for d in docs] == [float(i) for i in range(50)]


def test_a_failing_batch_writes_nothing_and_leaves_the_store_usable(app, monkeypatch):
    monkeypatch.setattr(bulk, "_BATCH", 7)
    store = app.database.store
    real = store.insert_documents_json
    calls = []

    def flaky(*args):
        calls.append(1)
        if len(calls) == 3:
            raise sqlite3.IntegrityError("UNIQUE constraint failed: documents.key")
        return real(*args)

    monkeypatch.setattr(store, "insert_documents_json", flaky)
    with pytest.raises(DatabaseError, match="already exists"):
        with app.database.write(exclusive=True) as txn:
            bulk.insert_columns(txn, "t", ["a"], [[float(i) for i in range(50)]], 50)
    monkeypatch.setattr(store, "insert_documents_json", real)
    assert app.database.table("t") is None
    app.run(lambda ctx: ctx.db.insert("t", {"a": 1.0}))
    assert app.run(lambda ctx: len(ctx.db.query("t").collect())) == 1


def test_large_documents_make_smaller_batches(app, monkeypatch):
    monkeypatch.setattr(bulk, "_BATCH_TEXT", 1000)  # characters of document text per statement
    texts = ["x" * 100 + str(i) for i in range(50)]
    seen = []
    with app.database.write(exclusive=True) as txn:
        bulk.insert_columns(txn, "cols", ["s"], [texts], 50, progress=seen.append)
    assert sum(seen) == 50 and max(seen) * 100 <= 1000 and len(seen) > 5
    store = app.database.store
    real, statements = store.insert_documents_json, []
    monkeypatch.setattr(store, "insert_documents_json", lambda *a: statements.append(len(a[3])) or real(*a))
    with app.database.write(exclusive=True) as txn:
        bulk.insert_documents(txn, "rows", [{"s": t} for t in texts])
    assert len(statements) > 5 and max(statements) <= 1000 + 200  # about the limit: whole documents
    got = app.run(lambda ctx: [[d["s"] for d in ctx.db.query(t).collect()] for t in ("cols", "rows")])
    assert got == [texts, texts]
