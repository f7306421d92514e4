"""Precise invalidation and the query cache (conformance §3.8)."""

from __future__ import annotations

import pytest

import convex_notebook as cn
from convex_notebook import v


@pytest.fixture
def app():
    schema = cn.define_schema({
        "items": cn.define_table({"tag": v.string(), "n": v.number()}).index("by_tag", ["tag"]).index("by_n", ["n"]),
        "other": cn.define_table({"x": v.number()}),
    })
    backend = cn.Backend(schema=schema, clock=cn.VirtualClock(), echo_logs=False)

    @backend.query
    def get(ctx, id):
        return ctx.db.get(id)

    @backend.query
    def by_tag(ctx, tag):
        return [d["n"] for d in ctx.db.query("items").with_index("by_tag", lambda q: q.eq("tag", tag)).collect()]

    @backend.query
    def first_n_at_least(ctx, n):
        doc = ctx.db.query("items").with_index("by_n", lambda q: q.gte("n", n)).first()
        return doc["n"] if doc else None

    @backend.query
    def whoami(ctx):
        ident = ctx.auth.get_user_identity()
        return ident["subject"] if ident else None

    @backend.query
    def constant(ctx):
        return "same for everyone"

    @backend.query
    def clock(ctx):
        return ctx.now()

    @backend.query
    def fails(ctx):
        raise RuntimeError("boom")

    @backend.mutation
    def add(ctx, tag, n):
        return ctx.db.insert("items", {"tag": tag, "n": n})

    @backend.mutation
    def set_n(ctx, id, n):
        ctx.db.patch(id, {"n": n})

    yield backend
    backend.close()


def reruns(app):
    return app.reactivity.reruns


def test_get_subscription_ignores_inserts_of_other_documents(app):
    a = app.mutation("add", {"tag": "a", "n": 1})
    sub = app.subscribe("get", {"id": a})
    before = reruns(app)
    app.mutation("add", {"tag": "a", "n": 2})
    app.run(lambda ctx: ctx.db.insert("other", {"x": 1}))
    assert reruns(app) == before
    app.mutation("set_n", {"id": a, "n": 5})
    assert reruns(app) == before + 1
    assert sub.value["n"] == 5


def test_index_range_subscription_reruns_only_for_its_keys(app):
    sub = app.subscribe("by_tag", {"tag": "a"})
    assert sub.value == []
    before = reruns(app)
    app.mutation("add", {"tag": "b", "n": 1})
    app.mutation("add", {"tag": "c", "n": 2})
    assert reruns(app) == before, "writes to other index keys must not re-run the query"
    bid = app.mutation("add", {"tag": "a", "n": 3})
    assert reruns(app) == before + 1
    assert sub.value == [3.0]


def test_moving_a_document_out_of_a_range_invalidates_through_its_old_key(app):
    doc = app.mutation("add", {"tag": "a", "n": 1})
    sub = app.subscribe("by_tag", {"tag": "a"})
    assert sub.value == [1.0]
    app.run(lambda ctx: ctx.db.patch(doc, {"tag": "z"}))
    assert sub.value == []


def test_scan_cut_short_watches_only_what_it_read(app):
    for n in (10, 20, 30):
        app.mutation("add", {"tag": "a", "n": n})
    sub = app.subscribe("first_n_at_least", {"n": 15})
    assert sub.value == 20
    before = reruns(app)
    app.mutation("add", {"tag": "a", "n": 40})  # beyond the first hit: not read
    assert reruns(app) == before
    app.mutation("add", {"tag": "a", "n": 16})  # between the bound and the first hit
    assert reruns(app) == before + 1
    assert sub.value == 16


def test_read_of_missing_table_sees_its_first_insert(app):
    @app.query
    def later(ctx):
        return len(ctx.db.query("not_yet").collect())

    sub = app.subscribe("later")
    assert sub.value == 0
    app.run(lambda ctx: ctx.db.insert("not_yet", {"a": 1}))
    assert sub.value == 1


def test_callbacks_fire_once_per_change_not_per_commit(app):
    got = []
    sub = app.subscribe("by_tag", {"tag": "a"}, on_update=got.append)
    doc = app.mutation("add", {"tag": "a", "n": 1})
    app.run(lambda ctx: ctx.db.patch(doc, {"tag": "a"}))  # rewrites the doc: re-run, same result
    app.wait_for_callbacks()
    assert got == [[1.0]]
    assert app.reactivity.unchanged >= 1
    assert sub.version == 2


def test_identical_queries_share_one_execution(app):
    app.mutation("add", {"tag": "a", "n": 1})
    stats = app.reactivity
    executions = stats.executions
    assert app.query("by_tag", {"tag": "a"}) == [1.0]
    assert app.query("by_tag", {"tag": "a"}) == [1.0]
    sub = app.subscribe("by_tag", {"tag": "a"})
    assert stats.executions == executions + 1
    assert stats.cache_hits >= 2
    app.query("by_tag", {"tag": "b"})  # different args: not cached
    assert stats.executions == executions + 2
    sub.unsubscribe()


def test_cached_results_are_private_copies(app):
    app.mutation("add", {"tag": "a", "n": 1})
    first = app.query("by_tag", {"tag": "a"})
    first.append("mutated by the caller")
    assert app.query("by_tag", {"tag": "a"}) == [1.0]
    sub = app.subscribe("by_tag", {"tag": "a"})
    sub.value.append("mutated")
    assert app.query("by_tag", {"tag": "a"}) == [1.0]


def test_writing_other_data_keeps_the_cache(app):
    a = app.mutation("add", {"tag": "a", "n": 1})
    app.query("get", {"id": a})
    hits = app.reactivity.cache_hits
    app.mutation("add", {"tag": "b", "n": 2})
    app.query("get", {"id": a})
    assert app.reactivity.cache_hits == hits + 1
    app.mutation("set_n", {"id": a, "n": 3})
    assert app.query("get", {"id": a})["n"] == 3
    assert app.reactivity.cache_hits == hits + 1


def test_identity_splits_the_cache_only_when_read(app):
    ada, bob = app.with_identity({"subject": "ada"}), app.with_identity({"subject": "bob"})
    assert ada.query("whoami") == "ada"
    assert bob.query("whoami") == "bob"
    assert app.query("whoami") is None
    executions = app.reactivity.executions
    ada.query("constant")
    bob.query("constant")
    app.query("constant")
    assert app.reactivity.executions == executions + 1, "a query that never read auth is shared"


def test_query_reading_time_is_cached_then_expires(app):
    first = app.query("clock")
    app.advance_time(1000)
    assert app.query("clock") == first
    app.advance_time(21 * 60 * 1000)
    assert app.query("clock") > first


def test_errors_are_not_cached(app):
    executions = app.reactivity.executions
    for _ in range(2):
        with pytest.raises(cn.ConvexFunctionError, match="boom"):
            app.query("fails")
    assert app.reactivity.executions == executions + 2


def test_schema_change_reruns_every_live_query(app):
    sub = app.subscribe("by_tag", {"tag": "a"})
    before = reruns(app)
    app.set_schema(app.schema)
    assert reruns(app) == before + 1
    assert sub.error is None


def test_query_cache_can_be_turned_off():
    app = cn.Backend(query_cache_size=0, echo_logs=False)

    @app.query
    def one(ctx):
        return 1

    app.query("one")
    app.query("one")
    assert app.reactivity.executions == 2 and app.reactivity.cache_hits == 0
    sub = app.subscribe("one")
    sub.unsubscribe()
    assert app.subscription_hub.cached_count == 0
    app.close()


def test_close_is_idempotent(tmp_path):
    app = cn.Backend(tmp_path / "x.sqlite3", echo_logs=False)
    app.close()
    app.close()
