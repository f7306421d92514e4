"""API.md §7: queries read one consistent snapshot and never wait for a writer; mutations on
disjoint data do not wait for each other. Shown by ordering (events), never by timing."""

from __future__ import annotations

import threading

import pytest

import convex_notebook as cn
from convex_notebook import v

from mvcc_helpers import HOLD, WAIT, Worker


def schema() -> cn.SchemaDefinition:
    return cn.define_schema({
        "items": cn.define_table({"name": v.string(), "n": v.number()}).index("by_name", ["name"]),
    })


@pytest.fixture(params=["memory", "file"])
def app(request, tmp_path):
    path = None if request.param == "memory" else tmp_path / "app.sqlite3"
    backend = cn.Backend(path, schema=schema(), echo_logs=False, query_cache_size=0)
    yield backend
    backend.close()


def test_a_mutation_commits_while_a_query_waits_between_reads_and_the_query_keeps_its_snapshot(app):
    target = app.run(lambda ctx: ctx.db.insert("items", {"name": "a", "n": 1}))
    app.run(lambda ctx: ctx.db.insert("items", {"name": "b", "n": 2}))
    paused, resume = threading.Event(), threading.Event()

    def read(ctx):
        return {
            "get": ctx.db.get(target)["n"],
            "range": [[d["name"], d["n"]] for d in ctx.db.query("items").with_index("by_name").collect()],
            "scan": ctx.db.query("items").collect().__len__(),
        }

    @app.query
    def two_reads(ctx):
        first = read(ctx)
        paused.set()
        resumed = resume.wait(HOLD)
        second = read(ctx)
        return {"first": first, "second": second, "resumed": resumed}

    @app.mutation
    def change(ctx):
        ctx.db.patch(target, {"n": 100})
        ctx.db.insert("items", {"name": "c", "n": 3})
        return "committed"

    query = Worker(lambda: app.query("two_reads"), "query")
    try:
        assert paused.wait(WAIT), "the query never reached its pause"
        mutation = Worker(lambda: app.mutation("change"), "mutation")
        # The mutation must not wait for the paused query (no lock held across user code).
        mutation_finished_first = mutation.done.wait(WAIT)
        query_still_paused = not query.done.is_set()
    finally:
        resume.set()
    assert mutation_finished_first, "the mutation waited for the query"
    assert query_still_paused
    result = query.result()
    assert mutation.result() == "committed"
    assert result["resumed"]
    # The second read is the same snapshot as the first: the commit in between is invisible.
    assert result["first"] == {"get": 1, "range": [["a", 1], ["b", 2]], "scan": 2}
    assert result["second"] == result["first"]
    # A query started now sees the commit.
    assert app.run(lambda ctx: read(ctx)) == {"get": 100, "range": [["a", 100], ["b", 2], ["c", 3]], "scan": 3}


def test_mutations_on_disjoint_data_overlap_and_both_commit(app):
    a = app.run(lambda ctx: ctx.db.insert("items", {"name": "a", "n": 0}))
    b = app.run(lambda ctx: ctx.db.insert("items", {"name": "b", "n": 0}))
    inside_a, release_a = threading.Event(), threading.Event()
    runs = {"A": 0, "B": 0}

    @app.mutation
    def mutate_a(ctx):
        runs["A"] += 1
        doc = ctx.db.get(a)
        ctx.db.patch(a, {"n": doc["n"] + 1})
        inside_a.set()
        return release_a.wait(HOLD)

    @app.mutation
    def mutate_b(ctx):
        runs["B"] += 1
        doc = ctx.db.get(b)
        ctx.db.patch(b, {"n": doc["n"] + 10})
        return "B"

    first = Worker(lambda: app.mutation("mutate_a"), "A")
    try:
        assert inside_a.wait(WAIT), "mutation A never started"
        second = Worker(lambda: app.mutation("mutate_b"), "B")
        b_finished_while_a_waited = second.done.wait(WAIT)
        a_still_running = not first.done.is_set()
    finally:
        release_a.set()
    assert b_finished_while_a_waited, "mutation B waited for mutation A (disjoint data)"
    assert a_still_running
    assert first.result() is True
    assert second.result() == "B"
    # Both committed; neither was re-run (B's write is outside A's read set).
    assert app.run(lambda ctx: [ctx.db.get(a)["n"], ctx.db.get(b)["n"]]) == [1, 10]
    assert runs == {"A": 1, "B": 1}


def test_a_mutation_sees_its_own_snapshot_and_a_later_commit_is_not_lost(app):
    """A mutation that read a document another one then changed is re-run, so its
    read-modify-write lands on the newer value (no lost update), and it saw one snapshot in
    each attempt."""
    doc = app.run(lambda ctx: ctx.db.insert("items", {"name": "x", "n": 0}))
    inside, release = threading.Event(), threading.Event()
    seen: list[float] = []

    @app.mutation
    def slow_add(ctx):
        n = ctx.db.get(doc)["n"]
        seen.append(n)
        if len(seen) == 1:
            inside.set()
            release.wait(HOLD)
        ctx.db.patch(doc, {"n": n + 1})

    @app.mutation
    def fast_add(ctx):
        ctx.db.patch(doc, {"n": ctx.db.get(doc)["n"] + 100})

    slow = Worker(lambda: app.mutation("slow_add"), "slow")
    try:
        assert inside.wait(WAIT)
        fast = Worker(lambda: app.mutation("fast_add"), "fast")
        fast_done_first = fast.done.wait(WAIT)
    finally:
        release.set()
    assert fast_done_first, "the second mutation waited for the first"
    slow.result()
    fast.result()
    assert app.run(lambda ctx: ctx.db.get(doc)["n"]) == 101
    assert seen == [0, 100]  # the first attempt's snapshot, then the re-run's
