"""A file backend reopened: tables, documents (every type), indexes, schema and clocks restored."""

from __future__ import annotations

import math

import pytest

import convex_notebook as cn
from convex_notebook import Int64, define_schema, define_table, v

from engine_helpers import fails

VALUES = {
    "f": 1.25, "neg0": -0.0, "nan": math.nan, "inf": math.inf, "i": Int64(-(2**63)), "big": Int64(2**63 - 1),
    "t": True, "n": None, "s": "snow ☃ \U0001f600", "b": b"\x00\x01\xff", "empty_b": b"",
    "arr": [1.0, [Int64(2), {"k": b"x"}]], "obj": {"": "empty key", "_nested_ok": "fine", "nested": {"d": []}},
}


def open_app(path, **kw):
    return cn.Backend(path, clock=cn.VirtualClock(), echo_logs=False, **kw)


def same(a, b) -> bool:
    """Equality that treats NaN as equal and tells -0.0 from 0.0."""
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


def test_reopen_restores_everything(tmp_path):
    path = tmp_path / "app.sqlite3"
    schema = define_schema({
        "typed": define_table({"name": v.string(), "rank": v.number()}).index("by_rank", ["rank"]),
    })
    app = open_app(path, schema=schema)
    values_id = app.run(lambda ctx: ctx.db.insert("values", VALUES))
    typed = app.run(lambda ctx: [ctx.db.insert("typed", {"name": f"n{i}", "rank": 3 - i}) for i in range(3)])
    deleted = app.run(lambda ctx: ctx.db.insert("typed", {"name": "gone", "rank": 99}))
    app.run(lambda ctx: ctx.db.delete(deleted))
    app.run(lambda ctx: ctx.db.patch(typed[0], {"name": "patched"}))
    before_values = app.run(lambda ctx: ctx.db.get(values_id))
    before_typed = app.run(lambda ctx: ctx.db.query("typed").collect())
    app.close()

    app = open_app(path)
    try:
        assert app.table_names() == ["typed", "values"]
        after = app.run(lambda ctx: ctx.db.get(values_id))
        assert same(after, before_values)
        assert same({k: after[k] for k in VALUES}, VALUES)
        assert app.run(lambda ctx: ctx.db.query("typed").collect()) == before_typed
        assert app.run(lambda ctx: ctx.db.get(deleted)) is None
        by_rank = app.run(lambda ctx: [d["name"] for d in ctx.db.query("typed").with_index("by_rank").collect()])
        assert by_rank == ["n2", "n1", "patched"]
        # the schema came back: it is enforced and describes the same tables
        assert app.schema is not None and set(app.schema.tables) == {"typed"}
        fails(app, lambda ctx: ctx.db.insert("typed", {"name": 1, "rank": 0}), "typed")
        # ids keep resolving to their tables, and the new writes keep maintaining the index
        new = app.run(lambda ctx: ctx.db.insert("typed", {"name": "new", "rank": 0}))
        assert app.run(lambda ctx: ctx.db.normalize_id("typed", new)) == new
        assert app.run(lambda ctx: ctx.db.normalize_id("typed", typed[1])) == typed[1]
        first = app.run(lambda ctx: ctx.db.query("typed").with_index("by_rank").first())
        assert first["_id"] == new
    finally:
        app.close()


def test_creation_times_keep_increasing_across_reopen(tmp_path):
    path = tmp_path / "app.sqlite3"
    app = open_app(path)
    ids = app.run(lambda ctx: [ctx.db.insert("t", {}) for _ in range(3)])
    last = app.run(lambda ctx: ctx.db.get(ids[-1]))["_creationTime"]
    app.close()
    # the new process's clock starts at the same virtual instant as the old one
    app = open_app(path)
    try:
        doc_id = app.run(lambda ctx: ctx.db.insert("t", {}))
        assert app.run(lambda ctx: ctx.db.get(doc_id))["_creationTime"] > last
        assert [d["_id"] for d in app.run(lambda ctx: ctx.db.query("t").collect())] == ids + [doc_id]
    finally:
        app.close()


def test_table_numbers_survive_reopen(tmp_path):
    path = tmp_path / "app.sqlite3"
    app = open_app(path)
    a = app.run(lambda ctx: ctx.db.insert("a", {}))
    app.run(lambda ctx: ctx.db.insert("b", {}))
    app.close()
    app = open_app(path)
    try:
        c = app.run(lambda ctx: ctx.db.insert("c", {}))
        numbers = {name: app.database.table(name).number for name in ("a", "b", "c")}
        assert len(set(numbers.values())) == 3
        assert app.run(lambda ctx: ctx.db.get(a)) is not None and app.run(lambda ctx: ctx.db.get(c)) is not None
    finally:
        app.close()


def test_uncommitted_work_is_not_persisted(tmp_path):
    path = tmp_path / "app.sqlite3"
    app = open_app(path)
    app.run(lambda ctx: ctx.db.insert("t", {"n": 1}))

    def fail(ctx):
        ctx.db.insert("t", {"n": 2})
        ctx.db.insert("u", {})
        raise RuntimeError("abort")

    with pytest.raises(cn.ConvexFunctionError):
        app.run(fail)
    app.close()
    app = open_app(path)
    try:
        assert app.table_names() == ["t"]
        assert [d["n"] for d in app.run(lambda ctx: ctx.db.query("t").collect())] == [1.0]
    finally:
        app.close()


def test_connect_sqlite_url(tmp_path):
    path = tmp_path / "via_url.sqlite3"
    app = cn.connect(f"sqlite:///{path}", echo_logs=False)
    app.run(lambda ctx: ctx.db.insert("t", {"x": 1}))
    app.close()
    app = cn.connect(f"sqlite:///{path}", echo_logs=False)
    try:
        assert app.count("t") == 1
    finally:
        app.close()
