"""Calling functions: by path and reference, kinds, visibility, inline runs, async twins, guards."""

from __future__ import annotations

import asyncio

import pytest

import convex_notebook as cn
from convex_notebook import v


@pytest.fixture
def fns(app):
    tasks = app.module("tasks")

    @tasks.query
    def list(ctx):  # noqa: A001
        return [d["text"] for d in ctx.db.query("tasks").collect()]

    @tasks.mutation(args={"text": v.string()})
    def add(ctx, text):
        return ctx.db.insert("tasks", {"text": text})

    @tasks.action
    def shout(ctx, text):
        return text.upper()

    @tasks.internal_mutation
    def purge(ctx):
        n = 0
        for doc in ctx.db.query("tasks").collect():
            ctx.db.delete(doc["_id"])
            n += 1
        return n

    @tasks.internal_query
    def secret(ctx):
        return "s3cret"

    @tasks.internal_action
    def secret_action(ctx):
        return "action secret"

    return {"list": list, "add": add, "shout": shout, "purge": purge, "secret": secret}


def test_call_by_path_and_by_reference(app, fns):
    app.mutation("tasks:add", {"text": "a"})
    app.mutation(fns["add"], {"text": "b"})
    assert app.query("tasks:list") == ["a", "b"]
    assert app.query(fns["list"]) == ["a", "b"]
    assert app.query("tasks:list", {}) == ["a", "b"]
    assert app.action(fns["shout"], {"text": "x"}) == "X"


def test_mutation_returns_the_inserted_id(app, fns):
    doc_id = app.mutation("tasks:add", {"text": "a"})
    assert isinstance(doc_id, str)
    assert app.run(lambda ctx: ctx.db.get(doc_id)["text"]) == "a"


@pytest.mark.parametrize(
    "call, path, actual",
    [
        ("query", "tasks:add", "mutation"),
        ("mutation", "tasks:list", "query"),
        ("action", "tasks:list", "query"),
        ("query", "tasks:shout", "action"),
    ],
)
def test_kind_mismatch(app, fns, call, path, actual):
    with pytest.raises(cn.ConvexFunctionError) as info:
        getattr(app, call)(path, {})
    message = str(info.value)
    assert path in message and actual in message
    assert f"app.{actual}" in message


def test_kind_mismatch_through_reference(app, fns):
    with pytest.raises(cn.ConvexFunctionError, match="is a mutation"):
        app.query(fns["add"], {"text": "x"})


def test_unknown_function_with_hint(app, fns):
    with pytest.raises(cn.FunctionNotFound) as info:
        app.query("tasks:lst")
    assert isinstance(info.value, cn.ConvexFunctionError)
    assert "tasks:lst" in str(info.value)
    assert "Did you mean" in str(info.value) and "tasks:list" in str(info.value)


def test_unknown_function_without_hint(app, fns):
    with pytest.raises(cn.FunctionNotFound, match="zzzzzz") as info:
        app.mutation("zzzzzz:qqqq")
    assert "Did you mean" not in str(info.value)


def test_public_hint_does_not_reveal_internal_functions(app, fns):
    with pytest.raises(cn.FunctionNotFound) as info:
        app.query("tasks:secre")
    assert "tasks:secret" not in str(info.value)


def test_internal_functions_unreachable_from_public_calls(app, fns):
    app.mutation("tasks:add", {"text": "a"})
    with pytest.raises(cn.FunctionNotFound):
        app.mutation("tasks:purge")
    with pytest.raises(cn.FunctionNotFound):
        app.mutation(fns["purge"])
    with pytest.raises(cn.FunctionNotFound):
        app.query("tasks:secret")
    with pytest.raises(cn.FunctionNotFound):
        app.action("tasks:secret_action")
    with pytest.raises(cn.FunctionNotFound):
        app.subscribe("tasks:secret")
    assert app.count("tasks") == 1  # nothing ran


def test_internal_functions_via_run_and_ctx(app, fns):
    app.mutation("tasks:add", {"text": "a"})
    assert app.run("tasks:secret") == "s3cret"
    assert app.run("tasks:secret_action") == "action secret"

    @app.query
    def reveal(ctx):
        return ctx.run_query("tasks:secret")

    @app.action
    def reveal_action(ctx):
        return [ctx.run_query(fns["secret"]), ctx.run_action("tasks:secret_action"), ctx.run_mutation("tasks:purge")]

    assert app.query("reveal") == "s3cret"
    assert app.action("reveal_action") == ["s3cret", "action secret", 1]
    assert app.count("tasks") == 0


def test_run_calls_public_functions_too(app, fns):
    app.run("tasks:add", {"text": "a"})
    assert app.run("tasks:list") == ["a"]
    assert app.run(fns["shout"], {"text": "b"}) == "B"


def test_inline_run_has_a_full_mutation_ctx(app, fns):
    doc_id = app.run(lambda ctx: ctx.db.insert("tasks", {"text": "inline"}))
    assert app.query("tasks:list") == ["inline"]

    def body(ctx):
        assert isinstance(ctx, cn.MutationCtx)
        ctx.db.patch(doc_id, {"text": "patched"})
        other = ctx.db.insert("tasks", {"text": "other"})
        ctx.db.replace(other, {"text": "replaced"})
        inner = ctx.run_mutation("tasks:add", {"text": "via run_mutation"})
        ctx.db.delete(inner)
        return {"list": ctx.run_query("tasks:list"), "secret": ctx.run_query("tasks:secret"), "now": ctx.now()}

    out = app.run(body)
    assert out["list"] == ["patched", "replaced"]
    assert out["secret"] == "s3cret"
    assert out["now"] == app.clock.now_ms()
    assert app.query("tasks:list") == ["patched", "replaced"]


def test_inline_run_rolls_back_on_error(app, fns):
    def body(ctx):
        ctx.db.insert("tasks", {"text": "lost"})
        raise RuntimeError("boom")

    with pytest.raises(cn.ConvexFunctionError, match="boom") as info:
        app.run(body)
    assert isinstance(info.value.__cause__, RuntimeError)
    assert app.count("tasks") == 0


def test_inline_run_returns_none_and_rejects_args(app):
    assert app.run(lambda ctx: None) is None
    assert app.run(lambda ctx: cn.MISSING) is None
    with pytest.raises(TypeError):
        app.run(lambda ctx: None, {"x": 1})
    with pytest.raises(TypeError):
        app.run(42)


def test_inline_run_of_an_async_function_is_a_clear_error(app, fns):
    async def body(ctx):
        ctx.db.insert("tasks", {"text": "never"})

    with pytest.raises(TypeError, match="plain `def`.*action"):
        app.run(body)

    def calls_async(ctx):
        ctx.db.insert("tasks", {"text": "rolled back"})
        return body(ctx)  # a coroutine, never awaited

    with pytest.raises(cn.ConvexFunctionError, match="plain `def`"):
        app.run(calls_async)
    assert app.count("tasks") == 0


def test_inline_run_convex_error_passes_through(app):
    def body(ctx):
        raise cn.ConvexError({"code": 7})

    with pytest.raises(cn.ConvexError) as info:
        app.run(body)
    assert info.value.data == {"code": 7}


def test_async_twins(app, fns):
    async def main():
        first = await app.mutation_async("tasks:add", {"text": "a"})
        await app.mutation_async(fns["add"], {"text": "b"})
        listed = await app.query_async("tasks:list")
        shouted = await app.action_async("tasks:shout", {"text": "c"})
        secret = await app.run_async("tasks:secret")
        inline = await app.run_async(lambda ctx: ctx.db.get(first)["text"])
        both = await asyncio.gather(app.query_async("tasks:list"), app.action_async("tasks:shout", {"text": "d"}))
        return listed, shouted, secret, inline, both

    listed, shouted, secret, inline, both = asyncio.run(main())
    assert listed == ["a", "b"]
    assert shouted == "C"
    assert secret == "s3cret"
    assert inline == "a"
    assert both == [["a", "b"], "D"]


def test_async_twins_raise_the_same_errors(app, fns):
    async def main():
        with pytest.raises(cn.ValidationError):
            await app.mutation_async("tasks:add", {"text": 1})
        with pytest.raises(cn.FunctionNotFound):
            await app.query_async("tasks:secret")

    asyncio.run(main())


def test_async_twins_keep_identity(app):
    @app.query
    def who(ctx):
        ident = ctx.auth.get_user_identity()
        return ident and ident["subject"]

    user = app.with_identity({"subject": "ada"})
    assert asyncio.run(user.query_async("who")) == "ada"
    assert asyncio.run(app.query_async("who")) is None


@pytest.mark.parametrize("api", ["query", "mutation", "action", "run", "run_inline", "subscribe"])
@pytest.mark.parametrize("where", ["query", "mutation"])
def test_calling_app_from_inside_a_transaction_is_a_clear_error(app, fns, api, where):
    def body(ctx):
        if api == "run_inline":
            app.run(lambda c: None)
        elif api == "subscribe":
            app.subscribe("tasks:list")
        else:
            getattr(app, api)("tasks:list" if api != "mutation" else "tasks:add", {"text": "x"} if api == "mutation" else {})

    getattr(app, where)(name=f"nested_{where}_{api}")(body)
    with pytest.raises(cn.ConvexFunctionError) as info:
        getattr(app, where)(f"nested_{where}_{api}")
    message = str(info.value)
    assert "inside" in message
    assert app.count("tasks") == 0


def test_calling_app_from_inline_run_is_a_clear_error(app, fns):
    with pytest.raises(cn.ConvexFunctionError, match="ctx.run_"):
        app.run(lambda ctx: app.query("tasks:list"))


def test_guard_does_not_leak_after_a_call(app, fns):
    @app.query
    def bad(ctx):
        return app.query("tasks:list")

    with pytest.raises(cn.ConvexFunctionError):
        app.query("bad")
    # The guard was reset: ordinary calls work again.
    app.mutation("tasks:add", {"text": "ok"})
    assert app.query("tasks:list") == ["ok"]


def test_actions_may_call_the_app_directly(app, fns):
    @app.action
    def direct(ctx):
        app.mutation("tasks:add", {"text": "from action"})
        return app.query("tasks:list")

    assert app.action("direct") == ["from action"]


def test_invoke_reports_instead_of_raising(app, fns):
    @app.mutation
    def noisy(ctx, fail=False):
        print("noisy ran")
        if fail:
            raise cn.ConvexError({"why": "asked"})
        return ctx.db.insert("tasks", {"text": "n"})

    ok = app.invoke("noisy", {}, kind="mutation")
    assert ok.error is None and ok.kind == "mutation" and ok.path == "noisy"
    assert isinstance(ok.value, str) and ok.log_lines == ["[LOG] noisy ran"]
    assert ok.ts > 0
    failed = app.invoke("noisy", {"fail": True})
    assert isinstance(failed.error, cn.ConvexError) and failed.error.data == {"why": "asked"}
    assert failed.log_lines == ["[LOG] noisy ran"]
    assert failed.ts >= ok.ts
    missing = app.invoke("tasks:secret")
    assert missing.kind is None and isinstance(missing.error, cn.FunctionNotFound)
    assert app.invoke("tasks:secret", admin=True).value == "s3cret"
    wrong_kind = app.invoke("noisy", {}, kind="query")
    assert isinstance(wrong_kind.error, cn.ConvexFunctionError)
    assert app.count("tasks") == 1
