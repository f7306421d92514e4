"""Issue 11: concurrency and history (Convex-style MVCC, API.md section 7).

Figures (each a ratio against a baseline measured in this same run):

a. Mutation latency p50 while a 0.5 s query runs in another thread, vs the idle mutation p50.
   The query *waits* (``time.sleep`` between its reads): goal <= 2x (queries hold no lock
   across user code). The same beside a *CPU-bound* 0.5 s query: reported (the GIL's cost).
b. Four overlapping 0.2 s waiting queries (four threads, started together) vs one such query:
   wall time until the last finishes. Goal <= 1.5x (queries run side by side).
c. Time travel: the 100-document ``with_index`` read (a table of 100,000 documents) at a
   timestamp one minute back, with 1,000 writes (updates and inserts) spread over that
   minute, vs the same read now. Goal <= 3x. A ``cn.VirtualClock`` makes the minute.
d. 50 WebSocket clients, each subscribed to a shared counter and to a query of its own,
   each bumping the shared counter as fast as its mutations are confirmed (MutationResponse,
   then a Transition at or past its ts, as the official clients wait), for 30 s: mutations
   per second and confirm latency p50/p99, vs the same run with one client. Reported.

Figures that need the new API (``app.latest_ts()``, ``app.query(..., at=ts)``) are reported as
``n/a: <reason>`` on an engine without it, so the same bench runs before and after issue 11.

The WebSocket run's length: ``run(quick, ws_seconds=...)``, ``CN_BENCH_WS_SECONDS``, or
``python -m bench.bench_concurrency [--quick] [--ws-seconds S]`` (quick mode: 1 s).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import random
import struct
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import Result, key_for, make_doc, make_result, median, rate_per_s

GROUP_QUERIES = "concurrency: queries beside mutations"
GROUP_HISTORY = "concurrency: time travel"
GROUP_WS = "concurrency: WebSocket clients on a shared counter (127.0.0.1)"


@dataclass(frozen=True)
class Sizes:
    mutations: int  # timed mutations per side (a)
    beside_budget_s: float  # at most this long measuring mutations beside the slow query (a)
    slow_query_s: float  # the slow query's length (a)
    overlap_query_s: float  # one overlapping query's length (b)
    overlap_repeats: int
    history_docs: int  # table size (c)
    history_hits: int  # documents per key (c)
    history_writes: int  # writes spread over the minute (c)
    history_queries: int  # timed reads per side (c)
    ws_clients: int  # (d)
    ws_seconds: float


FULL = Sizes(
    mutations=300, beside_budget_s=20.0, slow_query_s=0.5, overlap_query_s=0.2, overlap_repeats=5,
    history_docs=100_000, history_hits=100, history_writes=1000, history_queries=200,
    ws_clients=50, ws_seconds=30.0,
)
QUICK = Sizes(
    mutations=20, beside_budget_s=3.0, slow_query_s=0.5, overlap_query_s=0.2, overlap_repeats=2,
    history_docs=3_000, history_hits=100, history_writes=60, history_queries=20,
    ws_clients=50, ws_seconds=1.0,
)

STEPS = 10  # reads of the slow query, with a pause (or a busy loop) after each


def na(name: str, unit: str, baseline_name: str, goal: str, why: str, group: str) -> Result:
    """A figure this engine cannot produce: value None, note ``n/a: why``."""
    return Result(name=name, value=None, unit=unit, baseline_value=None, baseline_name=baseline_name,
                  ratio=None, goal=goal, met=None, group=group, note=f"n/a: {why}")


def _percentile(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    k = min(len(xs) - 1, max(0, round(p / 100 * (len(xs) - 1))))
    return xs[k]


def _close(app: Any) -> None:
    with contextlib.suppress(Exception):
        app.close()


# --------------------------------------------------------------------------- the backend


_STARTED: dict[int, threading.Event] = {}  # id(app) -> "a slow query has started"


def make_app(clock: Any = None) -> Any:
    """A Backend with the "docs" table (indexed by_k), a counter, and the functions below.
    The query cache is off: every query is a real execution."""
    import convex_notebook as cn
    from convex_notebook import v

    schema = cn.define_schema({
        "docs": cn.define_table({
            "k": v.string(), "n": v.number(), "text": v.string(), "tags": v.array(v.string()),
            "score": v.number(), "done": v.boolean(),
        }).index("by_k", ["k"]),
        "counters": cn.define_table({"name": v.string(), "value": v.number()}).index("by_name", ["name"]),
    })
    app = cn.Backend(schema=schema, clock=clock, echo_logs=False, query_cache_size=0)
    started = _STARTED[id(app)] = threading.Event()  # set by the slow queries once they run

    @app.query
    def by_k(ctx: Any, k: str) -> Any:
        return ctx.db.query("docs").with_index("by_k", lambda q: q.eq("k", k)).collect()

    @app.query
    def slow_wait(ctx: Any, k: str, steps: float, pause: float) -> Any:
        """``steps`` reads, each followed by ``time.sleep(pause)``: a query waiting on I/O."""
        started.set()
        total = 0
        for _ in range(int(steps)):
            total += len(ctx.db.query("docs").with_index("by_k", lambda q: q.eq("k", k)).take(10))
            time.sleep(pause)
        return total

    @app.query
    def slow_cpu(ctx: Any, k: str, steps: float, pause: float) -> Any:
        """``steps`` reads, each followed by ``pause`` seconds of pure-Python arithmetic."""
        started.set()
        total = 0
        for _ in range(int(steps)):
            total += len(ctx.db.query("docs").with_index("by_k", lambda q: q.eq("k", k)).take(10))
            end = time.perf_counter() + pause
            x = 0
            while time.perf_counter() < end:
                for i in range(200):
                    x += i * i
        return total

    @app.query
    def counter(ctx: Any, name: str) -> Any:
        doc = ctx.db.query("counters").with_index("by_name", lambda q: q.eq("name", name)).unique()
        return doc["value"] if doc else None

    @app.mutation
    def bump(ctx: Any, name: str) -> Any:
        doc = ctx.db.query("counters").with_index("by_name", lambda q: q.eq("name", name)).unique()
        if doc is None:
            ctx.db.insert("counters", {"name": name, "value": 1})
            return 1
        ctx.db.patch(doc["_id"], {"value": doc["value"] + 1})
        return doc["value"] + 1

    return app


def bulk_load(app: Any, n_docs: int, n_keys: int, batch: int = 10_000) -> None:
    for start in range(0, n_docs, batch):
        end = min(n_docs, start + batch)

        def fill(ctx: Any, start: int = start, end: int = end) -> None:
            for i in range(start, end):
                ctx.db.insert("docs", make_doc(i, key_for(i, n_keys)))

        app.run(fill)


def history_api_missing(app: Any) -> str | None:
    """Why this engine cannot read at a timestamp (None when it can)."""
    latest = getattr(app, "latest_ts", None)
    if not callable(latest):
        return "app.latest_ts() is missing (an engine without history)"
    try:
        bulk_load(app, 1, 1)  # one commit to read at
        ts = latest()
        app.query("by_k", {"k": "k0"}, at=ts)
    except TypeError as exc:
        return f"app.query(..., at=ts) is not supported ({type(exc).__name__}: {exc})"
    except Exception as exc:  # noqa: BLE001 - any refusal means the figure cannot be made
        return f"app.query(..., at=app.latest_ts()) failed ({type(exc).__name__}: {exc})"
    return None


# --------------------------------------------------------------------------- a. mutations beside a slow query


def _mutation_latencies(app: Any, n: int, budget_s: float, name: str) -> list[float]:
    """Up to ``n`` mutation latencies (within ``budget_s``). Each call comes after a random
    pause of 0-20 ms, so the calls land at random moments of the other thread's work (back to
    back, they would bunch up in whatever gaps it leaves and hide the waits)."""
    times: list[float] = []
    rng = random.Random(7)
    deadline = time.perf_counter() + budget_s
    for _ in range(n):
        time.sleep(rng.uniform(0, 0.02))
        t0 = time.perf_counter()
        app.mutation("bump", {"name": name})
        times.append(time.perf_counter() - t0)
        if time.perf_counter() > deadline:
            break
    return times


def _beside(app: Any, query: str, sizes: Sizes, name: str) -> tuple[list[float], int]:
    """Mutation latencies while ``query`` runs over and over in another thread; also how many
    times the query ran meanwhile."""
    stop = threading.Event()
    runs = [0]
    errors: list[BaseException] = []
    started = _STARTED[id(app)]
    started.clear()
    args = {"k": "k0", "steps": STEPS, "pause": sizes.slow_query_s / STEPS}

    def loop() -> None:
        try:
            while not stop.is_set():
                app.query(query, args)
                runs[0] += 1
                time.sleep(0.001)  # let a waiting writer in, as a client's next request would
        except BaseException as exc:  # noqa: BLE001 - reported by the caller
            errors.append(exc)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        if not started.wait(30):
            raise RuntimeError(f"the {query} query never started")
        time.sleep(sizes.slow_query_s / 4)  # well inside the first run
        times = _mutation_latencies(app, sizes.mutations, sizes.beside_budget_s, name)
    finally:
        stop.set()
        thread.join(60)
    if errors:
        raise errors[0]
    return times, runs[0]


def _figure_a(sizes: Sizes) -> list[Result]:
    app = make_app()
    try:
        bulk_load(app, 1000, 10)
        app.mutation("bump", {"name": "idle"})  # warm-up
        for _ in range(5):
            app.mutation("bump", {"name": "idle"})
        idle = _mutation_latencies(app, sizes.mutations, 60.0, "idle")
        waiting, wait_runs = _beside(app, "slow_wait", sizes, "beside_wait")
        cpu, cpu_runs = _beside(app, "slow_cpu", sizes, "beside_cpu")
    finally:
        _close(app)
    idle_p50 = median(idle)
    base = "idle `app.mutation()` p50 (same mutation, nothing else running)"
    return [
        make_result(
            "a. mutation p50 beside a 0.5 s waiting query", median(waiting), "s", idle_p50, base,
            goal="≤ 2x", check=lambda r: r <= 2, group=GROUP_QUERIES,
            note=(f"{len(waiting)} mutations (a counter in another table; 0-20 ms random pause before each) while a query doing {STEPS} reads, "
                  f"each followed by time.sleep({sizes.slow_query_s / STEPS:g}), ran {wait_runs} times in a thread; "
                  f"idle: {len(idle)} mutations; p99 beside {_percentile(waiting, 99) * 1e3:.2f} ms"),
            extra={"idle": idle, "beside": waiting},
        ),
        make_result(
            "a. mutation p50 beside a 0.5 s CPU-bound query", median(cpu), "s", idle_p50, base,
            goal="report (GIL)", group=GROUP_QUERIES,
            note=(f"{len(cpu)} mutations while a query doing {STEPS} reads, each followed by "
                  f"{sizes.slow_query_s / STEPS:g} s of pure-Python arithmetic, ran {cpu_runs} times; "
                  f"p99 beside {_percentile(cpu, 99) * 1e3:.2f} ms"),
            extra={"beside": cpu},
        ),
    ]


# --------------------------------------------------------------------------- b. overlapping queries


def _figure_b(sizes: Sizes) -> list[Result]:
    app = make_app()
    args = {"k": "k0", "steps": 4, "pause": sizes.overlap_query_s / 4}
    try:
        bulk_load(app, 1000, 10)
        app.query("slow_wait", args)  # warm-up
        singles, fours = [], []
        for _ in range(sizes.overlap_repeats):
            t0 = time.perf_counter()
            app.query("slow_wait", args)
            singles.append(time.perf_counter() - t0)

            barrier = threading.Barrier(5)
            errors: list[BaseException] = []

            def one(barrier: threading.Barrier = barrier, errors: list[BaseException] = errors) -> None:
                try:
                    barrier.wait(30)
                    app.query("slow_wait", args)
                except BaseException as exc:  # noqa: BLE001
                    errors.append(exc)

            threads = [threading.Thread(target=one, daemon=True) for _ in range(4)]
            for t in threads:
                t.start()
            barrier.wait(30)
            t0 = time.perf_counter()
            for t in threads:
                t.join(120)
            fours.append(time.perf_counter() - t0)
            if errors:
                raise errors[0]
    finally:
        _close(app)
    return [make_result(
        "b. four overlapping 0.2 s waiting queries: time to the last", median(fours), "s", median(singles),
        "one such query alone", goal="≤ 1.5x", check=lambda r: r <= 1.5, group=GROUP_QUERIES,
        note=(f"each query: 4 reads, time.sleep({sizes.overlap_query_s / 4:g}) after each; four threads released "
              f"by a barrier; medians of {sizes.overlap_repeats} repeats"),
        extra={"one": singles, "four": fours},
    )]


# --------------------------------------------------------------------------- c. time travel


def _figure_c(sizes: Sizes) -> list[Result]:
    import convex_notebook as cn

    name = "c. 100-document with_index read at a ts one minute back"
    base_name = "the same read now"
    goal = "≤ 3x"
    probe = make_app(clock=cn.VirtualClock())
    try:
        why = history_api_missing(probe)
    finally:
        _close(probe)
    if why is not None:
        return [na(name, "s", base_name, goal, why, GROUP_HISTORY)]

    n_keys = max(1, sizes.history_docs // sizes.history_hits)
    app = make_app(clock=cn.VirtualClock())
    try:
        bulk_load(app, sizes.history_docs, n_keys)
        app.advance_time(1000)
        back = app.latest_ts()
        # One minute of writes: updates of existing documents (some under the keys read below)
        # and inserts under random keys, evenly spread over the virtual minute.
        rng = random.Random(11)
        ids = app.run(lambda ctx: [d["_id"] for d in ctx.db.query("docs").take(min(5000, sizes.history_docs))])
        step = 60_000 / sizes.history_writes
        read_keys = [f"k{i}" for i in range(min(n_keys, 20))]
        for i in range(sizes.history_writes):
            app.advance_time(step)
            if i % 3 == 2:
                doc = make_doc(sizes.history_docs + i, rng.choice(read_keys) if i % 2 else key_for(rng.randrange(10**6), n_keys))
                app.run(lambda ctx, doc=doc: ctx.db.insert("docs", doc))
            else:
                target = rng.choice(ids)
                app.run(lambda ctx, target=target, i=i: ctx.db.patch(target, {"score": float(i), "done": True}))
        now_ts = app.latest_ts()
        minute_ns = now_ts - back
        # Sanity: the past read sees exactly the documents the key had then.
        past = app.query("by_k", {"k": read_keys[0]}, at=back)
        if len(past) != sizes.history_hits:
            raise RuntimeError(f"the read at ts {back} returned {len(past)} documents, not {sizes.history_hits}")
        for k in read_keys[:3]:  # warm-up
            app.query("by_k", {"k": k})
            app.query("by_k", {"k": k}, at=back)
        then_t, now_t = [], []
        for i in range(sizes.history_queries):  # interleaved
            k = read_keys[i % len(read_keys)]
            t0 = time.perf_counter()
            app.query("by_k", {"k": k}, at=back)
            then_t.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            app.query("by_k", {"k": k})
            now_t.append(time.perf_counter() - t0)
    finally:
        _close(app)
    return [make_result(
        name, median(then_t), "s", median(now_t), base_name, goal=goal, check=lambda r: r <= 3,
        group=GROUP_HISTORY,
        note=(f"{sizes.history_docs:,} documents, {sizes.history_hits} per key; {sizes.history_writes:,} writes "
              f"(2/3 patches, 1/3 inserts) spread over {minute_ns / 1e9:.0f} s of virtual time after the ts read; "
              f"{sizes.history_queries} reads per side over {len(read_keys)} keys, interleaved; "
              "`app.query(\"by_k\", {...}, at=ts)` vs `app.query(\"by_k\", {...})`"),
        extra={"at": then_t, "now": now_t},
    )]


# --------------------------------------------------------------------------- d. WebSocket clients


def _decode_ts(text: str) -> int:
    return struct.unpack("<Q", base64.b64decode(text))[0]


class _Client:
    """A sync-protocol client (bench_server's _Sync opens the socket) with a reader task: a
    mutation is confirmed, as the official clients confirm it, once its MutationResponse has
    come and a Transition with ``endVersion.ts`` at or past the response's ``ts``."""

    def __init__(self, url: str) -> None:
        from bench.bench_server import _Sync

        self.sync = _Sync(url)
        self.max_ts = 0
        self.pending: dict[int, list[Any]] = {}  # requestId -> [needed ts or None, future]
        self.results: dict[int, Any] = {}  # requestId -> the mutation's result (JSON), until returned
        self.seen_queries: dict[int, asyncio.Event] = {}
        self.failures: list[str] = []

    async def open(self) -> _Client:
        await self.sync.open()
        self.task = asyncio.create_task(self._read())
        return self

    def _settle(self) -> None:
        for rid, (need, fut) in list(self.pending.items()):
            if need is not None and self.max_ts >= need and not fut.done():
                fut.set_result(None)
                del self.pending[rid]

    async def _read(self) -> None:
        with contextlib.suppress(Exception):  # the socket closed: nothing more to confirm
            async for raw in self.sync.ws:
                msg = json.loads(raw)
                kind = msg.get("type")
                if kind == "Transition":
                    self.max_ts = max(self.max_ts, _decode_ts(msg["endVersion"]["ts"]))
                    for m in msg.get("modifications", []):
                        event = self.seen_queries.get(m.get("queryId"))
                        if event is not None:
                            event.set()
                    self._settle()
                elif kind == "MutationResponse":
                    entry = self.pending.get(msg["requestId"])
                    if entry is None:
                        continue
                    if msg.get("success"):
                        self.results[msg["requestId"]] = msg.get("result")
                        entry[0] = _decode_ts(msg["ts"])
                        self._settle()
                    else:
                        self.pending.pop(msg["requestId"], None)
                        entry[1].set_exception(RuntimeError(str(msg.get("result"))))

    async def subscribe(self, path: str, args: dict) -> None:
        s = self.sync
        qid = s.qs
        self.seen_queries[qid] = asyncio.Event()
        await s.ws.send(json.dumps({"type": "ModifyQuerySet", "baseVersion": s.qs, "newVersion": s.qs + 1,
                                    "modifications": [{"type": "Add", "queryId": qid, "udfPath": path,
                                                       "args": [args]}]}))
        s.qs += 1
        await asyncio.wait_for(self.seen_queries[qid].wait(), 60)

    async def mutation(self, path: str, args: dict) -> Any:
        """Send a mutation and wait for its confirmation; returns its result (JSON as sent)."""
        s = self.sync
        rid = s.rid
        fut = asyncio.get_running_loop().create_future()
        self.pending[rid] = [None, fut]
        try:
            await s.send_mutation(path, args)
            await asyncio.wait_for(fut, 120)
        finally:
            self.pending.pop(rid, None)
        return self.results.pop(rid, None)

    async def close(self) -> None:
        await self.sync.close()
        self.task.cancel()


async def _ws_load(url: str, clients: int, seconds: float) -> dict[str, Any]:
    conns = [await _Client(url).open() for _ in range(clients)]
    for i, c in enumerate(conns):
        await c.subscribe("counter", {"name": "shared"})
        await c.subscribe("counter", {"name": f"own{i}"})
    for c in conns:  # warm-up: one confirmed mutation each
        await c.mutation("bump", {"name": "shared"})
    latencies: list[float] = []
    failures: list[str] = []
    deadline = time.perf_counter() + seconds

    async def work(c: _Client) -> None:
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            try:
                await c.mutation("bump", {"name": "shared"})
            except RuntimeError as exc:
                failures.append(str(exc)[:200])
                continue
            latencies.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    await asyncio.gather(*(work(c) for c in conns))
    elapsed = time.perf_counter() - t0
    for c in conns:
        await c.close()
    return {"latencies": latencies, "failures": failures, "elapsed": elapsed,
            "rate": rate_per_s(len(latencies), elapsed)}


def _figure_d(sizes: Sizes, seconds: float) -> list[Result]:
    app = make_app()
    handle = app.serve(port=0, block=False, print_admin_key=False)
    try:
        one = asyncio.run(_ws_load(handle.url, 1, seconds))
        many = asyncio.run(_ws_load(handle.url, sizes.ws_clients, seconds))
        final = app.query("counter", {"name": "shared"})
    finally:
        handle.stop()
        _close(app)
    if not one["latencies"] or not many["latencies"]:
        raise RuntimeError(f"no mutation was confirmed: failures {one['failures'][:3] + many['failures'][:3]}")
    n = sizes.ws_clients
    common = (f"{seconds:g} s per run; every client subscribes to the shared counter and to its own counter, "
              f"and bumps the shared one, waiting for each confirmation; {len(many['latencies']):,} confirmed "
              f"({len(many['failures'])} failed) with {n} clients, {len(one['latencies']):,} with 1; "
              f"shared counter at the end: {final}")
    failures = many["failures"][:3]
    return [
        make_result(f"d. mutations/s, {n} clients", many["rate"], "/s", one["rate"], "1 client, same run length",
                    goal="report", group=GROUP_WS, note=common + (f"; first failures: {failures}" if failures else ""),
                    extra={"failures": many["failures"][:50]}),
        make_result(f"d. confirm latency p50, {n} clients", median(many["latencies"]), "s",
                    median(one["latencies"]), "1 client p50", goal="report", group=GROUP_WS,
                    note="Mutation frame sent → MutationResponse and a Transition at or past its ts",
                    extra={"many": many["latencies"], "one": one["latencies"]}),
        make_result(f"d. confirm latency p99, {n} clients", _percentile(many["latencies"], 99), "s",
                    _percentile(one["latencies"], 99), "1 client p99", goal="report", group=GROUP_WS),
    ]


# --------------------------------------------------------------------------- entry point


def _guarded(label: str, fn: Callable[[], list[Result]], group: str) -> list[Result]:
    """One figure's failure is reported in its row, not allowed to hide the others."""
    try:
        return fn()
    except Exception as exc:  # noqa: BLE001
        return [Result(name=label, value=None, unit="", baseline_value=None, baseline_name="", group=group,
                       note=f"error: {type(exc).__name__}: {exc}"[:500])]


def run(quick: bool, ws_seconds: float | None = None) -> list[Result]:
    sizes = QUICK if quick else FULL
    if ws_seconds is None:
        env = os.environ.get("CN_BENCH_WS_SECONDS")
        ws_seconds = float(env) if env else sizes.ws_seconds
    out: list[Result] = []
    out += _figure_a(sizes)
    out += _figure_b(sizes)
    out += _figure_c(sizes)
    out += _guarded("d. WebSocket clients", lambda: _figure_d(sizes, ws_seconds), GROUP_WS)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="issue 11's concurrency benchmark (prints its figures)")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--ws-seconds", type=float, default=None, help="length of each WebSocket run (d)")
    args = ap.parse_args(argv)
    from bench._common import fmt_ratio, fmt_value

    for r in run(args.quick, ws_seconds=args.ws_seconds):
        print(f"{r.name}: {fmt_value(r.value, r.unit)} vs {fmt_value(r.baseline_value, r.unit)} "
              f"({fmt_ratio(r.ratio)}) goal {r.goal or '—'} met {r.met}  {r.note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
