"""Actions: sync and async handlers, no ctx.db, ctx.run_* each in its own transaction."""

from __future__ import annotations

import asyncio
import threading

import pytest

import convex_notebook as cn
from convex_notebook import v


@pytest.fixture
def fns(app):
    @app.internal_mutation(args={"text": v.string()})
    def add(ctx, text):
        return ctx.db.insert("log", {"text": text})

    @app.internal_query
    def texts(ctx):
        return [d["text"] for d in ctx.db.query("log").collect()]

    @app.internal_action(args={"depth": v.number()})
    def recurse(ctx, depth):
        if depth <= 1:
            return {"called": 1}
        return {"called": 1 + ctx.run_action("recurse", {"depth": depth - 1})["called"]}

    return {"add": add, "texts": texts}


def test_sync_action_runs_query_mutation_action(app, fns):
    @app.action(args={"text": v.string()})
    def workflow(ctx, text):
        doc_id = ctx.run_mutation("add", {"text": text})
        seen = ctx.run_query(fns["texts"])
        nested = ctx.run_action("recurse", {"depth": 2})
        return {"id_is_str": isinstance(doc_id, str), "seen": seen, "nested": nested}

    assert app.action("workflow", {"text": "hello"}) == {"id_is_str": True, "seen": ["hello"], "nested": {"called": 2}}
    assert app.run("texts") == ["hello"]


def test_async_action_awaits_ctx_run(app, fns):
    @app.action
    async def workflow(ctx):
        await ctx.run_mutation("add", {"text": "a"})
        await asyncio.sleep(0)
        await ctx.run_mutation(fns["add"], {"text": "b"})
        nested = await ctx.run_action("recurse", {"depth": 3})
        return {"seen": await ctx.run_query("texts"), "nested": nested}

    assert app.action("workflow") == {"seen": ["a", "b"], "nested": {"called": 3}}


def test_async_action_gather(app, fns):
    @app.action
    async def fan_out(ctx):
        ids = await asyncio.gather(*(ctx.run_mutation("add", {"text": t}) for t in "ABC"))
        return {"ids": ids, "texts": await ctx.run_query("texts")}

    out = app.action("fan_out")
    assert len(set(out["ids"])) == 3
    assert sorted(out["texts"]) == ["A", "B", "C"]
    assert app.count("log") == 3


def test_async_action_gather_of_queries_and_actions(app, fns):
    app.run("add", {"text": "x"})

    @app.action
    async def mixed(ctx):
        return await asyncio.gather(
            ctx.run_query("texts"), ctx.run_action("recurse", {"depth": 2}), ctx.run_query("texts")
        )

    assert app.action("mixed") == [["x"], {"called": 2}, ["x"]]


def test_async_action_calling_async_action(app, fns):
    @app.internal_action
    async def inner(ctx, n):
        await asyncio.sleep(0)
        return n * 2

    @app.action
    async def outer(ctx):
        return await asyncio.gather(*(ctx.run_action("inner", {"n": i}) for i in range(3)))

    @app.action
    def sync_outer(ctx):
        return ctx.run_action("inner", {"n": 5})

    assert app.action("outer") == [0, 2, 4]
    assert app.action("sync_outer") == 10


def test_sync_action_run_methods_return_values_not_awaitables(app, fns):
    @app.action
    def kinds(ctx):
        return type(ctx.run_query("texts")).__name__

    assert app.action("kinds") == "list"


@pytest.mark.parametrize("is_async", [False, True])
def test_actions_have_no_db(app, is_async):
    if is_async:
        @app.action(name="uses_db")
        async def uses_db_async(ctx):
            return ctx.db.query("t").collect()
    else:
        @app.action
        def uses_db(ctx):
            return ctx.db.query("t").collect()

    with pytest.raises(cn.ConvexFunctionError) as info:
        app.action("uses_db")
    message = str(info.value)
    assert "ctx.db" in message and "run_query" in message


def test_action_ctx_has_no_db_attribute(app):
    @app.action
    def probe(ctx):
        return [hasattr(ctx, "db"), isinstance(ctx, cn.ActionCtx)]

    assert app.action("probe") == [False, True]


@pytest.mark.parametrize("is_async", [False, True])
def test_each_run_mutation_is_its_own_transaction(app, fns, is_async):
    if is_async:
        @app.action(name="fails_late")
        async def fails_late_async(ctx):
            await ctx.run_mutation("add", {"text": "committed"})
            raise RuntimeError("action failed afterwards")
    else:
        @app.action
        def fails_late(ctx):
            ctx.run_mutation("add", {"text": "committed"})
            raise RuntimeError("action failed afterwards")

    with pytest.raises(cn.ConvexFunctionError, match="afterwards"):
        app.action("fails_late")
    assert app.run("texts") == ["committed"]


def test_failed_run_mutation_in_action_rolls_back_only_itself(app, fns):
    @app.internal_mutation
    def add_then_fail(ctx):
        ctx.db.insert("log", {"text": "rolled back"})
        raise RuntimeError("inner")

    @app.action
    def act(ctx):
        ctx.run_mutation("add", {"text": "first"})
        try:
            ctx.run_mutation("add_then_fail")
        except cn.ConvexFunctionError:
            pass
        ctx.run_mutation("add", {"text": "third"})
        return ctx.run_query("texts")

    assert app.action("act") == ["first", "third"]


def test_action_sees_each_committed_mutation(app, fns):
    @app.action
    def act(ctx):
        counts = []
        for t in "abc":
            ctx.run_mutation("add", {"text": t})
            counts.append(len(ctx.run_query("texts")))
        return counts

    assert app.action("act") == [1, 2, 3]


def test_recursive_run_action(app, fns):
    assert app.run("recurse", {"depth": 5}) == {"called": 5}


def test_plain_helper_taking_action_ctx(app, fns):
    def helper(ctx, text):
        return ctx.run_mutation("add", {"text": text})

    @app.action
    def act(ctx):
        helper(ctx, "via helper")
        return ctx.run_query("texts")

    assert app.action("act") == ["via helper"]


def test_action_now_and_identity(app):
    @app.internal_query
    def whoami(ctx):
        ident = ctx.auth.get_user_identity()
        return ident["subject"] if ident else None

    @app.action
    async def act(ctx):
        ident = ctx.auth.get_user_identity()
        return {"now": ctx.now(), "subject": ident and ident["subject"], "via_query": await ctx.run_query("whoami")}

    start = app.clock.now_ms()
    assert app.action("act") == {"now": start, "subject": None, "via_query": None}
    assert app.with_identity({"subject": "u1"}).action("act") == {"now": start, "subject": "u1", "via_query": "u1"}


def test_concurrent_sync_actions_run_in_parallel(app, fns):
    # Two sync actions wait for each other: this only finishes if they run at the same time.
    barrier = threading.Barrier(2, timeout=30)

    @app.action
    def meet(ctx, text):
        ctx.run_mutation("add", {"text": text})
        barrier.wait()
        return text

    results: dict[str, str] = {}
    threads = [threading.Thread(target=lambda t=t: results.__setitem__(t, app.action("meet", {"text": t}))) for t in "xy"]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert results == {"x": "x", "y": "y"}
    assert sorted(app.run("texts")) == ["x", "y"]


def test_concurrent_async_actions_interleave(app, fns):
    # Each async action waits for the other's mutation: they must run concurrently.
    @app.action
    async def ping(ctx, mine, other):
        await ctx.run_mutation("add", {"text": mine})
        for _ in range(2000):
            if other in await ctx.run_query("texts"):
                return "saw " + other
            await asyncio.sleep(0.005)
        return "timed out"

    async def main():
        return await asyncio.gather(
            app.action_async("ping", {"mine": "a", "other": "b"}),
            app.action_async("ping", {"mine": "b", "other": "a"}),
        )

    assert asyncio.run(main()) == ["saw b", "saw a"]


def test_action_returns_and_args_validation(app):
    @app.action(args={"n": v.int64()}, returns=v.int64())
    async def inc(ctx, n):
        assert isinstance(n, cn.Int64)
        return n + 1

    out = app.action("inc", {"n": 1})
    assert out == cn.Int64(2) and isinstance(out, cn.Int64)


def test_blocking_app_calls_inside_async_action_do_not_deadlock(app, fns):
    @app.internal_action
    async def inner(ctx, n):
        await asyncio.sleep(0)
        return n + 1

    @app.action
    def sync_middle(ctx):
        return ctx.run_action("inner", {"n": 10})

    @app.action
    async def outer(ctx):
        # Blocking calls instead of `await ctx.run_*`: they must still complete.
        return [app.run("inner", {"n": 1}), app.action("sync_middle"), app.run("texts")]

    result: dict[str, object] = {}
    worker = threading.Thread(target=lambda: result.setdefault("value", app.action("outer")), daemon=True)
    worker.start()
    worker.join(120)
    assert not worker.is_alive(), "app.action() inside an async action deadlocked"
    assert result["value"] == [2, 11, []]


def test_identity_views_share_the_action_loop():
    app = cn.Backend(echo_logs=False)

    @app.action
    async def where(ctx):
        return threading.current_thread().name

    views = [app.with_identity({"subject": str(i)}) for i in range(3)]  # before any loop exists
    assert {view.action("where") for view in views} | {app.action("where")} == {"convex-actions"}
    loop = app._ensure_action_loop()
    assert all(view._ensure_action_loop() is loop for view in views)
    app.close()  # stops the one loop every view used
    assert views[0]._ensure_action_loop() is not loop  # a fresh one after close
    app._actions.stop()
