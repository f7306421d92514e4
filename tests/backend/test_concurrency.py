"""Function calls from many threads: serializable mutations, consistent queries."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

import convex_notebook as cn


@pytest.fixture
def counter(app):
    @app.mutation
    def bump(ctx):
        doc = ctx.db.query("counter").first()
        if doc is None:
            ctx.db.insert("counter", {"n": 1})
        else:
            ctx.db.patch(doc["_id"], {"n": doc["n"] + 1})

    @app.query
    def value(ctx):
        doc = ctx.db.query("counter").first()
        return doc["n"] if doc else 0

    @app.action
    def bump_twice(ctx):
        ctx.run_mutation("bump")
        ctx.run_mutation("bump")

    return app


def test_concurrent_read_modify_write_mutations_all_count(counter):
    app = counter
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: app.mutation("bump"), range(200)))
    assert app.query("value") == 200


def test_concurrent_actions_and_queries(counter):
    app = counter
    seen: list[float] = []
    lock = threading.Lock()

    def reader(_: int) -> None:
        n = app.query("value")
        with lock:
            seen.append(n)

    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(app.action, "bump_twice") for _ in range(50)]
        futures += [pool.submit(reader, i) for i in range(50)]
        for f in futures:
            f.result()
    assert app.query("value") == 100
    assert all(0 <= n <= 100 for n in seen)


@pytest.mark.slow
def test_many_concurrent_mutations_with_failures(counter):
    app = counter

    @app.mutation
    def bump_or_fail(ctx, i):
        ctx.run_mutation("bump")
        if i % 3 == 0:
            raise cn.ConvexError(i)

    failures = 0
    with ThreadPoolExecutor(16) as pool:
        futures = [pool.submit(app.mutation, "bump_or_fail", {"i": i}) for i in range(600)]
        for f in futures:
            try:
                f.result()
            except cn.ConvexError:
                failures += 1
    assert failures == 200
    assert app.query("value") == 400
