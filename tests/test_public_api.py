"""Every name that /work/shared/API.md §1–§4 promises exists (and a little more: it works)."""

from __future__ import annotations

import asyncio
import inspect

import pytest

import convex_notebook as cn
from convex_notebook import v

PACKAGE_NAMES = [
    # §1 values
    "Int64", "MISSING",
    # §2 schema and validators
    "v", "define_schema", "define_table",
    # §3 backends, errors
    "Backend", "connect", "VirtualClock", "ConvexError", "ConvexFunctionError", "ValidationError",
    # §4 ctx
    "QueryCtx", "MutationCtx", "ActionCtx",
]

VALIDATORS = [
    "string", "number", "float64", "int64", "boolean", "null", "bytes", "any", "id", "array",
    "object", "record", "union", "literal", "optional", "nullable",
]

BACKEND_METHODS = [
    "query", "mutation", "action", "internal_query", "internal_mutation", "internal_action",
    "module", "run", "subscribe", "with_identity", "advance_time",
    "query_async", "mutation_async", "action_async", "run_async",
]

@pytest.mark.parametrize("name", PACKAGE_NAMES)
def test_package_exports(name):
    assert hasattr(cn, name)
    assert name in cn.__all__


@pytest.mark.parametrize("name", VALIDATORS)
def test_validator_builders(name):
    assert callable(getattr(v, name))


def test_error_hierarchy():
    assert issubclass(cn.ValidationError, cn.ConvexFunctionError)
    assert not issubclass(cn.ConvexError, cn.ConvexFunctionError)
    assert cn.ConvexError({"a": 1}).data == {"a": 1}


def test_schema_example_from_api_md():
    schema = cn.define_schema({
        "tasks": cn.define_table({"text": v.string(), "done": v.boolean(), "list": v.id("lists")})
                 .index("by_list", ["list", "done"])
                 .search_index("search_text", search_field="text", filter_fields=["list"])
                 .vector_index("by_embedding", vector_field="embedding", dimensions=768, filter_fields=["list"]),
    }, schema_validation=True, strict_table_name_types=True)
    with cn.Backend(schema=schema, clock=cn.VirtualClock(), echo_logs=False) as app:
        assert app.schema is schema


@pytest.mark.parametrize("name", BACKEND_METHODS)
def test_backend_methods(name):
    with cn.Backend(echo_logs=False) as app:
        assert callable(getattr(app, name))
    if name.endswith("_async"):
        assert inspect.iscoroutinefunction(getattr(cn.Backend, name))


def test_backend_finish_scheduled_functions():
    with cn.Backend(echo_logs=False) as app:
        assert callable(app.finish_scheduled_functions)


def test_backends_from_api_md(tmp_path):
    for app in (
        cn.Backend(),
        cn.Backend(tmp_path / "app.sqlite3"),
        cn.Backend(clock=cn.VirtualClock()),
        cn.connect("memory://"),
        cn.connect(f"sqlite:///{tmp_path / 'other.sqlite3'}", admin_key=None),
    ):
        try:
            assert isinstance(app, cn.Backend)
        finally:
            app.close()


def test_values_section():
    class ConvexInt64Like:  # the official client's ConvexInt64 shape
        def __init__(self, value):
            self.value = value

    with cn.Backend(echo_logs=False) as app:
        doc_id = app.run(lambda ctx: ctx.db.insert("t", {
            "f": 1, "i": cn.Int64(2), "c": ConvexInt64Like(3), "b": True, "s": "x",
            "y": b"\x00", "n": None, "a": (1, 2), "o": {"k": "v"}, "gone": cn.MISSING,
        }))
        doc = app.run(lambda ctx: ctx.db.get(doc_id))
        assert isinstance(doc["_id"], str) and doc["_id"] == doc_id
        assert type(doc["f"]) is float
        assert doc["i"] == cn.Int64(2) and doc["c"] == cn.Int64(3)
        assert doc["b"] is True and doc["y"] == b"\x00" and doc["n"] is None
        assert doc["a"] == [1.0, 2.0] and doc["o"] == {"k": "v"}
        assert "gone" not in doc
        # Int64 is never equal to, nor sorted among, Float64 (in Convex comparisons).
        app.run(lambda ctx: [ctx.db.insert("nums", {"x": x}) for x in (1.0, cn.Int64(1), cn.Int64(100), -5.0)])
        matched = app.run(lambda ctx: ctx.db.query("nums").filter(lambda q: q.eq(q.field("x"), cn.Int64(1))).collect())
        assert [type(d["x"]) for d in matched] == [cn.Int64]
        above = app.run(lambda ctx: ctx.db.query("nums").filter(lambda q: q.gt(q.field("x"), cn.Int64(100))).collect())
        assert sorted(d["x"] for d in above) == [-5.0, 1.0]  # every Float64 sorts after every Int64
        app.run(lambda ctx: ctx.db.patch(doc_id, {"s": cn.MISSING}))
        assert "s" not in app.run(lambda ctx: ctx.db.get(doc_id))
        with pytest.raises(cn.ConvexFunctionError, match="Int64"):
            app.run(lambda ctx: ctx.db.insert("t", {"big": 2**60}))


def test_defining_and_calling_section():
    with cn.Backend(clock=cn.VirtualClock(), echo_logs=False) as app:
        @app.query(args={"list": v.string()}, returns=v.array(v.any()))
        def list_tasks(ctx, list):  # noqa: A002
            return [d for d in ctx.db.query("tasks").collect() if d["list"] == list]

        @app.mutation
        def add(ctx, text, list="l"):
            return ctx.db.insert("tasks", {"text": text, "done": False, "list": list})

        @app.action(args={"text": v.string()})
        async def add_via_action(ctx, text):
            return await ctx.run_mutation("add", {"text": text})

        @app.internal_mutation
        def purge(ctx):
            for d in ctx.db.query("tasks").collect():
                ctx.db.delete(d["_id"])

        tasks = app.module("tasks")

        @tasks.query
        def count(ctx):
            return len(ctx.db.query("tasks").collect())

        assert count.path == "tasks:count"
        app.mutation("add", {"text": "hi"})
        app.action("add_via_action", {"text": "there"})
        assert [d["text"] for d in app.query("list_tasks", {"list": "l"})] == ["hi", "there"]
        assert app.query("tasks:count") == 2
        sub = app.subscribe("tasks:count")
        try:
            assert sub.value == 2
        finally:
            sub.unsubscribe()
        app.run("purge")
        assert app.run(lambda ctx: ctx.db.insert("t", {})) is not None
        assert app.with_identity({"subject": "u1", "name": "Ada"}).run(
            lambda ctx: ctx.auth.get_user_identity()["name"]) == "Ada"
        assert asyncio.run(app.query_async("tasks:count")) == 0


def _ctx_probe(ctx):
    return ctx


def test_query_and_mutation_ctx_section():
    with cn.Backend(echo_logs=False) as app:
        def body(ctx):
            out = {name: callable(getattr(ctx.db, name)) for name in
                   ("get", "query", "insert", "patch", "replace", "delete", "normalize_id")}
            out.update({name: callable(getattr(ctx, name)) for name in ("run_query", "run_mutation", "now")})
            out["auth"] = callable(ctx.auth.get_user_identity)
            q = ctx.db.query("t")
            out.update({f"q.{n}": callable(getattr(q, n)) for n in (
                "with_index", "with_search_index", "full_table_scan", "filter", "order",
                "collect", "take", "first", "unique", "paginate", "__iter__")})
            page = ctx.db.query("t").paginate({"numItems": 1, "cursor": None})
            out["page"] = sorted(page)[:3] == ["continueCursor", "isDone", "page"]
            return out

        assert all(app.run(body).values())


def test_filter_ops():
    with cn.Backend(echo_logs=False) as app:
        seen = {}

        def body(ctx):
            def predicate(q):
                for op in ("field", "eq", "neq", "lt", "lte", "gt", "gte", "add", "sub", "mul",
                           "div", "mod", "neg", "and_", "or_", "not_"):
                    seen[op] = callable(getattr(q, op))
                return True

            ctx.db.insert("t", {"a": 1})
            return ctx.db.query("t").filter(predicate).collect()

        app.run(body)
        assert len(seen) == 16 and all(seen.values())


def test_action_ctx_section():
    with cn.Backend(echo_logs=False) as app:
        @app.action
        def probe(ctx):
            return [callable(getattr(ctx, n)) for n in ("run_query", "run_mutation", "run_action", "now")] + [
                callable(ctx.auth.get_user_identity)]

        assert all(app.action("probe"))


def test_scheduler_ctx():
    with cn.Backend(echo_logs=False) as app:
        def body(ctx):
            return [callable(getattr(ctx.scheduler, n)) for n in ("run_after", "run_at", "cancel")]

        assert all(app.run(body))


def test_storage_ctx():
    with cn.Backend(echo_logs=False) as app:
        def body(ctx):
            return [callable(getattr(ctx.storage, n)) for n in
                    ("store", "get", "get_url", "delete", "generate_upload_url", "get_metadata")]

        assert all(app.run(body))


def test_system_tables_ctx():
    with cn.Backend(echo_logs=False) as app:
        assert app.run(lambda ctx: callable(ctx.db.system.get) and callable(ctx.db.system.query))


def test_vector_search_in_actions():
    with cn.Backend(echo_logs=False) as app:
        @app.action
        def probe(ctx):
            return callable(ctx.vector_search)

        assert app.action("probe")
