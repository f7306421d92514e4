"""Schema enforcement in the engine: rejected writes, atomic schema changes, index backfill."""

from __future__ import annotations

import pytest

import convex_notebook as cn
from convex_notebook import define_schema, define_table, v

from engine_helpers import all_docs, fails


def tasks_schema(**options):
    return define_schema({
        "lists": define_table({"name": v.string()}),
        "tasks": define_table({
            "text": v.string(),
            "done": v.boolean(),
            "list": v.id("lists"),
            "meta": v.optional(v.object({"tags": v.array(v.string())})),
        }).index("by_list", ["list", "done"]),
    }, **options)


@pytest.fixture
def app_s(app):
    app.set_schema(tasks_schema())
    return app


def test_valid_writes_pass(app_s):
    lid = app_s.run(lambda ctx: ctx.db.insert("lists", {"name": "l"}))
    tid = app_s.run(lambda ctx: ctx.db.insert("tasks", {"text": "a", "done": False, "list": lid}))
    app_s.run(lambda ctx: ctx.db.patch(tid, {"meta": {"tags": ["x"]}}))
    app_s.run(lambda ctx: ctx.db.patch(tid, {"meta": cn.MISSING}))  # optional field removed
    app_s.run(lambda ctx: ctx.db.replace(tid, {"text": "b", "done": True, "list": lid}))
    assert app_s.run(lambda ctx: ctx.db.get(tid))["text"] == "b"


def test_violating_writes_are_rejected_naming_table_and_path(app_s):
    lid = app_s.run(lambda ctx: ctx.db.insert("lists", {"name": "l"}))
    tid = app_s.run(lambda ctx: ctx.db.insert("tasks", {"text": "a", "done": False, "list": lid}))
    before = all_docs(app_s, "tasks")
    err = fails(app_s, lambda ctx: ctx.db.insert("tasks", {"text": 1, "done": False, "list": lid}), '"tasks"')
    assert isinstance(err, cn.ValidationError) and ".text" in str(err)
    err = fails(app_s, lambda ctx: ctx.db.patch(tid, {"meta": {"tags": ["ok", 3]}}), "tasks")
    assert ".meta.tags[1]" in str(err)
    err = fails(app_s, lambda ctx: ctx.db.replace(tid, {"text": "b", "done": True}), "tasks")
    assert "list" in str(err)
    fails(app_s, lambda ctx: ctx.db.insert("tasks", {"text": "a", "done": False, "list": lid, "extra": 1}), "extra")
    fails(app_s, lambda ctx: ctx.db.insert("tasks", {"text": "a", "done": False, "list": tid}), "lists")  # wrong table id
    fails(app_s, lambda ctx: ctx.db.patch(tid, {"done": cn.MISSING}), "done")  # required field removed
    assert all_docs(app_s, "tasks") == before


def test_a_rejected_write_rolls_back_the_whole_mutation(app_s):
    def work(ctx):
        ctx.db.insert("lists", {"name": "fine"})
        ctx.db.insert("lists", {"name": None})

    fails(app_s, work, "lists")
    assert app_s.count("lists") == 0


def test_tables_outside_the_schema_are_free_unless_strict(app_s):
    app_s.run(lambda ctx: ctx.db.insert("scratch", {"anything": [1, "two"]}))
    assert app_s.count("scratch") == 1


def test_schema_validation_off_skips_checks_but_keeps_indexes(app):
    app.set_schema(tasks_schema(schema_validation=False))
    app.run(lambda ctx: ctx.db.insert("tasks", {"text": 1, "done": "no"}))
    got = app.run(lambda ctx: ctx.db.query("tasks").with_index("by_list").collect())
    assert len(got) == 1


def test_set_schema_checks_existing_documents_and_changes_nothing_on_failure(app):
    app.run(lambda ctx: ctx.db.insert("tasks", {"text": "a", "done": "not a bool"}))
    before = all_docs(app, "tasks")
    bad = define_schema({
        "created_first": define_table({"x": v.number()}).index("by_x", ["x"]),
        "tasks": define_table({"text": v.string(), "done": v.boolean()}).index("by_done", ["done"]),
    })
    with pytest.raises(cn.SchemaError) as info:
        app.set_schema(bad)
    message = str(info.value)
    assert "tasks" in message and before[0]["_id"] in message and ".done" in message
    assert app.schema is None
    assert app.table_names() == ["tasks"]
    assert set(app.database.table("tasks").indexes) == {"by_id", "by_creation_time"}
    assert all_docs(app, "tasks") == before
    fails(app, lambda ctx: ctx.db.query("tasks").with_index("by_done").collect(), "Index tasks.by_done not found.")
    # unconstrained writes still work
    app.run(lambda ctx: ctx.db.insert("tasks", {"whatever": True}))


def test_failed_schema_change_keeps_the_previous_schema(app_s):
    lid = app_s.run(lambda ctx: ctx.db.insert("lists", {"name": "l"}))
    stricter = define_schema({"lists": define_table({"name": v.literal("other")})})
    with pytest.raises(cn.SchemaError):
        app_s.set_schema(stricter)
    assert app_s.schema is not None and "tasks" in app_s.schema.tables
    assert "by_list" in app_s.database.table("tasks").indexes
    app_s.run(lambda ctx: ctx.db.insert("tasks", {"text": "t", "done": False, "list": lid}))
    fails(app_s, lambda ctx: ctx.db.insert("lists", {"name": 3}), "lists")


def test_indexes_are_backfilled_and_dropped(app):
    def fill(ctx):
        for i in range(5):
            ctx.db.insert("t", {"n": 4 - i})

    app.run(fill)
    app.set_schema(define_schema({"t": define_table({"n": v.number()}).index("by_n", ["n"])}))
    got = app.run(lambda ctx: [d["n"] for d in ctx.db.query("t").with_index("by_n", lambda q: q.gte("n", 2)).collect()])
    assert got == [2.0, 3.0, 4.0]
    # redefining the index's fields rebuilds it; leaving it out drops it
    app.set_schema(define_schema({"t": define_table({"n": v.number(), "m": v.optional(v.number())}).index("by_n", ["m", "n"])}))
    got = app.run(lambda ctx: [d["n"] for d in ctx.db.query("t").with_index("by_n", lambda q: q.eq("m", cn.MISSING).lt("n", 2)).collect()])
    assert got == [0.0, 1.0]
    app.set_schema(define_schema({"t": define_table({"n": v.number()})}))
    fails(app, lambda ctx: ctx.db.query("t").with_index("by_n").collect(), "Index t.by_n not found.")
    assert set(app.database.table("t").indexes) == {"by_id", "by_creation_time"}
    app.set_schema(None)
    app.run(lambda ctx: ctx.db.insert("t", {"n": "free again"}))


def test_schema_tables_exist_after_set_schema(app):
    app.set_schema(tasks_schema())
    assert app.table_names() == ["lists", "tasks"]
    assert app.run(lambda ctx: ctx.db.query("tasks").with_index("by_list").collect()) == []


def test_schema_passed_to_the_backend_constructor(tmp_path):
    with cn.Backend(schema=tasks_schema(), echo_logs=False) as app:
        fails(app, lambda ctx: ctx.db.insert("lists", {}), "name")


def test_staged_index_is_not_queryable_until_enabled(app):
    app.run(lambda ctx: [ctx.db.insert("t", {"n": n}) for n in (2, 1)])
    app.set_schema(define_schema({"t": define_table({"n": v.number()}).index("by_n", ["n"], staged=True)}))
    fails(app, lambda ctx: ctx.db.query("t").with_index("by_n").collect(), "staged")
    app.run(lambda ctx: ctx.db.insert("t", {"n": 0}))  # written while staged
    app.set_schema(define_schema({"t": define_table({"n": v.number()}).index("by_n", ["n"])}))
    got = app.run(lambda ctx: [d["n"] for d in ctx.db.query("t").with_index("by_n").collect()])
    assert got == [0.0, 1.0, 2.0]
