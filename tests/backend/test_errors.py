"""Errors: ConvexError data, wrapping of other exceptions, rollback (conformance §3.6)."""

from __future__ import annotations

import asyncio

import pytest

import convex_notebook as cn
from convex_notebook import v

DATA = [
    {"code": "NOT_FOUND", "message": "no such task"},
    "plain string",
    {"nested": {"list": [1, {"deep": True}], "bytes": b"\x01"}},
    cn.Int64(42),
    {"n": cn.Int64(-7)},
    True,
    None,
    [1, "two", None],
    3.5,
]


def _raiser(data):
    def handler(ctx):
        raise cn.ConvexError(data)

    return handler


def assert_same_data(got, expected):
    assert got == expected
    assert type(got) is type(expected)
    if isinstance(expected, dict):
        for key in expected:
            assert type(got[key]) is type(expected[key])


@pytest.mark.parametrize("data", DATA, ids=repr)
@pytest.mark.parametrize("kind", ["query", "mutation", "action"])
def test_convex_error_reaches_caller_with_same_data(app, kind, data):
    getattr(app, kind)(name="fail")(_raiser(data))
    with pytest.raises(cn.ConvexError) as info:
        getattr(app, kind)("fail")
    assert_same_data(info.value.data, data)
    assert not isinstance(info.value, cn.ConvexFunctionError)


@pytest.mark.parametrize("data", DATA[:4], ids=repr)
def test_convex_error_through_run_and_inline(app, data):
    app.internal_mutation(name="fail")(_raiser(data))
    with pytest.raises(cn.ConvexError) as info:
        app.run("fail")
    assert_same_data(info.value.data, data)
    with pytest.raises(cn.ConvexError) as info:
        app.run(_raiser(data))
    assert_same_data(info.value.data, data)


@pytest.mark.parametrize("data", DATA[:4], ids=repr)
def test_convex_error_caught_from_ctx_run_in_action(app, data):
    app.internal_query(name="q")(_raiser(data))
    app.internal_mutation(name="m")(_raiser(data))
    app.internal_action(name="a")(_raiser(data))

    @app.action
    def catcher(ctx):
        caught = []
        for run, ref in ((ctx.run_query, "q"), (ctx.run_mutation, "m"), (ctx.run_action, "a")):
            try:
                run(ref)
            except cn.ConvexError as exc:
                caught.append(exc.data)
        return caught

    assert app.action("catcher") == [data, data, data]


def test_convex_error_caught_from_run_mutation_in_mutation(app):
    app.internal_mutation(name="m")(_raiser({"code": 1}))

    @app.mutation
    def catcher(ctx):
        try:
            ctx.run_mutation("m")
        except cn.ConvexError as exc:
            return exc.data

    assert app.mutation("catcher") == {"code": 1}


def test_convex_error_in_async_action(app):
    app.internal_mutation(name="m")(_raiser({"async": True}))

    @app.action
    async def caught(ctx):
        try:
            await ctx.run_mutation("m")
        except cn.ConvexError as exc:
            return exc.data

    @app.action
    async def uncaught(ctx):
        await asyncio.sleep(0)
        raise cn.ConvexError("after an await")

    assert app.action("caught") == {"async": True}
    with pytest.raises(cn.ConvexError) as info:
        app.action("uncaught")
    assert info.value.data == "after an await"


def test_convex_error_subclass_keeps_its_type(app):
    class NotAllowed(cn.ConvexError):
        pass

    @app.mutation
    def fail(ctx):
        raise NotAllowed({"why": "nope"})

    with pytest.raises(NotAllowed) as info:
        app.mutation("fail")
    assert info.value.data == {"why": "nope"}


def test_lookalike_dict_is_not_a_convex_error(app):
    class Looks(Exception):
        pass

    @app.mutation
    def fail(ctx):
        raise Looks({"ConvexError": True, "data": 1})

    with pytest.raises(cn.ConvexFunctionError):
        app.mutation("fail")
    with pytest.raises(cn.ConvexFunctionError) as info:
        app.mutation("fail")
    assert not isinstance(info.value, cn.ConvexError)


@pytest.mark.parametrize("kind", ["query", "mutation", "action"])
def test_other_exceptions_become_function_errors_chained_to_the_original(app, kind):
    def handler(ctx):
        raise KeyError("missing-key")

    getattr(app, kind)(name="buggy")(handler)
    with pytest.raises(cn.ConvexFunctionError) as info:
        getattr(app, kind)("buggy")
    error = info.value
    assert not isinstance(error, cn.ValidationError)
    assert isinstance(error.__cause__, KeyError)
    assert error.__cause__.args == ("missing-key",)
    assert error.__cause__.__traceback__ is not None  # the original traceback is kept
    message = str(error)
    assert "KeyError" in message and "missing-key" in message and "buggy" in message


def test_async_action_exception_is_chained(app):
    @app.action
    async def buggy(ctx):
        await asyncio.sleep(0)
        raise ZeroDivisionError("async boom")

    with pytest.raises(cn.ConvexFunctionError, match="async boom") as info:
        app.action("buggy")
    assert isinstance(info.value.__cause__, ZeroDivisionError)


def test_errors_from_ctx_run_inside_actions_are_chained(app):
    @app.internal_mutation
    def inner(ctx):
        raise ValueError("inner broke")

    @app.action
    def outer(ctx):
        ctx.run_mutation("inner")

    with pytest.raises(cn.ConvexFunctionError, match="inner broke") as info:
        app.action("outer")
    # The chain leads back to the original exception.
    cause = info.value
    while cause.__cause__ is not None:
        cause = cause.__cause__
    assert isinstance(cause, ValueError)


def test_database_errors_are_function_errors(app):
    @app.mutation
    def bad_patch(ctx):
        doc_id = ctx.db.insert("t", {})
        ctx.db.delete(doc_id)
        ctx.db.patch(doc_id, {"x": 1})

    with pytest.raises(cn.ConvexFunctionError, match="nonexistent") as info:
        app.mutation("bad_patch")
    assert isinstance(info.value.__cause__, cn.DatabaseError)


def test_database_error_can_be_caught_inside_the_function(app):
    @app.mutation
    def recover(ctx):
        doc_id = ctx.db.insert("t", {"n": 1})
        try:
            ctx.db.insert("_system", {})
        except cn.DatabaseError:
            pass
        return doc_id

    assert isinstance(app.mutation("recover"), str)
    assert app.count("t") == 1


@pytest.mark.parametrize("error", [cn.ConvexError("stop"), RuntimeError("boom")], ids=["convex", "other"])
def test_failed_mutation_writes_nothing(app, error):
    existing = app.run(lambda ctx: ctx.db.insert("t", {"n": 0}))

    @app.mutation
    def partial(ctx):
        ctx.db.insert("t", {"n": 1})
        ctx.db.insert("fresh_table", {"n": 2})
        ctx.db.patch(existing, {"n": 100})
        raise error

    tables_before = app.table_names()
    with pytest.raises((cn.ConvexError, cn.ConvexFunctionError)):
        app.mutation("partial")
    assert app.count("t") == 1
    assert app.count("fresh_table") == 0
    assert app.table_names() == tables_before
    assert app.run(lambda ctx: ctx.db.get(existing)["n"]) == 0


def test_failed_mutation_writes_nothing_across_subcalls(app):
    @app.internal_mutation
    def add(ctx, n):
        ctx.db.insert("t", {"n": n})

    @app.mutation
    def outer(ctx):
        ctx.run_mutation("add", {"n": 1})
        ctx.run_mutation("add", {"n": 2})
        raise RuntimeError("late failure")

    with pytest.raises(cn.ConvexFunctionError):
        app.mutation("outer")
    assert app.count("t") == 0


def test_query_cannot_write(app):
    @app.query
    def writer(ctx):
        return ctx.db.insert("t", {})

    with pytest.raises(cn.ConvexFunctionError) as info:
        app.query("writer")
    assert isinstance(info.value.__cause__, AttributeError)
    assert app.count("t") == 0


def test_query_cannot_run_mutation(app):
    @app.internal_mutation
    def m(ctx):
        ctx.db.insert("t", {})

    @app.query
    def q(ctx):
        return ctx.run_mutation("m")

    with pytest.raises(cn.ConvexFunctionError):
        app.query("q")
    assert app.count("t") == 0


def test_error_in_query_is_not_cached(app):
    state = {"fail": True}

    @app.query
    def flaky(ctx):
        if state["fail"]:
            raise RuntimeError("first")
        return "ok"

    with pytest.raises(cn.ConvexFunctionError):
        app.query("flaky")
    state["fail"] = False
    assert app.query("flaky") == "ok"


def test_validation_error_is_function_error_and_not_convex_error(app):
    @app.query(args={"x": v.string()})
    def f(ctx, x):
        return x

    with pytest.raises(cn.ValidationError) as info:
        app.query("f", {"x": 1})
    assert isinstance(info.value, cn.ConvexFunctionError)
    assert not isinstance(info.value, cn.ConvexError)
