"""Documents and writes (conformance §3.2): insert/get/patch/replace/delete and their errors."""

from __future__ import annotations

import time

import pytest

import convex_notebook as cn
from convex_notebook.values import encode_id, is_id

from engine_helpers import all_docs, fails


def test_insert_returns_an_id_and_get_returns_system_fields(app):
    doc_id = app.run(lambda ctx: ctx.db.insert("t", {"a": 1, "s": "x"}))
    assert isinstance(doc_id, str) and is_id(doc_id)
    doc = app.run(lambda ctx: ctx.db.get(doc_id))
    assert doc == {"_id": doc_id, "_creationTime": 1_700_000_000_000.0, "a": 1.0, "s": "x"}
    assert type(doc["_creationTime"]) is float
    assert list(doc)[:2] == ["_id", "_creationTime"]


def test_creation_time_lies_between_clock_readings_on_the_system_clock():
    with cn.Backend(echo_logs=False) as app:
        before = time.time() * 1000
        doc_id = app.run(lambda ctx: ctx.db.insert("t", {}))
        after = time.time() * 1000
        ct = app.run(lambda ctx: ctx.db.get(doc_id))["_creationTime"]
        assert before - 1 <= ct <= after + 1


def test_creation_time_strictly_increases_within_a_mutation_and_across_them(app):
    def five(ctx):
        return [ctx.db.insert("t", {"i": i}) for i in range(5)]

    ids = app.run(five) + app.run(five)  # the virtual clock stands still throughout
    times = [app.run(lambda ctx, i=i: ctx.db.get(i))["_creationTime"] for i in ids]
    assert all(a < b for a, b in zip(times, times[1:]))
    assert [d["_id"] for d in all_docs(app, "t")] == ids  # default order is _creationTime


def test_creation_time_follows_the_clock(app):
    a = app.run(lambda ctx: ctx.db.insert("t", {}))
    app.advance_time(1000)
    b = app.run(lambda ctx: ctx.db.insert("t", {}))
    ta, tb = (app.run(lambda ctx, i=i: ctx.db.get(i))["_creationTime"] for i in (a, b))
    assert tb == ta + 1000


def test_values_round_trip_through_insert_and_get(app):
    value = {
        "f": 1.5, "i": cn.Int64(-(2**63)), "b": True, "n": None, "s": "héllo ☃", "by": b"\x00\xff",
        "arr": [1, [2, {"x": None}]], "obj": {"": "empty key", "nested": {"deep": [b""]}},
        "nan": float("nan"), "negzero": -0.0, "inf": float("-inf"),
    }
    doc_id = app.run(lambda ctx: ctx.db.insert("t", value))
    doc = app.run(lambda ctx: ctx.db.get(doc_id))
    assert type(doc["i"]) is cn.Int64 and doc["i"] == -(2**63)
    assert doc["by"] == b"\x00\xff" and doc["obj"][""] == "empty key"
    assert doc["nan"] != doc["nan"] and str(doc["negzero"]) == "-0.0" and doc["inf"] == float("-inf")
    assert doc["arr"] == [1.0, [2.0, {"x": None}]]


def test_missing_values_in_an_inserted_dict_are_dropped(app):
    doc_id = app.run(lambda ctx: ctx.db.insert("t", {"a": 1, "gone": cn.MISSING}))
    assert app.run(lambda ctx: ctx.db.get(doc_id)) == {
        "_id": doc_id, "_creationTime": 1_700_000_000_000.0, "a": 1.0,
    }


def test_patch_is_shallow_and_missing_removes(app):
    doc_id = app.run(lambda ctx: ctx.db.insert("t", {"a": 1, "b": 2, "field4": {"a": True}}))
    app.run(lambda ctx: ctx.db.patch(doc_id, {"b": 3, "c": "new", "field4": {"b": True}}))
    doc = app.run(lambda ctx: ctx.db.get(doc_id))
    assert {k: doc[k] for k in ("a", "b", "c", "field4")} == {"a": 1.0, "b": 3.0, "c": "new", "field4": {"b": True}}
    app.run(lambda ctx: ctx.db.patch(doc_id, {"a": cn.MISSING, "never_there": cn.MISSING}))
    doc = app.run(lambda ctx: ctx.db.get(doc_id))
    assert "a" not in doc and "never_there" not in doc and doc["b"] == 3.0
    app.run(lambda ctx: ctx.db.patch(doc_id, {}))  # an empty patch changes nothing
    assert app.run(lambda ctx: ctx.db.get(doc_id)) == doc


def test_patch_accepts_matching_system_fields_and_rejects_others(app):
    doc_id = app.run(lambda ctx: ctx.db.insert("t", {"a": 1}))
    doc = app.run(lambda ctx: ctx.db.get(doc_id))
    app.run(lambda ctx: ctx.db.patch(doc_id, {"_id": doc_id, "_creationTime": doc["_creationTime"], "a": 2}))
    assert app.run(lambda ctx: ctx.db.get(doc_id))["a"] == 2.0
    fails(app, lambda ctx: ctx.db.patch(doc_id, {"_creationTime": 5.0}), "doesn't match '_creationTime' field")
    other = app.run(lambda ctx: ctx.db.insert("t", {}))
    fails(app, lambda ctx: ctx.db.patch(doc_id, {"_id": other}), "doesn't match '_id' field")
    assert app.run(lambda ctx: ctx.db.get(doc_id)) == {**doc, "a": 2.0}


def test_replace_swaps_user_fields_and_keeps_system_fields(app):
    doc_id = app.run(lambda ctx: ctx.db.insert("t", {"a": 1, "b": 2}))
    before = app.run(lambda ctx: ctx.db.get(doc_id))
    app.run(lambda ctx: ctx.db.replace(doc_id, {"c": 3}))
    after = app.run(lambda ctx: ctx.db.get(doc_id))
    assert after == {"_id": doc_id, "_creationTime": before["_creationTime"], "c": 3.0}


def test_table_scoped_forms(app):
    doc_id = app.run(lambda ctx: ctx.db.insert("t", {"a": 1}))
    app.run(lambda ctx: ctx.db.patch("t", doc_id, {"a": 2}))
    assert app.run(lambda ctx: ctx.db.get("t", doc_id))["a"] == 2.0
    app.run(lambda ctx: ctx.db.replace("t", doc_id, {"b": 1}))
    assert "a" not in app.run(lambda ctx: ctx.db.get("t", doc_id))
    app.run(lambda ctx: ctx.db.insert("u", {}))
    fails(app, lambda ctx: ctx.db.get("u", doc_id), "expected ID in table 'u'")
    fails(app, lambda ctx: ctx.db.delete("u", doc_id), "expected ID in table 'u'")
    app.run(lambda ctx: ctx.db.delete("t", doc_id))
    assert app.run(lambda ctx: ctx.db.get(doc_id)) is None


def test_insert_with_system_fields_fails(app):
    doc_id = app.run(lambda ctx: ctx.db.insert("t", {}))
    fails(app, lambda ctx: ctx.db.insert("t", {"_id": doc_id}), "Provided document ID")
    fails(app, lambda ctx: ctx.db.insert("t", {"_creationTime": 1.0}), "Provided creation time")
    assert app.count("t") == 1


def test_operations_on_deleted_documents(app):
    doc_id = app.run(lambda ctx: ctx.db.insert("t", {"a": 1}))
    app.run(lambda ctx: ctx.db.delete(doc_id))
    assert app.run(lambda ctx: ctx.db.get(doc_id)) is None
    fails(app, lambda ctx: ctx.db.patch(doc_id, {"a": 2}), "Update on nonexistent document ID")
    fails(app, lambda ctx: ctx.db.replace(doc_id, {"a": 2}), "Replace on nonexistent document ID")
    fails(app, lambda ctx: ctx.db.delete(doc_id), "Delete on nonexistent document ID")


def test_ids_of_a_table_that_does_not_exist(app):
    app.run(lambda ctx: ctx.db.insert("t", {}))
    ghost = encode_id(4242, bytes(16))
    assert app.run(lambda ctx: ctx.db.get(ghost)) is None
    phrase = f'Table for ID "{ghost}" not found'
    fails(app, lambda ctx: ctx.db.patch(ghost, {}), phrase)
    fails(app, lambda ctx: ctx.db.replace(ghost, {}), phrase)
    fails(app, lambda ctx: ctx.db.delete(ghost), phrase)


def test_fake_ids_and_missing_tables_give_empty_results(app):
    app.run(lambda ctx: ctx.db.insert("t", {"ref": "x"}))
    ghost = encode_id(4242, bytes(16))
    assert app.run(lambda ctx: ctx.db.query("t").filter(lambda q: q.eq(q.field("_id"), ghost)).collect()) == []
    assert app.run(lambda ctx: ctx.db.query("nope").collect()) == []
    assert app.run(lambda ctx: ctx.db.query("nope").filter(lambda q: q.eq(q.field("a"), 1)).collect()) == []
    assert app.run(lambda ctx: ctx.db.query("nope").with_index("by_creation_time").first()) is None
    assert app.run(lambda ctx: ctx.db.query("t").with_index("by_id", lambda q: q.eq("_id", ghost)).collect()) == []
    assert "nope" not in app.table_names()  # reading a table does not create it


def test_bad_arguments(app):
    fails(app, lambda ctx: ctx.db.get(None), "Invalid argument `id` for `db.get`")
    fails(app, lambda ctx: ctx.db.get("abc"), "Unable to decode ID")
    doc_id = app.run(lambda ctx: ctx.db.insert("t", {}))
    fails(app, lambda ctx: ctx.db.patch(doc_id, "ok"), "Value must be an Object")
    fails(app, lambda ctx: ctx.db.replace(doc_id, ["x"]), "Value must be an Object")
    fails(app, lambda ctx: ctx.db.insert("t", "ok"), "Value must be an Object")
    fails(app, lambda ctx: ctx.db.insert("_notallowed", {}), "System tables (prefixed with `_`) are read-only.")
    fails(app, lambda ctx: ctx.db.insert("bad-name", {}), "Invalid table name")
    fails(app, lambda ctx: ctx.db.insert(3, {}), "table name must be a string")


def test_insert_then_delete_in_one_mutation_leaves_nothing(app):
    from convex_notebook import define_schema, define_table, v

    app.set_schema(define_schema({"t": define_table({"a": v.number()}).index("by_a", ["a"])}))

    def churn(ctx):
        doc_id = ctx.db.insert("t", {"a": 1})
        ctx.db.patch(doc_id, {"a": 2})
        ctx.db.delete(doc_id)
        return doc_id

    doc_id = app.run(churn)
    assert app.run(lambda ctx: ctx.db.get(doc_id)) is None
    assert app.count("t") == 0
    db = app.database
    for index in db.table("t").entry_indexes:
        assert db.store.entry_keys(index.index_id) == [], index.name
    assert app.run(lambda ctx: ctx.db.query("t").with_index("by_a").collect()) == []


def test_count_sees_pending_writes(app):
    ids = app.run(lambda ctx: [ctx.db.insert("t", {}) for _ in range(3)])

    def pending(ctx):
        ctx.db.insert("t", {})
        ctx.db.delete(ids[0])
        ctx.db.delete(ids[1])
        return ctx.db.query("t").count()

    assert app.run(pending) == 2


def test_tables_are_created_on_first_insert_and_kept_when_emptied(app):
    assert app.table_names() == []
    doc_id = app.run(lambda ctx: ctx.db.insert("t", {}))
    assert app.table_names() == ["t"]
    app.run(lambda ctx: ctx.db.delete(doc_id))
    assert app.table_names() == ["t"]
    assert app.count("t") == 0


def test_queries_are_read_only(app):
    @app.query
    def sneaky(ctx):
        return ctx.db.insert("t", {})

    with pytest.raises(cn.ConvexFunctionError) as info:
        app.query("sneaky")
    assert not hasattr(info.value, "data")
    assert "t" not in app.table_names()


def test_registered_mutation_round_trip(app):
    from convex_notebook import v

    @app.mutation(args={"text": v.string()})
    def add(ctx, text):
        return ctx.db.insert("tasks", {"text": text, "done": False})

    @app.query(args={"id": v.id("tasks")})
    def get(ctx, id):
        return ctx.db.get(id)

    doc_id = app.mutation("add", {"text": "hi"})
    assert app.query("get", {"id": doc_id})["text"] == "hi"


def test_missing_nested_in_patch_and_replace_values_is_stripped(app):
    doc_id = app.run(lambda ctx: ctx.db.insert("t", {"a": {"b": 1, "c": cn.MISSING}, "tup": (1, 2)}))
    doc = app.run(lambda ctx: ctx.db.get(doc_id))
    assert doc["a"] == {"b": 1.0} and doc["tup"] == [1.0, 2.0]
    app.run(lambda ctx: ctx.db.patch(doc_id, {"a": {"b": cn.MISSING, "d": 2}}))  # shallow: a is replaced
    assert app.run(lambda ctx: ctx.db.get(doc_id))["a"] == {"d": 2.0}
    app.run(lambda ctx: ctx.db.replace(doc_id, {"x": cn.MISSING, "y": 1}))
    doc = app.run(lambda ctx: ctx.db.get(doc_id))
    assert {k: v for k, v in doc.items() if not k.startswith("_")} == {"y": 1.0}
    # MISSING for the system fields in a patch means "leave them alone"
    app.run(lambda ctx: ctx.db.patch(doc_id, {"_id": cn.MISSING, "_creationTime": cn.MISSING}))
    assert app.run(lambda ctx: ctx.db.get(doc_id)) == doc
    fails(app, lambda ctx: ctx.db.patch(doc_id, {"y": [cn.MISSING]}), "undefined is not a valid Convex value")


def test_inline_run_returning_missing_gives_none(app):
    assert app.run(lambda ctx: cn.MISSING) is None
