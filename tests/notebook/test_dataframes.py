"""pandas adapters: documents ↔ DataFrames, import modes, schema inference (pandas 3)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import convex_notebook as cn
from convex_notebook import MISSING, v
from convex_notebook.values import values_equal


@pytest.fixture
def app():
    backend = cn.Backend(echo_logs=False, clock=cn.VirtualClock())
    yield backend
    backend.close()


def all_docs(app, table):
    return app.run(lambda ctx: ctx.db.query(table).collect())


def same_docs(a, b):
    return len(a) == len(b) and all(values_equal(x, y) for x, y in zip(a, b))


def test_to_dataframe_types_and_missing_vs_null_vs_nan():
    docs = [
        {"_id": "a", "_creationTime": 1700000000000.25, "f": 1.5, "i": cn.Int64(7), "b": True, "s": "x",
         "n": None, "nan": math.nan, "o": [1.0, {"k": "v"}], "by": b"\x00\x01"},
        {"_id": "b", "_creationTime": 1700000000001.5, "f": 2.0, "b": False, "n": None, "nan": 3.0},
    ]
    df = cn.to_dataframe(docs)
    assert list(df.columns) == ["_id", "_creationTime", "f", "i", "b", "s", "n", "nan", "o", "by"]
    assert str(df["_creationTime"].dtype) == "datetime64[ns, UTC]"
    assert df["f"].dtype == np.float64
    assert str(df["i"].dtype) == "Int64" and df["i"][0] == 7 and df["i"][1] is pd.NA
    assert df["b"].dtype == bool
    assert df["s"][0] == "x" and df["s"][1] is pd.NA  # missing, not NaN and not None
    assert df["n"].tolist() == [None, None]  # null stays None
    assert math.isnan(df["nan"][0]) and df["nan"][1] == 3.0  # NaN is a value
    assert df["o"][0] == [1.0, {"k": "v"}]
    assert df["by"][0] == b"\x00\x01" and df["by"][1] is pd.NA
    # ... and back: missing fields are omitted again, NaN and None kept, types restored.
    back = cn.from_dataframe(df)
    assert same_docs(back, docs)
    assert "i" not in back[1] and "s" not in back[1] and back[1]["n"] is None
    assert type(back[0]["i"]) is cn.Int64 and type(back[0]["_creationTime"]) is float


def test_float_column_with_missing_keeps_nan_apart_from_missing():
    df = cn.to_dataframe([{"x": 1.0}, {}, {"x": math.nan}])
    assert str(df["x"].dtype) == "Float64"
    assert df["x"].isna().tolist() == [False, True, False]
    back = cn.from_dataframe(df)
    assert back[0] == {"x": 1.0} and back[1] == {} and math.isnan(back[2]["x"])


def test_creation_time_round_trips_exactly():
    rng = np.random.default_rng(1)
    times = (1.7e12 + rng.random(2000) * 1e10).tolist() + [0.0, 1.0, math.nextafter(1.7e12, 2e12)]
    docs = [{"_creationTime": t} for t in times]
    df = cn.to_dataframe(docs)
    assert [d["_creationTime"] for d in cn.from_dataframe(df)] == times
    assert str(df["_creationTime"][0].tz) == "UTC"
    assert df["_creationTime"][2002 - 1].value == 1_000_000  # 1.0 ms is exactly 1,000,000 ns


def test_from_dataframe_dtypes():
    df = pd.DataFrame({
        "ints": np.array([1, 2], dtype=np.int64),              # numpy ints are JS numbers
        "nullable": pd.array([5, None], dtype="Int64"),         # nullable ints are Int64
        "flags": pd.array([True, None], dtype="boolean"),
        "text": pd.array(["a", None], dtype="str"),            # pandas 3 default strings: NaN = missing
        "strict": pd.array(["a", pd.NA], dtype="string"),
        "when": pd.to_datetime(["2024-01-01T00:00:00.5Z", None], utc=True),
        "cat": pd.Categorical(["u", None]),
        "obj": pd.Series([np.float64(2.5), pd.NA], dtype=object),
    })
    docs = cn.from_dataframe(df)
    assert docs[0] == {"ints": 1.0, "nullable": cn.Int64(5), "flags": True, "text": "a", "strict": "a",
                       "when": 1704067200500.0, "cat": "u", "obj": 2.5}
    assert type(docs[0]["ints"]) is float and type(docs[0]["nullable"]) is cn.Int64
    assert type(docs[0]["obj"]) is float
    assert docs[1] == {"ints": 2.0}


def test_from_dataframe_nan_policies():
    df = pd.DataFrame({"x": [1.0, np.nan]})
    assert math.isnan(cn.from_dataframe(df)[1]["x"])
    assert cn.from_dataframe(df, nan="missing")[1] == {}
    assert cn.from_dataframe(df, nan="null")[1] == {"x": None}


def test_from_dataframe_rejects_what_convex_cannot_store():
    with pytest.raises(ValueError, match="Int64"):
        cn.from_dataframe(pd.DataFrame({"big": np.array([2**60], dtype=np.int64)}))
    with pytest.raises(TypeError, match="strings"):
        cn.from_dataframe(pd.DataFrame({0: [1.0]}))
    with pytest.raises(TypeError, match="no Convex type"):
        cn.from_dataframe(pd.DataFrame({"c": np.array([1 + 2j])}))


def test_import_and_read_back_round_trip(app):
    df = pd.DataFrame({
        "x": [0.5, -0.0, math.inf],
        "n": pd.array([1, None, -(2**63)], dtype="Int64"),
        "s": ["é", "b", "c"],
        "ok": [True, False, True],
        "tags": [["a"], [], ["b", "c"]],
    })
    assert app.import_dataframe("rows", df) == 3
    docs = all_docs(app, "rows")
    assert [d["s"] for d in docs] == ["é", "b", "c"]  # creation order
    assert "n" not in docs[1] and docs[2]["n"] == cn.Int64(-(2**63))
    assert math.copysign(1.0, docs[1]["x"]) == -1.0 and docs[2]["x"] == math.inf
    back = app.df("rows")
    assert back["_id"].tolist() == [d["_id"] for d in docs]
    assert same_docs(cn.from_dataframe(back), docs)
    assert str(back["n"].dtype) == "Int64"


def test_df_sources(app):
    app.import_dataframe("t", pd.DataFrame({"a": [1.0, 2.0]}))

    @app.query
    def big(ctx, at_least):
        return [d for d in ctx.db.query("t").collect() if d["a"] >= at_least]

    assert app.df("big", {"at_least": 2.0})["a"].tolist() == [2.0]
    assert app.df(all_docs(app, "t"))["a"].tolist() == [1.0, 2.0]
    page = app.run(lambda ctx: ctx.db.query("t").paginate({"numItems": 1, "cursor": None}))
    assert app.df(page)["a"].tolist() == [1.0]
    empty = app.df("nothing_here")
    assert len(empty) == 0 and list(empty.columns) == ["_id", "_creationTime"]
    assert app.df("t", index="_id").index.name == "_id"


def test_modes(app):
    app.import_dataframe("t", pd.DataFrame({"a": [1.0]}))
    with pytest.raises(cn.DatabaseError, match="already has 1 documents"):
        app.import_dataframe("t", pd.DataFrame({"a": [2.0]}))
    app.import_dataframe("t", pd.DataFrame({"a": [2.0, 3.0]}), mode="append")
    assert sorted(d["a"] for d in all_docs(app, "t")) == [1.0, 2.0, 3.0]
    app.import_dataframe("t", pd.DataFrame({"b": ["x"]}), mode="replace")
    assert [(set(d) - {"_id", "_creationTime"}) for d in all_docs(app, "t")] == [{"b"}]
    with pytest.raises(ValueError, match="mode"):
        app.import_dataframe("t", pd.DataFrame({"a": [1.0]}), mode="upsert")


def test_edit_and_replace_keeps_ids_and_references(app):
    lists = app.run(lambda ctx: [ctx.db.insert("lists", {"name": n}) for n in ("a", "b")])
    app.import_dataframe("items", pd.DataFrame({"list": lists, "qty": [1.0, 2.0]}))
    df = app.df("items")
    df.loc[df["qty"] == 2.0, "qty"] = 20.0  # pandas 3 copy-on-write: an independent frame
    app.import_dataframe("items", df, mode="replace")
    after = app.df("items")
    assert after["_id"].tolist() == df["_id"].tolist()
    assert after["_creationTime"].tolist() == df["_creationTime"].tolist()
    assert after["qty"].tolist() == [1.0, 20.0]
    first = after["_id"][0]
    assert app.run(lambda ctx: ctx.db.get(first))["list"] == lists[0]
    # ids of another table cannot be kept: a clear error, then keep_ids=False works
    with pytest.raises(cn.DatabaseError, match="keep the documents' ids|ids of table"):
        app.import_dataframe("copy", df)
    assert app.count("copy") == 0
    app.import_dataframe("copy", df, keep_ids=False)
    assert set(app.df("copy")["_id"]).isdisjoint(set(df["_id"]))


def test_bad_row_writes_nothing_atomic(app):
    app.import_dataframe("t", pd.DataFrame({"a": [1.0]}))
    bad = pd.DataFrame({"a": [2.0, 3.0, 4.0], "o": [None, None, {"$bad": 1}]})
    with pytest.raises(cn.DatabaseError, match="row 2"):
        app.import_dataframe("t", bad, mode="replace", batch_size=1)
    assert [d["a"] for d in all_docs(app, "t")] == [1.0]  # replace rolled back entirely


def test_non_atomic_append_commits_whole_batches(app):
    seen = []
    app.query(lambda ctx: len(ctx.db.query("t").collect()), name="count_t")
    sub = app.subscribe("count_t", on_update=seen.append)
    app.import_dataframe("t", pd.DataFrame({"a": np.arange(10, dtype=float)}), mode="append", batch_size=4)
    app.wait_for_callbacks()
    assert sub.value == 10
    # Updates may coalesce, but a live query only ever sees whole batches.
    assert seen and set(seen) <= {0, 4, 8, 10} and seen[-1] == 10
    bad = pd.DataFrame({"a": [1.0] * 5 + [None] * 0, "x": [1.0, 2.0, 3.0, 4.0, "\ud800"]})
    with pytest.raises(cn.DatabaseError, match="row 4"):
        app.import_dataframe("t", bad, mode="append", batch_size=2)
    assert app.count("t") == 14  # the two batches before the bad row were committed
    sub.unsubscribe()


def test_schema_is_enforced_on_import(app):
    app.set_schema(cn.define_schema({"t": cn.define_table({"a": v.float64()})}))
    with pytest.raises(cn.DatabaseError, match="row 1"):
        app.import_dataframe("t", pd.DataFrame({"a": [1.0, None]}, dtype=object))
    assert app.count("t") == 0
    app.import_dataframe("t", pd.DataFrame({"a": [1.0, 2.0]}))
    assert app.count("t") == 2


def test_indexes_are_maintained(app):
    app.set_schema(cn.define_schema({"t": cn.define_table({"k": v.string(), "n": v.float64()}).index("by_k", ["k"])}))
    app.import_dataframe("t", pd.DataFrame({"k": ["b", "a", "b"], "n": [1.0, 2.0, 3.0]}))
    found = app.run(lambda ctx: [d["n"] for d in ctx.db.query("t").with_index("by_k", lambda q: q.eq("k", "b")).collect()])
    assert found == [1.0, 3.0]


def test_infer_schema(app):
    lid = app.run(lambda ctx: ctx.db.insert("lists", {}))
    df = pd.DataFrame({
        "f": [1.0, 2.0], "i": pd.array([1, None], dtype="Int64"), "b": [True, False],
        "s": ["a", "b"], "mixed": [1.0, "x"], "nul": [None, 1.0], "nested": [{"a": [1.0]}, {"a": []}],
        "ref": [lid, lid],
    })
    table = app.infer_schema(df)
    fields = table.to_json()["documentType"]["value"]
    assert fields["i"]["optional"] is True and fields["i"]["fieldType"] == {"type": "bigint"}
    assert fields["ref"]["fieldType"] == {"type": "id", "tableName": "lists"}
    app.set_schema(cn.define_schema({"rows": table}))
    app.import_dataframe("rows", df)  # the inferred schema accepts the frame it came from
    assert app.count("rows") == 2
    assert isinstance(cn.infer_schema(df), cn.TableDefinition)


def test_empty_frame_creates_table(app):
    assert app.import_dataframe("t", pd.DataFrame({"a": pd.Series([], dtype=float)})) == 0
    assert "t" in app.table_names()


def test_progress_bar_text(app, capsys):
    app.import_dataframe("t", pd.DataFrame({"a": np.arange(50, dtype=float)}), progress=True, batch_size=10)
    err = capsys.readouterr().err
    assert "import t" in err and "50/50" in err
    app.import_dataframe("u", pd.DataFrame({"a": [1.0]}))
    assert capsys.readouterr().err == ""



def test_a_tables_columns_come_in_creation_order_not_id_order(app):
    # Ids are random: read in id order, fields first seen late would land anywhere.
    def write(ctx):
        for i in range(20):
            ctx.db.insert("shapes", {"common": float(i), f"f{i:02d}": cn.Int64(i) if i % 2 else float(i)})
    app.run(write)
    docs = app.run(lambda ctx: ctx.db.query("shapes").collect())  # _creationTime order
    frame = app.df("shapes")
    assert list(frame.columns) == ["_id", "_creationTime", "common"] + [f"f{i:02d}" for i in range(20)]
    pd.testing.assert_frame_equal(frame, cn.to_dataframe(docs))


def test_df_of_an_empty_table_applies_the_index(app):
    app.import_dataframe("t", pd.DataFrame({"a": [1.0]}))
    app.run(lambda ctx: [ctx.db.delete(d["_id"]) for d in ctx.db.query("t").collect()])
    frame = app.df("t", index="_id")
    assert frame.index.name == "_id" and list(frame.columns) == ["_creationTime"]


def test_stored_json_orjson_refuses_falls_back_to_json():
    from convex_notebook.notebook.dataframes import _decode_array

    assert _decode_array('[{"a":1.5,"s":"x"}]') == [{"a": 1.5, "s": "x"}]
    assert _decode_array("[1e400]") == [math.inf]  # beyond float range: json's reading


def test_df_reads_in_batches_across_documents_of_every_kind(app, monkeypatch):
    from convex_notebook.store import sqlite as store_module

    real = store_module.StoreReads.iter_json_batches
    monkeypatch.setattr(
        store_module.StoreReads, "iter_json_batches", lambda self, t, n, batch=0: real(self, t, n, batch=3)
    )
    docs = [{"a": float(i)} if i % 2 else {"b": cn.Int64(i), "c": b"\x00"} for i in range(10)]
    ids = [app.run(lambda ctx, d=d: ctx.db.insert("t", d)) for d in docs]
    frame = app.df("t")
    assert frame["_id"].tolist() == ids
    assert frame["a"].tolist()[1::2] == [float(i) for i in range(1, 10, 2)]
    assert frame["b"].tolist()[0::2] == list(range(0, 10, 2))
    assert frame["c"].tolist()[0] == b"\x00"


def test_an_error_mid_read_leaves_the_store_idle_and_usable(app, monkeypatch):
    from convex_notebook.notebook import dataframes
    from convex_notebook.store import sqlite as store_module

    real_batches = store_module.StoreReads.iter_json_batches
    monkeypatch.setattr(
        store_module.StoreReads, "iter_json_batches", lambda self, t, n, batch=0: real_batches(self, t, n, batch=2)
    )
    app.import_dataframe("t", pd.DataFrame({"a": [float(i) for i in range(9)]}))
    real_decode, calls = dataframes._decode_array, []

    def failing(text):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("decoder broke")
        return real_decode(text)

    monkeypatch.setattr(dataframes, "_decode_array", failing)
    with pytest.raises(RuntimeError, match="decoder broke"):
        app.df("t")
    monkeypatch.setattr(dataframes, "_decode_array", real_decode)
    app.run(lambda ctx: ctx.db.insert("t", {"a": 9.0}))
    assert app.df("t")["a"].tolist() == [float(i) for i in range(10)]


def test_whole_numbers_read_as_integers_and_go_back_as_numbers():
    docs = [{"units": 120.0, "price": 0.5, "neg0": -0.0}, {"units": 80.0, "price": 2.0, "neg0": 1.0}]
    df = cn.to_dataframe(docs)
    assert df["units"].dtype == np.int64 and df["units"].tolist() == [120, 80]  # shown as 120, not 120.0
    assert df["price"].dtype == np.float64  # 0.5 is not whole
    assert df["neg0"].dtype == np.float64 and math.copysign(1, df["neg0"][0]) == -1  # -0.0 kept
    assert "120.0" not in df.to_string() and "120" in df.to_string()
    back = cn.from_dataframe(df)
    assert same_docs(back, docs) and type(back[0]["units"]) is float
    big = cn.to_dataframe([{"x": float(2**53)}])
    assert big["x"].dtype == np.float64  # beyond ±2^53 a number stays a float
