"""Subscriptions: delivery order, consistency, threads, asyncio, pagination, redefinition, memory."""

from __future__ import annotations

import asyncio
import gc
import threading
import weakref

import pytest

import convex_notebook as cn
from convex_notebook import v


@pytest.fixture
def app():
    schema = cn.define_schema({
        "counters": cn.define_table({"name": v.string(), "value": v.number()}).index("by_name", ["name"]),
        "items": cn.define_table({"n": v.number()}).index("by_n", ["n"]),
    })
    backend = cn.Backend(schema=schema, echo_logs=False)

    @backend.query
    def counter(ctx, name):
        doc = ctx.db.query("counters").with_index("by_name", lambda q: q.eq("name", name)).unique()
        return doc["value"] if doc else None

    @backend.mutation
    def create(ctx, name, value):
        return ctx.db.insert("counters", {"name": name, "value": value})

    @backend.mutation
    def bump(ctx, name, by=1):
        doc = ctx.db.query("counters").with_index("by_name", lambda q: q.eq("name", name)).unique()
        ctx.db.patch(doc["_id"], {"value": doc["value"] + by})

    @backend.mutation
    def transfer(ctx, source, target, amount):
        bump(ctx, source, -amount)
        bump(ctx, target, amount)

    @backend.query
    def page(ctx, opts):
        return ctx.db.query("items").with_index("by_n").paginate(opts)

    yield backend
    backend.close()


def test_value_is_current_when_the_mutation_returns(app):
    app.mutation("create", {"name": "c", "value": 0})
    sub = app.subscribe("counter", {"name": "c"})
    for i in range(1, 6):
        app.mutation("bump", {"name": "c"})
        assert sub.value == i


def test_eight_writer_threads_lose_and_duplicate_nothing(app):
    app.mutation("create", {"name": "c", "value": 0})
    seen: list[float] = []
    sub = app.subscribe("counter", {"name": "c"}, on_update=seen.append)

    def writer():
        for _ in range(50):
            app.mutation("bump", {"name": "c"})

    threads = [threading.Thread(target=writer) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert app.wait_for_callbacks()
    assert sub.value == 400
    assert seen[-1] == 400
    # Commit order, no duplicates: coalescing may skip values, never repeat or reorder them.
    assert seen == sorted(set(seen))
    assert app.reactivity.notifications == 400


def test_two_subscriptions_reflect_the_same_snapshot(app):
    app.mutation("create", {"name": "a", "value": 100})
    app.mutation("create", {"name": "b", "value": 0})
    records: dict[str, dict[int, float]] = {"a": {}, "b": {}}
    subs = {}
    for name in "ab":
        subs[name] = app.subscribe(
            "counter", {"name": name},
            on_update=lambda value, name=name: records[name].__setitem__(subs[name].ts, value),
        )
    stop = threading.Event()
    violations = []

    def reader():  # reads both values under no lock: each pair must add up when ts match
        while not stop.is_set():
            a, b = subs["a"], subs["b"]
            ta, va, tb, vb = a.ts, a.value, b.ts, b.value
            if ta == tb and a.ts == ta and b.ts == tb and va + vb != 100:
                violations.append((ta, va, vb))

    t = threading.Thread(target=reader)
    t.start()
    for _ in range(100):
        app.mutation("transfer", {"source": "a", "target": "b", "amount": 1})
        assert subs["a"].value + subs["b"].value == 100
        assert subs["a"].ts == subs["b"].ts
    stop.set()
    t.join()
    app.wait_for_callbacks()
    common = set(records["a"]) & set(records["b"])
    assert common, "both subscriptions were delivered at shared timestamps"
    for ts in common:
        assert records["a"][ts] + records["b"][ts] == 100
    assert not violations


def test_slow_callback_does_not_stall_commits_and_is_coalesced(app):
    app.mutation("create", {"name": "c", "value": 0})
    release = threading.Event()
    calls: list[float] = []

    def slow(value):
        calls.append(value)
        release.wait(10)

    sub = app.subscribe("counter", {"name": "c"}, on_update=slow)
    for _ in range(30):  # all commit while the first callback is still blocked
        app.mutation("bump", {"name": "c"})
    assert sub.value == 30
    assert len(calls) <= 1
    release.set()
    assert app.wait_for_callbacks()
    assert calls[-1] == 30
    assert len(calls) <= 3, f"updates to a slow subscriber are coalesced, got {calls}"


def test_blocking_iteration_from_a_thread(app):
    app.mutation("create", {"name": "c", "value": 0})
    sub = app.subscribe("counter", {"name": "c"})
    received: list[float] = []
    ready = threading.Event()

    def consume():
        for value in sub:
            received.append(value)
            ready.set()
            if value >= 3:
                break

    t = threading.Thread(target=consume)
    t.start()
    assert ready.wait(5)
    for _ in range(3):
        app.mutation("bump", {"name": "c"})
    t.join(10)
    assert not t.is_alive()
    assert received[0] == 0 and received[-1] == 3
    assert received == sorted(set(received))


def test_iteration_ends_when_unsubscribed(app):
    app.mutation("create", {"name": "c", "value": 0})
    sub = app.subscribe("counter", {"name": "c"})
    it = iter(sub)
    assert next(it) == 0
    threading.Timer(0.05, sub.unsubscribe).start()
    with pytest.raises(StopIteration):
        next(it)


def test_async_for_receives_updates(app):
    app.mutation("create", {"name": "c", "value": 0})

    async def main():
        sub = app.subscribe("counter", {"name": "c"})
        values = []
        async for value in sub:
            values.append(value)
            if value == 0:
                await app.mutation_async("bump", {"name": "c", "by": 5})
            elif value == 5:
                break
        sub.unsubscribe()
        return values

    assert asyncio.run(asyncio.wait_for(main(), 10)) == [0, 5]


def test_writers_everywhere_use_one_invalidation_path(app):
    app.mutation("create", {"name": "c", "value": 0})
    sub = app.subscribe("counter", {"name": "c"})

    @app.internal_mutation
    def bump_twice(ctx, name):
        ctx.run_mutation("bump", {"name": name})
        ctx.run_mutation("bump", {"name": name})

    @app.action
    def act(ctx, name):
        ctx.run_mutation("bump", {"name": name})

    @app.action
    async def act_async(ctx, name):
        await ctx.run_mutation("bump", {"name": name})

    app.run("bump_twice", {"name": "c"})
    assert sub.value == 2
    app.action("act", {"name": "c"})
    assert sub.value == 3
    app.action("act_async", {"name": "c"})
    assert sub.value == 4
    doc_id = app.query("counter", {"name": "c"})
    app.run(lambda ctx: bump(ctx, "c", 10))
    assert sub.value == 14 and doc_id == 4


def bump(ctx, name, by):
    doc = ctx.db.query("counters").with_index("by_name", lambda q: q.eq("name", name)).unique()
    ctx.db.patch(doc["_id"], {"value": doc["value"] + by})


def test_redefining_a_function_reruns_its_subscriptions(app):
    @app.query(name="double")
    def double_v1(ctx, name):
        return app_counter(ctx, name) * 2

    app.mutation("create", {"name": "c", "value": 3})
    got = []
    sub = app.subscribe("double", {"name": "c"}, on_update=got.append)
    assert sub.value == 6

    @app.query(name="double")
    def double_v2(ctx, name):
        return app_counter(ctx, name) * 3

    assert sub.value == 9
    app.wait_for_callbacks()
    assert got == [9]


def test_redefining_a_subquery_reruns_the_caller(app):
    @app.query
    def inner(ctx):
        return 1

    @app.query
    def outer(ctx):
        return ctx.run_query("inner") + 100

    sub = app.subscribe("outer")
    assert sub.value == 101

    @app.query(name="inner")
    def inner_v2(ctx):
        return 2

    assert sub.value == 102


def app_counter(ctx, name):
    doc = ctx.db.query("counters").with_index("by_name", lambda q: q.eq("name", name)).unique()
    return doc["value"] if doc else 0


def test_failing_query_delivers_its_error_and_recovers(app):
    @app.query
    def strict(ctx, name):
        value = app_counter(ctx, name)
        if value < 0:
            raise cn.ConvexError({"negative": value})
        return value

    app.mutation("create", {"name": "c", "value": 1})
    errors, values = [], []
    sub = app.subscribe("strict", {"name": "c"}, on_update=values.append, on_error=errors.append)
    app.mutation("bump", {"name": "c", "by": -5})
    assert isinstance(sub.error, cn.ConvexError) and sub.error.data == {"negative": -4}
    assert sub.value == 1, "the last good value stays readable"
    with pytest.raises(cn.ConvexError):
        next(iter(sub))
    app.wait_for_callbacks()  # otherwise the error and the recovery may be coalesced
    app.mutation("bump", {"name": "c", "by": 10})
    assert sub.error is None and sub.value == 6
    app.wait_for_callbacks()
    assert [e.data for e in errors] == [{"negative": -4}]
    assert values == [6]


def test_subscribing_validates_arguments_and_hides_internal_functions(app):
    @app.query(args={"name": v.string()})
    def typed(ctx, name):
        return name

    @app.internal_query
    def secret(ctx):
        return 1

    with pytest.raises(cn.ValidationError):
        app.subscribe("typed", {"name": 1})
    with pytest.raises(cn.ConvexFunctionError, match="Could not find public function"):
        app.subscribe("secret")


def test_paginated_subscription_keeps_its_end_and_grows_or_shrinks(app):
    ids = {n: app.run(lambda ctx, n=n: ctx.db.insert("items", {"n": n})) for n in (0, 10, 20, 30, 40)}
    sub = app.subscribe("page", {"opts": {"numItems": 3, "cursor": None}})
    first = sub.value
    assert [d["n"] for d in first["page"]] == [0, 10, 20]
    assert first["isDone"] is False
    before = app.reactivity.reruns
    app.run(lambda ctx: ctx.db.insert("items", {"n": 35}))  # after the pinned end
    assert app.reactivity.reruns == before, "a write beyond the page's end must not re-run it"
    app.run(lambda ctx: ctx.db.insert("items", {"n": 5}))  # inside the page: it grows
    assert [d["n"] for d in sub.value["page"]] == [0, 5, 10, 20]
    assert sub.value["continueCursor"] == first["continueCursor"]
    app.run(lambda ctx: ctx.db.delete(ids[10]))  # shrinks
    assert [d["n"] for d in sub.value["page"]] == [0, 5, 20]
    # The next page starts where the live one ends.
    nxt = app.query("page", {"opts": {"numItems": 10, "cursor": first["continueCursor"]}})
    assert [d["n"] for d in nxt["page"]] == [30, 35, 40]


def test_last_page_grows_at_the_end(app):
    app.run(lambda ctx: ctx.db.insert("items", {"n": 1}))
    sub = app.subscribe("page", {"opts": {"numItems": 5, "cursor": None}})
    assert sub.value["isDone"] is True and len(sub.value["page"]) == 1
    app.run(lambda ctx: ctx.db.insert("items", {"n": 2}))
    assert [d["n"] for d in sub.value["page"]] == [1, 2]
    assert sub.value["isDone"] is True


def test_unsubscribe_releases_everything(app):
    app.mutation("create", {"name": "c", "value": 0})
    hub = app.subscription_hub
    hub.cache_size = 8
    subs = [app.subscribe("counter", {"name": f"n{i}"}, on_update=lambda v: None) for i in range(500)]
    assert hub.live_count == 500 and hub.subscription_count == 500
    refs = [weakref.ref(s) for s in subs]
    for s in subs:
        s.unsubscribe()
    del subs, s
    gc.collect()
    assert hub.live_count == 0 and hub.subscription_count == 0
    assert hub.watched_owners == hub.cached_count <= 8
    assert all(r() is None for r in refs)
    # Still works afterwards, and a late unsubscribe is harmless.
    sub = app.subscribe("counter", {"name": "c"})
    sub.unsubscribe()
    sub.unsubscribe()


def test_subscribers_to_the_same_query_share_one_rerun(app):
    app.mutation("create", {"name": "c", "value": 0})
    subs = [app.subscribe("counter", {"name": "c"}) for _ in range(50)]
    before = app.reactivity.reruns
    app.mutation("bump", {"name": "c"})
    assert app.reactivity.reruns == before + 1
    assert all(s.value == 1 for s in subs)
    with subs[0]:
        pass
    assert subs[0].closed and not subs[1].closed
