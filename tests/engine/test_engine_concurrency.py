"""Serializability (conformance §3.4): concurrent read-modify-write mutations lose no update."""

from __future__ import annotations

import threading

import pytest

import convex_notebook as cn

THREADS = 8
PER_THREAD = 100


def hammer(app: cn.Backend) -> None:
    counter = app.run(lambda ctx: ctx.db.insert("counters", {"value": 0}))

    @app.mutation
    def increment(ctx, id):
        doc = ctx.db.get(id)
        ctx.db.patch(id, {"value": doc["value"] + 1})
        ctx.db.insert("log", {"seen": doc["value"]})

    errors: list[BaseException] = []
    start = threading.Barrier(THREADS)

    def worker() -> None:
        try:
            start.wait()
            for _ in range(PER_THREAD):
                app.mutation("increment", {"id": counter})
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    total = THREADS * PER_THREAD
    assert app.run(lambda ctx: ctx.db.get(counter))["value"] == total
    # every mutation saw a distinct predecessor value: they ran one after another
    seen = sorted(d["seen"] for d in app.run(lambda ctx: ctx.db.query("log").collect()))
    assert seen == [float(i) for i in range(total)]


def test_threads_incrementing_one_counter_in_memory():
    with cn.Backend(echo_logs=False) as app:
        hammer(app)


def test_threads_incrementing_one_counter_on_a_file(tmp_path):
    path = tmp_path / "counter.sqlite3"
    with cn.Backend(path, echo_logs=False) as app:
        hammer(app)
    with cn.Backend(path, echo_logs=False) as app:
        assert app.run(lambda ctx: ctx.db.query("counters").unique())["value"] == THREADS * PER_THREAD
        assert app.count("log") == THREADS * PER_THREAD


def test_readers_see_only_committed_states_while_writers_run():
    """Every read sees both documents of a two-document mutation, or neither."""
    with cn.Backend(echo_logs=False) as app:
        @app.mutation
        def pair(ctx, i):
            ctx.db.insert("a", {"i": i})
            ctx.db.insert("b", {"i": i})

        @app.query
        def counts(ctx):
            return [len(ctx.db.query("a").collect()), len(ctx.db.query("b").collect())]

        stop = threading.Event()
        bad: list[list[int]] = []
        errors: list[BaseException] = []

        def reader() -> None:
            try:
                while not stop.is_set():
                    a, b = app.query("counts")
                    if a != b:
                        bad.append([a, b])
            except BaseException as exc:
                errors.append(exc)

        readers = [threading.Thread(target=reader) for _ in range(3)]
        for t in readers:
            t.start()
        try:
            for i in range(200):
                app.mutation("pair", {"i": i})
        finally:
            stop.set()
            for t in readers:
                t.join()
        assert errors == [] and bad == []
        assert app.query("counts") == [200, 200]


@pytest.mark.parametrize("kind", ["memory", "file"])
def test_concurrent_inserts_from_app_run(tmp_path, kind):
    path = tmp_path / "inserts.sqlite3" if kind == "file" else None
    with cn.Backend(path, echo_logs=False) as app:
        ids: list[str] = []
        lock = threading.Lock()

        def worker(w: int) -> None:
            for i in range(50):
                new = app.run(lambda ctx: ctx.db.insert("t", {"w": w, "i": i}))
                with lock:
                    ids.append(new)

        threads = [threading.Thread(target=worker, args=(w,)) for w in range(THREADS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(set(ids)) == THREADS * 50
        docs = app.run(lambda ctx: ctx.db.query("t").collect())
        assert len(docs) == THREADS * 50
        times = [d["_creationTime"] for d in docs]
        assert len(set(times)) == len(times)  # creation times stay unique under contention
