"""API.md §7: optimistic mutations. Conflicting read-modify-writes are re-run (no lost update,
``occ_retries`` in the call's usage); after repeated conflicts the caller gets
``cn.ConvexFunctionError`` naming the contended table; every call's log entry carries usage."""

from __future__ import annotations

import threading

import pytest

import convex_notebook as cn
from convex_notebook import v

from mvcc_helpers import HOLD, WAIT, Worker, entries_for, usage_of

THREADS = 4
PER_THREAD = 5


@pytest.fixture
def app():
    schema = cn.define_schema({
        "counters": cn.define_table({"n": v.number()}),
        "items": cn.define_table({"g": v.number(), "pad": v.string()}).index("by_g", ["g"]),
    })
    backend = cn.Backend(schema=schema, echo_logs=False, query_cache_size=0)
    yield backend
    backend.close()


def test_conflicting_increments_from_threads_count_exactly_and_report_retries(app):
    counter = app.run(lambda ctx: ctx.db.insert("counters", {"n": 0}))
    # Every thread's first call reads the counter, then waits at the barrier for all the others
    # to have read it too, so that they all commit against the same snapshot: all but one conflict.
    barrier = threading.Barrier(THREADS, timeout=WAIT)
    first_attempts: set[str] = set()
    met_at_barrier = []
    lock = threading.Lock()

    @app.mutation
    def increment(ctx, token):
        n = ctx.db.get(counter)["n"]
        with lock:
            first = token not in first_attempts
            first_attempts.add(token)
        if first and token.endswith(":0"):
            try:
                barrier.wait()
                met_at_barrier.append(token)
            except threading.BrokenBarrierError:
                pass  # reported below: the mutations could not all be inside at once
        ctx.db.patch(counter, {"n": n + 1})
        return n

    def worker(t: int) -> list[float]:
        return [app.mutation("increment", {"token": f"{t}:{i}"}) for i in range(PER_THREAD)]

    workers = [Worker(lambda t=t: worker(t), f"w{t}") for t in range(THREADS)]
    seen = [n for w in workers for n in w.result(timeout=120)]
    assert len(met_at_barrier) == THREADS, "the mutations could not run side by side (barrier broken)"
    total = THREADS * PER_THREAD
    assert app.run(lambda ctx: ctx.db.get(counter))["n"] == total
    # Each committed increment read a distinct predecessor: they serialize.
    assert sorted(seen) == [float(i) for i in range(total)]
    entries = entries_for(app, "increment")
    assert len(entries) == total  # one log entry per call, however many attempts it took
    retries = [usage_of(e)["occ_retries"] for e in entries]
    assert sum(retries) >= THREADS - 1, retries  # all but one of the first calls re-ran
    assert all(e.error is None for e in entries)


def test_repeated_conflicts_fail_with_an_error_naming_the_table(app):
    hot = app.run(lambda ctx: ctx.db.insert("counters", {"n": 0}))
    attempts = [0]
    pokes = [0]

    @app.mutation
    def poke(ctx):
        ctx.db.patch(hot, {"n": ctx.db.get(hot)["n"] + 1})
        pokes[0] += 1

    @app.mutation
    def stubborn(ctx):
        n = ctx.db.get(hot)["n"]
        attempts[0] += 1
        if attempts[0] <= 50:  # bounded: an engine that re-runs forever ends and fails below
            # Another mutation commits a change to what this one read, every time it runs.
            other = Worker(lambda: app.mutation("poke"), "poke")
            if not other.done.wait(WAIT):
                raise RuntimeError("the other mutation could not commit while this one ran")
            other.result()
        ctx.db.patch(hot, {"n": n + 1000})

    with pytest.raises(cn.ConvexFunctionError) as info:
        app.mutation("stubborn")
    assert "counters" in str(info.value), str(info.value)
    assert 2 <= attempts[0] <= 50, attempts  # re-run a few times, then given up
    # The failed mutation wrote nothing; every poke committed.
    assert app.run(lambda ctx: ctx.db.get(hot))["n"] == pokes[0] == attempts[0]
    entry = entries_for(app, "stubborn")[-1]
    assert entry.error is not None
    assert usage_of(entry)["occ_retries"] == attempts[0] - 1


def test_a_read_only_query_and_a_mutation_report_their_usage(app):
    app.run(lambda ctx: [ctx.db.insert("items", {"g": float(i % 2), "pad": "x" * 100}) for i in range(14)])

    @app.query
    def group(ctx, g):
        return len(ctx.db.query("items").with_index("by_g", lambda q: q.eq("g", g)).collect())

    @app.mutation
    def add_three(ctx):
        for _ in range(3):
            ctx.db.insert("items", {"g": 5.0, "pad": "y" * 100})

    assert app.query("group", {"g": 1}) == 7
    usage = usage_of(entries_for(app, "group")[-1])
    assert usage["documents_read"] >= 7 and usage["bytes_read"] >= 7 * 100
    assert usage["index_ranges"] >= 1
    assert usage["documents_written"] == usage["bytes_written"] == usage["occ_retries"] == 0

    app.mutation("add_three")
    usage = usage_of(entries_for(app, "add_three")[-1])
    assert usage["documents_written"] == 3 and usage["bytes_written"] >= 3 * 100
    assert usage["occ_retries"] == 0


def test_a_long_query_does_not_make_a_writer_conflict(app):
    """Queries take no part in OCC: a mutation committing while a query is paused neither
    waits nor re-runs."""
    doc = app.run(lambda ctx: ctx.db.insert("counters", {"n": 0}))
    paused, resume = threading.Event(), threading.Event()

    @app.query
    def hold(ctx):
        n = ctx.db.get(doc)["n"]
        paused.set()
        resume.wait(HOLD)
        return n

    @app.mutation
    def bump(ctx):
        ctx.db.patch(doc, {"n": ctx.db.get(doc)["n"] + 1})

    query = Worker(lambda: app.query("hold"), "query")
    try:
        assert paused.wait(WAIT)
        writer = Worker(lambda: app.mutation("bump"), "writer")
        written = writer.done.wait(WAIT)
    finally:
        resume.set()
    assert written, "the mutation waited for the query"
    writer.result()
    assert query.result() == 0
    assert usage_of(entries_for(app, "bump")[-1])["occ_retries"] == 0
