"""Function limits (API.md §11): user-code time, argument/return/HTTP response sizes, the
configuration through cn.Backend(limits=...), and Convex's warnings near transaction limits.

No timing assertions: a function sleeps or spins past a (small) limit and the test checks the
error and what was written, never how long anything took."""

from __future__ import annotations

import asyncio
import time

import pytest

import convex_notebook as cn

MiB = 1024 * 1024


def test_defaults_are_convex_s() -> None:
    limits = cn.Limits()
    assert (limits.query_seconds, limits.action_seconds) == (1.0, 600.0)
    assert (limits.argument_bytes, limits.return_bytes, limits.http_response_bytes) == (16 * MiB, 16 * MiB, 20 * MiB)
    assert cn.Backend().limits == limits


def test_a_query_sleeping_past_one_second_fails() -> None:
    app = cn.Backend(echo_logs=False)

    @app.query
    def slow(ctx):
        time.sleep(1.3)
        return "done"

    with pytest.raises(cn.LimitError, match=r"query slow timed out.*1 s of user code.*query_seconds"):
        app.query("slow")
    assert isinstance(cn.LimitError("x"), cn.ConvexFunctionError)
    app.close()


def test_a_spinning_mutation_is_interrupted_and_writes_nothing() -> None:
    app = cn.Backend(echo_logs=False, limits=cn.Limits(query_seconds=0.2))

    @app.mutation
    def spin(ctx):
        ctx.db.insert("log", {"n": 1})
        while True:
            try:
                sum(range(100))
            except Exception:  # a handler's `except Exception` does not swallow the timeout
                pass

    with pytest.raises(cn.LimitError, match="mutation spin timed out.*0.2 s"):
        app.mutation("spin")
    assert app.count("log") == 0 and "log" not in app.table_names()
    app.run(lambda ctx: ctx.db.insert("log", {"n": 2}))  # the backend still works
    assert app.count("log") == 1
    app.close()


def test_live_queries_are_limited_too() -> None:
    app = cn.Backend(echo_logs=False, limits={"query_seconds": 0.2})

    @app.query
    def spin(ctx):
        while True:
            pass

    sub = app.subscribe("spin")
    assert isinstance(sub.error, cn.LimitError) and sub.value is None
    app.close()


def test_database_time_is_not_user_code() -> None:
    """The budget counts user code only: time inside ctx.db calls is left out (as Convex's)."""
    app = cn.Backend(echo_logs=False, limits=cn.Limits(query_seconds=0.3))
    app.run(lambda ctx: [ctx.db.insert("t", {"i": i}) for i in range(10)])
    from convex_notebook.backend import limits as limits_module

    real = limits_module.db_time

    # A slow "database": each ctx.db call takes 0.1 s, 10 of them, far past 0.3 s in total.
    from contextlib import contextmanager

    @contextmanager
    def slow_db():
        with real():
            time.sleep(0.1)
            yield

    @app.query
    def reads(ctx):
        return sum(1 for _ in ctx.db.query("t").collect()) + sum(
            1 for d in ctx.db.query("t").take(10) if ctx.db.get(d["_id"]) is not None
        )

    import convex_notebook.backend.context as context_module

    context_module.db_time = limits_module.db_time = slow_db  # ctx.db.get and the query chain
    try:
        assert app.query("reads") == 20  # 12 database calls of 0.1 s: no timeout
    finally:
        context_module.db_time = limits_module.db_time = real
    app.close()


def test_action_time_limit_sync_and_async() -> None:
    app = cn.Backend(echo_logs=False, limits=cn.Limits(action_seconds=0.2))

    @app.mutation
    def note(ctx):
        ctx.db.insert("notes", {})

    @app.action
    def slow(ctx):
        ctx.run_mutation("note")
        while True:
            time.sleep(0.05)

    @app.action
    async def slow_async(ctx):
        await asyncio.sleep(5)

    with pytest.raises(cn.LimitError, match="action slow timed out.*action_seconds"):
        app.action("slow")
    with pytest.raises(cn.LimitError, match="action slow_async timed out.*action_seconds"):
        app.action("slow_async")
    assert app.count("notes") == 1  # an action's committed mutations stay (it is no transaction)
    app.close()


def test_arguments_over_the_limit_are_refused(app: cn.Backend) -> None:
    @app.mutation
    def store(ctx, blob):
        ctx.db.insert("t", {"n": len(blob)})

    with pytest.raises(cn.LimitError, match=r"Arguments of store are too large.*16 MiB.*argument_bytes"):
        app.mutation("store", {"blob": "x" * (17 * MiB)})
    assert app.count("t") == 0


def test_return_values_over_the_limit_fail(app: cn.Backend) -> None:
    @app.query
    def big(ctx):
        return "x" * (17 * MiB)

    @app.mutation
    def big_write(ctx):
        ctx.db.insert("t", {})
        return ["y" * MiB] * 17

    with pytest.raises(cn.LimitError, match="return value of big are too large"):
        app.query("big")
    with pytest.raises(cn.LimitError, match="return_bytes"):
        app.mutation("big_write")
    assert app.count("t") == 0  # the mutation failed: nothing written


def test_limits_are_configurable() -> None:
    app = cn.Backend(echo_logs=False, limits=cn.Limits(argument_bytes=100, return_bytes=None, query_seconds=None))

    @app.query
    def echo(ctx, s):
        return s * 1000

    with pytest.raises(cn.LimitError, match="100 bytes"):
        app.query("echo", {"s": "x" * 200})
    assert len(app.query("echo", {"s": "ab"})) == 2000  # return limit off
    app.close()
    with pytest.raises(TypeError, match="Unknown limits"):
        cn.Backend(limits={"query_secs": 1})
    with pytest.raises(ValueError, match="positive"):
        cn.Limits(query_seconds=-1)
    legacy = cn.Backend(limits=cn.TransactionLimits(documents_written=1))  # still accepted
    assert legacy.limits.transaction.documents_written == 1
    legacy.close()


def test_http_action_response_limit(app: cn.Backend) -> None:
    small = cn.Backend(echo_logs=False, limits=cn.Limits(http_response_bytes=1000))

    @small.http.route(path="/big", method="GET")
    def big(ctx, request):
        return cn.HttpResponse(b"x" * 1001)

    @small.http.route(path="/ok", method="GET")
    def ok(ctx, request):
        return cn.HttpResponse(b"x" * 1000)

    response = small.fetch("/big")
    assert response.status == 500 and "http_response_bytes" in response.text()
    assert small.fetch("/ok").status == 200
    small.close()


def test_near_limit_warnings_in_the_call_s_log_lines() -> None:
    app = cn.Backend(echo_logs=False, limits=cn.Limits(transaction=cn.TransactionLimits(documents_read=10, documents_written=10)))

    @app.mutation
    def fill(ctx, n):
        for i in range(int(n)):
            ctx.db.insert("t", {"i": i})

    @app.query
    def scan(ctx):
        return len(ctx.db.query("t").collect())

    app.mutation("fill", {"n": 1})
    assert app.logs.tail(1)[0].lines == []
    app.mutation("fill", {"n": 8})  # Convex warns only past 80% (8 of 10 is not)
    assert app.logs.tail(1)[0].lines == []
    app.run(lambda ctx: [ctx.db.delete(d["_id"]) for d in ctx.db.query("t").take(8)])
    app.mutation("fill", {"n": 9})
    assert app.logs.tail(1)[0].lines == [
        "[WARN] Many writes in a single function execution (actual: 9, limit: 10)."
    ]
    assert app.query("scan") == 10
    assert any(line.startswith("[WARN] Many documents read in a single function execution (actual: 10, limit: 10)")
               for line in app.logs.tail(1)[0].lines)
    app.close()


def test_an_action_timing_out_between_nested_calls() -> None:
    """The action's clock runs through its nested calls; it stops the action, not a call."""
    app = cn.Backend(echo_logs=False, limits=cn.Limits(action_seconds=0.3))

    @app.query
    def tick(ctx):
        return 1

    @app.action
    def busy(ctx):
        while True:
            ctx.run_query("tick")

    with pytest.raises(cn.LimitError, match="action busy timed out"):
        app.action("busy")
    assert app.query("tick") == 1  # the backend is fine afterwards
    app.close()
