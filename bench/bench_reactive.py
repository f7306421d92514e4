"""Issue 3: the reactive engine.

e. Commit-plus-notify latency of a one-document mutation with 10 and with 10,000 idle
   subscriptions on other keys (baseline: the 10 case; goal: within 1.5x).
f. One write that changes the result of 1,000 subscriptions: time until every callback
   fired, vs 1,000 plain Python callback invocations (1,000 distinct queries, and 1,000
   subscribers sharing one query).
"""

from __future__ import annotations

import threading
import time
from typing import Any

from bench._common import Result, make_result, median

GROUP = "reactive engine (in memory)"


def _backend() -> Any:
    import convex_notebook as cn
    from convex_notebook import v

    schema = cn.define_schema({
        "counters": cn.define_table({"name": v.string(), "value": v.number()}).index("by_name", ["name"]),
    })
    app = cn.Backend(schema=schema, echo_logs=False)

    @app.query
    def counter(ctx: Any, name: str) -> Any:
        doc = ctx.db.query("counters").with_index("by_name", lambda q: q.eq("name", name)).unique()
        return doc["value"] if doc else None

    @app.query
    def counter_plus(ctx: Any, name: str, k: float) -> Any:
        doc = ctx.db.query("counters").with_index("by_name", lambda q: q.eq("name", name)).unique()
        return doc["value"] + k if doc else None

    @app.mutation
    def bump(ctx: Any, name: str) -> None:
        doc = ctx.db.query("counters").with_index("by_name", lambda q: q.eq("name", name)).unique()
        ctx.db.patch(doc["_id"], {"value": doc["value"] + 1})

    return app


def _notify_latency(idle: int, samples: int) -> tuple[float, list[float]]:
    """Median seconds from calling the mutation until the hot subscription's callback ran."""
    app = _backend()
    app.run(lambda ctx: ctx.db.insert("counters", {"name": "hot", "value": 0}))
    for i in range(idle):  # idle subscriptions on keys nobody writes
        app.subscribe("counter", {"name": f"idle{i}"})
    fired = threading.Event()
    app.subscribe("counter", {"name": "hot"}, on_update=lambda _v: fired.set())
    times = []
    for i in range(samples + 20):
        fired.clear()
        t0 = time.perf_counter()
        app.mutation("bump", {"name": "hot"})
        fired.wait(10)
        if i >= 20:  # warm-up
            times.append(time.perf_counter() - t0)
    app.close()
    return median(times), times


def _fanout(n: int, shared: bool, repeats: int) -> float:
    """Median seconds from a write until all ``n`` subscriptions' callbacks have fired."""
    app = _backend()
    app.run(lambda ctx: ctx.db.insert("counters", {"name": "hot", "value": 0}))
    remaining = [0]
    done = threading.Event()
    lock = threading.Lock()

    def callback(_value: Any) -> None:
        with lock:
            remaining[0] -= 1
            if remaining[0] == 0:
                done.set()

    for i in range(n):
        if shared:
            app.subscribe("counter", {"name": "hot"}, on_update=callback)
        else:
            app.subscribe("counter_plus", {"name": "hot", "k": float(i)}, on_update=callback)
    times = []
    for r in range(repeats + 2):
        remaining[0] = n
        done.clear()
        t0 = time.perf_counter()
        app.mutation("bump", {"name": "hot"})
        done.wait(60)
        if r >= 2:
            times.append(time.perf_counter() - t0)
    app.close()
    return median(times)


def _plain_callbacks(n: int, repeats: int) -> float:
    """The same callback work, invoked ``n`` times from a plain loop."""
    remaining = [0]
    done = threading.Event()
    lock = threading.Lock()

    def callback(_value: Any) -> None:
        with lock:
            remaining[0] -= 1
            if remaining[0] == 0:
                done.set()

    times = []
    for _ in range(repeats + 2):
        remaining[0] = n
        done.clear()
        t0 = time.perf_counter()
        for i in range(n):
            callback(float(i))
        times.append(time.perf_counter() - t0)
    return median(times[2:])


def run(quick: bool) -> list[Result]:
    samples = 50 if quick else 400
    idle_many = 1_000 if quick else 10_000
    few, few_times = _notify_latency(10, samples)
    many, many_times = _notify_latency(idle_many, samples)
    out = [
        make_result(
            f"e. commit + notify latency, one-document mutation, {idle_many:,} idle subscriptions",
            many, "s", few, "the same with 10 idle subscriptions",
            goal="≤ 1.5x", check=lambda r: r <= 1.5, group=GROUP,
            note=(
                f"median of {samples} mutations (+20 warm-up): `app.mutation` call until the hot "
                "subscription's `on_update` ran (dispatcher thread); the idle subscriptions read "
                f"other keys of the same index. 10-subscription case: {few * 1e6:,.0f} µs"
            ),
            extra={"few": few_times, "many": many_times},
        )
    ]
    n, repeats = 1_000, (3 if quick else 15)
    plain = _plain_callbacks(n, repeats * 10)
    distinct = _fanout(n, shared=False, repeats=repeats)
    shared = _fanout(n, shared=True, repeats=repeats)
    out.append(make_result(
        "f. one write changing 1,000 subscriptions (1,000 distinct queries)", distinct, "s",
        plain, "1,000 plain Python callback invocations", goal="report", group=GROUP,
        note=(
            f"median of {repeats}: mutation call until all 1,000 `on_update` callbacks ran; each "
            "subscription is its own query (different args), so the commit re-runs 1,000 queries"
        ),
    ))
    out.append(make_result(
        "f. one write changing 1,000 subscriptions (one shared query)", shared, "s",
        plain, "1,000 plain Python callback invocations", goal="report", group=GROUP,
        note=f"median of {repeats}: 1,000 subscribers of one query share a single re-run",
    ))
    return out
