"""The official PyPI `convex` client in the process that serves (a notebook's kernel after
`app.serve(block=False)`): its calls block holding the GIL, so they are carried out by a
helper process (server/pyclient_bridge.py) instead of hanging forever."""

from __future__ import annotations

from typing import Any

import convex  # the official client: a dev dependency
import pytest

import convex_notebook as cn

pytestmark = pytest.mark.interop


def test_calls_errors_and_subscriptions_do_not_hang() -> None:
    app = cn.Backend(echo_logs=False)

    @app.query
    def count(ctx: Any) -> float:
        return float(len(ctx.db.query("t").collect()))

    @app.mutation
    def add(ctx: Any, n: Any) -> Any:
        ctx.db.insert("t", {"n": n})
        return cn.Int64(7)

    @app.mutation
    def refuse(ctx: Any) -> None:
        raise cn.ConvexError({"why": "nope"})

    handle = app.serve(port=0, block=False, print_admin_key=False)
    try:
        client = convex.ConvexClient(handle.url)
        assert client.query("count") == 0
        assert client.mutation("add", {"n": convex.ConvexInt64(3)}) == convex.ConvexInt64(7)
        assert app.run(lambda ctx: ctx.db.query("t").first())["n"] == cn.Int64(3)
        with pytest.raises(convex.ConvexError) as info:
            client.mutation("refuse")
        assert info.value.data == {"why": "nope"}
        with pytest.raises(Exception, match="Could not find"):
            client.query("nope:missing")
        sub = client.subscribe("count")
        values = iter(sub)
        assert next(values) == 1
        app.mutation("add", {"n": 2})  # a write from the kernel itself
        assert next(values) == 2
        sub.unsubscribe()
    finally:
        handle.stop()
        app.close()
