"""Parity points of issue 15, each against Convex's documented behaviour."""

from __future__ import annotations

from typing import Any

import pytest

import convex_notebook as cn
from convex_notebook import v

MiB = 1024 * 1024


def test_app_run_can_use_file_storage(app: cn.Backend) -> None:
    """convex-test's t.run has file storage; so does app.run (API.md §4)."""
    sid = app.run(lambda ctx: ctx.storage.store(b"abc", content_type="text/plain"))
    assert app.run(lambda ctx: ctx.storage.get(sid)) == b"abc"
    assert app.run(lambda ctx: ctx.storage.get_metadata(sid))["contentType"] == "text/plain"

    def store_then_fail(ctx: Any) -> None:
        ctx.storage.store(b"never kept")
        raise RuntimeError("boom")

    with pytest.raises(cn.ConvexFunctionError, match="boom"):
        app.run(store_then_fail)  # part of the inline mutation's transaction: rolled back
    assert app.run(lambda ctx: len(ctx.db.system.query("_storage").collect())) == 1


def test_async_action_can_await_scheduler_and_storage(app: cn.Backend) -> None:
    @app.mutation
    def note(ctx: Any, text: str) -> None:
        ctx.db.insert("notes", {"text": text})

    @app.action
    async def work(ctx: Any) -> list:
        job = await ctx.scheduler.run_after(0, "note", {"text": "later"})
        pending = ctx.scheduler.run_at(ctx.now(), "note", {"text": "also"})  # started at once, like a Promise
        sid = await ctx.storage.store(b"bytes")
        data = await ctx.storage.get(sid)
        await ctx.storage.delete(sid)
        gone = await ctx.storage.get(sid)
        await ctx.scheduler.cancel(await pending)
        return [isinstance(job, str), type(await ctx.storage.get_url(sid)).__name__, data, gone]

    assert app.action("work") == [True, "NoneType", b"bytes", None]
    app.finish_scheduled_functions()
    assert [d["text"] for d in app.run(lambda ctx: ctx.db.query("notes").collect())] == ["later"]


def test_pagination_opts_validator_is_public(app: cn.Backend) -> None:
    assert cn.pagination_opts_validator is cn.paginationOptsValidator

    @app.query(args={"paginationOpts": cn.pagination_opts_validator})
    def page(ctx: Any, paginationOpts: dict) -> dict:
        return ctx.db.query("t").paginate(paginationOpts)

    app.run(lambda ctx: [ctx.db.insert("t", {"i": i}) for i in range(3)])
    assert len(app.query("page", {"paginationOpts": {"numItems": 2, "cursor": None}})["page"]) == 2
    with pytest.raises(cn.ValidationError, match="numItems"):
        app.query("page", {"paginationOpts": {"cursor": None}})


@pytest.mark.parametrize("delay", [-1, -0.5, float("-inf")])
def test_negative_delay_is_refused_and_schedules_nothing(app: cn.Backend, delay: float) -> None:
    @app.mutation
    def note(ctx: Any) -> None:
        pass

    with pytest.raises(cn.ConvexFunctionError, match="`delayMs` must be non-negative"):
        app.run(lambda ctx: ctx.scheduler.run_after(delay, "note", {}))
    assert app.run(lambda ctx: ctx.db.system.query("_scheduled_functions").collect()) == []


def test_table_scoped_reader_and_writer(app: cn.Backend) -> None:
    @app.mutation
    def add(ctx: Any) -> str:
        tasks = ctx.db.table("tasks")
        doc_id = tasks.insert({"text": "a"})
        tasks.patch(doc_id, {"done": True})
        return doc_id

    other = app.run(lambda ctx: ctx.db.insert("other", {}))
    task = app.mutation("add")

    @app.query
    def read(ctx: Any, doc_id: str) -> Any:
        return ctx.db.table("tasks").get(doc_id)

    @app.query
    def listed(ctx: Any) -> list:
        return [d["text"] for d in ctx.db.table("tasks").query().collect()]

    assert app.query("read", {"doc_id": task})["done"] is True
    assert app.query("listed") == ["a"]
    with pytest.raises(cn.ConvexFunctionError, match="other"):
        app.query("read", {"doc_id": other})  # an id of another table is refused

    @app.query
    def writes(ctx: Any) -> None:
        ctx.db.table("tasks").insert({})

    with pytest.raises(cn.ConvexFunctionError, match="insert"):
        app.query("writes")  # a query's table reader has no writes
    with pytest.raises(cn.ConvexFunctionError, match="user table"):
        app.run(lambda ctx: ctx.db.table("_storage"))


def test_table_definition_validator() -> None:
    table = cn.define_table({"text": v.string(), "done": v.boolean()})
    schema = cn.define_schema({"tasks": table})
    assert schema.tables["tasks"].validator is table.document_validator
    doc = table.validator.extend({"_id": v.id("tasks"), "_creationTime": v.number()})
    assert set(doc.fields) == {"text", "done", "_id", "_creationTime"}


def test_scheduled_arguments_up_to_the_argument_limit(app: cn.Backend) -> None:
    @app.mutation
    def take(ctx: Any, blob: str) -> None:
        ctx.db.insert("seen", {"n": len(blob), "tail": blob[-3:]})

    blob = "x" * (3 * MiB) + "end"  # more than a document may hold
    job = app.run(lambda ctx: ctx.scheduler.run_after(0, "take", {"blob": blob}))
    app.finish_scheduled_functions()
    assert app.run(lambda ctx: ctx.db.system.get(job))["state"] == {"kind": "success"}
    assert app.run(lambda ctx: ctx.db.query("seen").collect())[0]["n"] == len(blob)
    with pytest.raises(cn.LimitError, match="argument_bytes"):
        app.run(lambda ctx: ctx.scheduler.run_after(0, "take", {"blob": "y" * (17 * MiB)}))


def test_scheduled_big_arguments_persist(tmp_path: Any) -> None:
    path = tmp_path / "app.sqlite3"
    first = cn.Backend(path, clock=cn.VirtualClock(), echo_logs=False)

    @first.mutation
    def take(ctx: Any, blob: str) -> None:
        ctx.db.insert("seen", {"n": len(blob)})

    first.run(lambda ctx: ctx.scheduler.run_after(1000, "take", {"blob": "z" * (2 * MiB)}))
    first.close()
    again = cn.Backend(path, clock=cn.VirtualClock(), echo_logs=False)
    again.mutation(name="take")(take.definition.handler)
    again.finish_scheduled_functions()
    assert again.run(lambda ctx: ctx.db.query("seen").collect())[0]["n"] == 2 * MiB
    again.close()
