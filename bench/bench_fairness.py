"""Issue 14: fairness. 49 well-behaved WebSocket clients and one hostile client.

Goal (issue 14): "A load test of 50 clients with one hostile client where the others' worst
latency stays within a small multiple of their latency without the attacker: record that
ratio (goal <= 3x)."

The server is ``convex-notebook serve`` in a subprocess (a fresh one per run, its own SQLite
file, 127.0.0.1), serving the functions in ``FUNCTIONS`` below. Each well-behaved client
bumps a counter of its own (found by id, so clients never conflict under optimistic
concurrency), subscribed to a query of that counter, and waits for each confirmation
(MutationResponse, then a Transition at or past its ts, as the official clients wait),
back to back. One operation's latency = Mutation frame sent → confirmed.

Runs (one server each):

* baseline: the well-behaved clients alone, for ``seconds``;
* a. the same, plus a hostile socket sending ONE ModifyQuerySet with 100,000 QueryAdd
  (``fair:get`` of its own counter, each with different args);
* b. plus one ``POST /api/query_batch`` of 100,000 queries (the same query);
* c. plus 200 concurrent one-second actions (``time.sleep(1)``) from one socket.

The hostile client runs in its own process (``python -m bench.bench_fairness --hostile ...``)
so that building and parsing its huge frames does not stall the well-behaved clients' event
loop (that would count the bench's own work as the server's unfairness). It starts ~1 s into
the run; the *attack window* is from its first frame until ``settle`` seconds after it has
finished and closed its socket (or given up after ``attack_timeout``). Figures: the
well-behaved clients' worst and p99 latency over the operations that overlap the window, vs
the baseline run's worst and p99 (goal: worst <= 3x); the server's RSS just before the attack,
its peak during the window, and at the window's end (memory returns near baseline).

The server may refuse any part of an attack (an error, a 4xx, a closed socket): the hostile
client reports what happened and the row's note says it; the bench runs either way.

Length: ``run(quick, seconds=...)``, ``CN_BENCH_FAIR_SECONDS``, or
``python -m bench.bench_fairness [--quick] [--seconds S]`` (full 15 s, quick 1 s).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import ROOT, Result, make_result, rate_per_s

GROUP = "fairness: well-behaved WebSocket clients beside one hostile client (127.0.0.1)"

# The functions served (a `convex-notebook serve --functions` file: `app`, `cn`, `v` predefined).
FUNCTIONS = '''
import time

fair = app.module("fair")  # noqa: F821


@fair.mutation
def bump(ctx, name, id=None):  # noqa: A002
    """The first call inserts the caller's counter and returns its id; later calls pass the
    id and touch only that document (clients never conflict)."""
    if id is None:
        return ctx.db.insert("counters", {"name": name, "value": 1})
    doc = ctx.db.get(id)
    ctx.db.patch(id, {"value": doc["value"] + 1})
    return id


@fair.query
def get(ctx, id, n=0):  # noqa: A002
    """One counter's value (``n`` only makes the arguments differ)."""
    doc = ctx.db.get(id)
    return doc["value"] if doc else None


@fair.action
def slow(ctx, seconds=1.0):
    time.sleep(seconds)
    return seconds
'''


@dataclass(frozen=True)
class Sizes:
    clients: int  # well-behaved clients
    seconds: float  # length of each run's measured phase
    query_adds: int  # a. QueryAdds in the one ModifyQuerySet
    batch_queries: int  # b. queries in the one /api/query_batch
    actions: int  # c. concurrent actions from one socket
    action_seconds: float  # c. each action's time.sleep
    lead_s: float  # the attack starts this long into the measured phase
    settle_s: float  # after the hostile finished: wait this long, then "after" RSS; ends the window
    attack_timeout_s: float  # the hostile gives up after this long
    op_timeout_s: float  # a well-behaved operation slower than this counts as failed (timed out)


FULL = Sizes(clients=49, seconds=15.0, query_adds=100_000, batch_queries=100_000, actions=200,
             action_seconds=1.0, lead_s=1.0, settle_s=3.0, attack_timeout_s=90.0, op_timeout_s=60.0)
QUICK = Sizes(clients=10, seconds=1.0, query_adds=2_000, batch_queries=2_000, actions=20,
              action_seconds=0.2, lead_s=0.2, settle_s=0.5, attack_timeout_s=30.0, op_timeout_s=30.0)


def _percentile(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    k = min(len(xs) - 1, max(0, round(p / 100 * (len(xs) - 1))))
    return xs[k]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------- the server


def _rss_of(pid: int) -> int | None:
    """VmRSS of a process in bytes (None once it has gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


class Server:
    """``convex-notebook serve`` in a subprocess, on 127.0.0.1, its output in a file."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.log = folder / "server.log"

    def start(self) -> Server:
        functions = self.folder / "fair.py"
        functions.write_text(FUNCTIONS)
        cli = Path(sys.executable).with_name("convex-notebook")
        command = [str(cli)] if cli.exists() else [sys.executable, "-m", "convex_notebook.server.cli"]
        with open(self.log, "w") as out:
            self.proc = subprocess.Popen(
                command + ["serve", "--db", str(self.folder / "fair.sqlite3"), "--host", "127.0.0.1",
                           "--port", str(self.port), "--functions", str(functions)],
                stdout=out, stderr=subprocess.STDOUT, cwd=self.folder,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            text = self.log.read_text() if self.log.exists() else ""
            if "serving" in text:
                return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"the server did not start: {self.tail()}")

    def tail(self, chars: int = 1500) -> str:
        try:
            return self.log.read_text()[-chars:]
        except OSError:
            return ""

    def rss(self) -> int | None:
        return _rss_of(self.proc.pid) if self.proc is not None else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


class RssSampler:
    """Samples the server's RSS every ``interval`` seconds in a thread: (perf_counter, bytes)."""

    def __init__(self, server: Server, interval: float = 0.05) -> None:
        self.server, self.interval = server, interval
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            rss = self.server.rss()
            if rss is not None:
                self.samples.append((time.perf_counter(), rss))
            self._stop.wait(self.interval)

    def start(self) -> RssSampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def peak(self, start: float, end: float) -> int | None:
        xs = [rss for t, rss in self.samples if start <= t <= end]
        return max(xs) if xs else None


# --------------------------------------------------------------------------- the hostile client (own process)


def _hostile_main(kind: str, url: str, n: int, timeout: float, action_seconds: float) -> int:
    """Prepare the attack, print ``{"ready": ...}``, wait for a line on stdin, attack, close,
    print ``{"outcome": ...}``. Every error of the server (a refusal, a close) is an outcome."""
    out: dict[str, Any] = {"kind": kind, "n": n}

    def say(obj: dict) -> None:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()

    try:
        if kind == "batch":
            outcome = _hostile_batch(url, n, timeout, say)
        else:
            outcome = asyncio.run(_hostile_ws(kind, url, n, timeout, action_seconds, say))
        out.update(outcome)
    except Exception as exc:  # noqa: BLE001 - reported, never raised
        out["outcome"] = f"hostile client error: {type(exc).__name__}: {exc}"[:400]
    say(out)
    return 0


def _wait_go(say: Any, info: dict) -> None:
    say({"ready": True, **info})
    sys.stdin.readline()  # the parent writes "go" (or closes stdin)


def _hostile_batch(url: str, n: int, timeout: float, say: Any) -> dict:
    import httpx

    with httpx.Client(base_url=url, timeout=timeout) as http:
        r = http.post("/api/mutation", json={"path": "fair:bump", "args": {"name": "hostile"},
                                             "format": "convex_encoded_json"})
        own = r.json()["value"]
        body = json.dumps({"queries": [{"path": "fair:get", "args": {"id": own, "n": i},
                                        "format": "convex_encoded_json"} for i in range(n)]}).encode()
        _wait_go(say, {"body_bytes": len(body)})
        t0 = time.perf_counter()
        try:
            r = http.post("/api/query_batch", content=body, headers={"Content-Type": "application/json"})
        except httpx.HTTPError as exc:
            return {"outcome": f"request failed: {type(exc).__name__}: {exc}"[:400],
                    "elapsed_s": time.perf_counter() - t0, "body_bytes": len(body)}
        elapsed = time.perf_counter() - t0
        if r.status_code != 200:
            return {"outcome": f"refused: HTTP {r.status_code} {r.text[:300]}", "elapsed_s": elapsed,
                    "body_bytes": len(body)}
        try:
            results = r.json().get("results", [])
        except ValueError:
            return {"outcome": f"HTTP 200, not JSON ({len(r.content)} bytes)", "elapsed_s": elapsed}
        ok = sum(1 for x in results if isinstance(x, dict) and x.get("status") == "success")
        return {"outcome": f"answered: {ok:,} of {len(results):,} results succeeded",
                "elapsed_s": elapsed, "body_bytes": len(body), "response_bytes": len(r.content)}


async def _hostile_ws(kind: str, url: str, n: int, timeout: float, action_seconds: float, say: Any) -> dict:
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    ws_url = url.replace("http://", "ws://") + "/api/sync"
    ws = await connect(ws_url, compression=None, max_size=None, open_timeout=30, close_timeout=5)
    await ws.send(json.dumps({"type": "Connect", "sessionId": f"hostile-{os.getpid()}-{time.time()}",
                              "connectionCount": 0, "lastCloseReason": "InitialConnect", "clientTs": 0}))
    info: dict[str, Any] = {}
    try:
        if kind == "query_set":
            await ws.send(json.dumps({"type": "Mutation", "requestId": 0, "udfPath": "fair:bump",
                                      "args": [{"name": "hostile"}]}))
            own = None
            while own is None:
                msg = json.loads(await asyncio.wait_for(ws.recv(), timeout))
                if msg["type"] == "MutationResponse":
                    if not msg.get("success"):
                        raise RuntimeError(f"the hostile's own bump failed: {msg.get('result')}")
                    own = msg["result"]
            frame = json.dumps({"type": "ModifyQuerySet", "baseVersion": 0, "newVersion": 1, "modifications": [
                {"type": "Add", "queryId": i, "udfPath": "fair:get", "args": [{"id": own, "n": i}]}
                for i in range(n)]})
            info["frame_bytes"] = len(frame)
            _wait_go(say, info)
            t0 = time.perf_counter()
            await ws.send(frame)
            deadline = t0 + timeout
            while True:
                left = deadline - time.perf_counter()
                if left <= 0:
                    return {**info, "outcome": f"no answer within {timeout:g} s", "elapsed_s": timeout}
                raw = await asyncio.wait_for(ws.recv(), left)
                msg = json.loads(raw)
                if msg["type"] == "Transition" and msg["endVersion"]["querySet"] >= 1:
                    kinds: dict[str, int] = {}
                    for m in msg.get("modifications", []):
                        kinds[m.get("type", "?")] = kinds.get(m.get("type", "?"), 0) + 1
                    return {**info, "outcome": "accepted: one Transition with " + ", ".join(
                        f"{v:,} {k}" for k, v in sorted(kinds.items())), "elapsed_s": time.perf_counter() - t0,
                        "response_bytes": len(raw)}
                if msg["type"] in ("FatalError", "AuthError"):
                    return {**info, "outcome": f"refused: {msg['type']} {str(msg.get('error'))[:300]}",
                            "elapsed_s": time.perf_counter() - t0}
        elif kind == "actions":
            frames = [json.dumps({"type": "Action", "requestId": i, "udfPath": "fair:slow",
                                  "args": [{"seconds": action_seconds}]}) for i in range(n)]
            _wait_go(say, info)
            t0 = time.perf_counter()
            for f in frames:
                await ws.send(f)
            ok, failed, first_error = 0, 0, None
            deadline = t0 + timeout
            while ok + failed < n:
                left = deadline - time.perf_counter()
                if left <= 0:
                    return {"outcome": f"{ok} succeeded, {failed} failed, {n - ok - failed} unanswered "
                                       f"after {timeout:g} s", "elapsed_s": timeout, "ok": ok, "failed": failed}
                msg = json.loads(await asyncio.wait_for(ws.recv(), left))
                if msg["type"] == "ActionResponse":
                    if msg.get("success"):
                        ok += 1
                    else:
                        failed += 1
                        first_error = first_error or str(msg.get("result"))[:300]
                elif msg["type"] in ("FatalError", "AuthError"):
                    return {"outcome": f"refused after {ok} succeeded, {failed} failed: {msg['type']} "
                                       f"{str(msg.get('error'))[:300]}", "elapsed_s": time.perf_counter() - t0}
            return {"outcome": f"{ok} succeeded, {failed} failed" + (f" (first error: {first_error})" if first_error else ""),
                    "elapsed_s": time.perf_counter() - t0, "ok": ok, "failed": failed}
        else:
            raise ValueError(f"unknown attack {kind!r}")
    except ConnectionClosed as exc:
        rcvd = exc.rcvd
        why = f"code {rcvd.code} {rcvd.reason!r}" if rcvd is not None else "no close frame"
        return {**info, "outcome": f"socket closed by the server: {why}"}
    except TimeoutError:
        return {**info, "outcome": f"no answer within {timeout:g} s", "elapsed_s": timeout}
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(ws.close(), 10)
    raise AssertionError("unreachable")


class Hostile:
    """The hostile client's process, driven from the well-behaved clients' event loop."""

    def __init__(self, kind: str, url: str, n: int, timeout: float, action_seconds: float) -> None:
        self.args = [sys.executable, "-m", "bench.bench_fairness", "--hostile", kind, "--url", url,
                     "--n", str(n), "--timeout", str(timeout), "--action-seconds", str(action_seconds)]
        self.timeout = timeout
        self.ready_info: dict[str, Any] = {}

    async def prepare(self) -> None:
        env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        self.proc = await asyncio.create_subprocess_exec(
            *self.args, cwd=ROOT, env=env, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, limit=1 << 24,
        )
        stdin, stdout, stderr = self.proc.stdin, self.proc.stdout, self.proc.stderr
        assert stdin is not None and stdout is not None and stderr is not None  # all three PIPEd
        self.stdin, self.stdout, self.stderr = stdin, stdout, stderr
        line = await asyncio.wait_for(self.stdout.readline(), 120)
        msg = json.loads(line or b"{}")
        if not msg.get("ready"):
            err = (await self.stderr.read())[-1000:].decode(errors="replace")
            raise RuntimeError(f"the hostile client did not get ready: {msg} {err}")
        self.ready_info = msg

    async def attack(self) -> dict[str, Any]:
        """Release the attack; returns the hostile's report once it has finished (socket closed)."""
        self.stdin.write(b"go\n")
        await self.stdin.drain()
        try:
            line = await asyncio.wait_for(self.stdout.readline(), self.timeout + 30)
            result = json.loads(line) if line else {"outcome": "the hostile client exited without a report"}
        except TimeoutError:
            result = {"outcome": "the hostile client did not finish: killed"}
        await self.finish()
        return result

    async def finish(self) -> None:
        if getattr(self, "proc", None) is not None and self.proc.returncode is None:
            try:
                await asyncio.wait_for(self.proc.wait(), 15)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()


# --------------------------------------------------------------------------- the well-behaved clients


@dataclass
class Op:
    start: float
    end: float
    ok: bool  # False: the server answered with an error, or the op timed out (then end = give-up time)
    error: str = ""


@dataclass
class RunResult:
    ops: list[Op] = field(default_factory=list)
    phase: tuple[float, float] = (0.0, 0.0)
    window: tuple[float, float] | None = None  # the attack window
    rss_before: int | None = None
    rss_peak: int | None = None  # during the window
    rss_after: int | None = None  # at the window's end
    hostile: dict[str, Any] = field(default_factory=dict)
    server_alive: bool = True
    server_tail: str = ""

    def in_range(self, start: float, end: float) -> list[Op]:
        """Operations that overlap [start, end]."""
        return [op for op in self.ops if op.start <= end and op.end >= start]


async def _load(url: str, sizes: Sizes, seconds: float, server: Server, hostile: Hostile | None) -> RunResult:
    from bench.bench_concurrency import _Client

    conns = [await _Client(url).open() for _ in range(sizes.clients)]
    ids: list[str] = []
    for i, c in enumerate(conns):  # each client's counter (first bump inserts it), then its query
        ids.append(await asyncio.wait_for(c.mutation("fair:bump", {"name": f"c{i}"}), 60))
        await asyncio.wait_for(c.subscribe("fair:get", {"id": ids[i]}), 60)
    for c, own in zip(conns, ids):  # warm-up
        for _ in range(3):
            await asyncio.wait_for(c.mutation("fair:bump", {"name": "", "id": own}), 60)
    out = RunResult()
    if hostile is not None:
        try:
            await hostile.prepare()
        except BaseException:
            await hostile.finish()
            for c in conns:
                await c.close()
            raise
    sampler = RssSampler(server).start()
    t0 = time.perf_counter()
    hard_end = t0 + seconds + sizes.lead_s + sizes.attack_timeout_s + sizes.settle_s + 60
    # With an attacker, the clients go on until the attack window has ended (the attacker then
    # sets the deadline to max(run length, window end)); hard_end bounds it all.
    deadline = [hard_end if hostile is not None else t0 + seconds]

    async def work(c: Any, own: str) -> None:
        while time.perf_counter() < min(deadline[0], hard_end):
            start = time.perf_counter()
            try:
                await asyncio.wait_for(c.mutation("fair:bump", {"name": "", "id": own}), sizes.op_timeout_s)
                out.ops.append(Op(start, time.perf_counter(), True))
            except TimeoutError:
                out.ops.append(Op(start, time.perf_counter(), False, f"no confirmation within {sizes.op_timeout_s:g} s"))
                break  # the socket may be stuck; this client stops
            except RuntimeError as exc:
                out.ops.append(Op(start, time.perf_counter(), False, str(exc)[:200]))
            except Exception as exc:  # noqa: BLE001 - a closed socket: this client stops
                out.ops.append(Op(start, time.perf_counter(), False, f"{type(exc).__name__}: {exc}"[:200]))
                break

    async def attacker() -> None:
        assert hostile is not None
        try:
            await asyncio.sleep(sizes.lead_s)
            out.rss_before = server.rss()
            start = time.perf_counter()
            out.hostile = await hostile.attack()
            await asyncio.sleep(sizes.settle_s)
            end = time.perf_counter()
            out.rss_after = server.rss()
            out.window = (start, end)
        finally:
            deadline[0] = max(t0 + seconds, time.perf_counter())

    tasks = [work(c, own) for c, own in zip(conns, ids)]
    if hostile is not None:
        tasks.append(attacker())
    else:
        out.rss_before = server.rss()
    try:
        await asyncio.gather(*tasks)
    finally:
        sampler.stop()
        if hostile is not None:
            await hostile.finish()
        for c in conns:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(c.close(), 10)
    out.phase = (t0, time.perf_counter())
    if out.window is not None:
        out.rss_peak = sampler.peak(*out.window)
    else:
        out.rss_peak = sampler.peak(*out.phase)
        out.rss_after = server.rss()
    out.server_alive = server.alive()
    return out


def _one_run(sizes: Sizes, seconds: float, attack: str | None) -> RunResult:
    with tempfile.TemporaryDirectory(prefix="cn-bench-fair-") as tmp:
        server = Server(Path(tmp)).start()
        try:
            hostile = None
            if attack is not None:
                n = {"query_set": sizes.query_adds, "batch": sizes.batch_queries, "actions": sizes.actions}[attack]
                hostile = Hostile(attack, server.url, n, sizes.attack_timeout_s, sizes.action_seconds)
            result = asyncio.run(_load(server.url, sizes, seconds, server, hostile))
            result.server_tail = server.tail(600) if not server.alive() else ""
            return result
        finally:
            server.stop()


# --------------------------------------------------------------------------- figures


def _mb(x: int | None) -> float | None:
    return None if x is None else x / 1e6


def _stats(ops: list[Op]) -> dict[str, Any]:
    lat = [op.end - op.start for op in ops if op.ok]
    timed_out = [op.end - op.start for op in ops if not op.ok and op.error.startswith("no confirmation")]
    worst_pool = lat + timed_out  # a timed-out operation took at least this long
    return {
        "n": len(lat),
        "failed": sum(1 for op in ops if not op.ok),
        "p50": statistics.median(lat) if lat else None,
        "p99": _percentile(lat, 99) if lat else None,
        "max": max(worst_pool) if worst_pool else None,
        "errors": sorted({op.error for op in ops if not op.ok})[:3],
    }


ATTACKS = [
    ("a", "query_set", "one ModifyQuerySet of {n:,} QueryAdd", "query_adds"),
    ("b", "batch", "one POST /api/query_batch of {n:,} queries", "batch_queries"),
    ("c", "actions", "{n:,} concurrent {s:g} s actions from one socket", "actions"),
]


def _attack_rows(letter: str, label: str, run_: RunResult, base: dict[str, Any], base_rss: int | None,
                 sizes: Sizes) -> list[Result]:
    assert run_.window is not None
    w0, w1 = run_.window
    during = _stats(run_.in_range(w0, w1))
    whole = _stats(run_.ops)
    window_s = w1 - w0
    rate = rate_per_s(during["n"], window_s)
    h = run_.hostile
    hostile_note = f"hostile: {h.get('outcome', '?')}"
    if h.get("elapsed_s") is not None:
        hostile_note += f" in {h['elapsed_s']:.2f} s"
    for key in ("frame_bytes", "body_bytes", "response_bytes"):
        if h.get(key):
            hostile_note += f"; {key.replace('_', ' ')} {h[key] / 1e6:.1f} MB"
    window_note = (f"attack window {window_s:.1f} s (first hostile frame → {sizes.settle_s:g} s after it finished "
                   f"and closed); {during['n']:,} confirmed operations overlap it ({rate:,.0f}/s; "
                   f"baseline {base['rate']:,.0f}/s), {during['failed']} failed")
    if during["errors"]:
        window_note += f" (e.g. {during['errors'][0]})"
    overlapping = run_.in_range(w0, w1)
    if overlapping:
        worst_op = max(overlapping, key=lambda op: op.end - op.start)
        window_note += (f"; the worst operation ran from {worst_op.start - w0:+.1f} s to {worst_op.end - w0:+.1f} s "
                        f"into the window")
    if not run_.server_alive:
        window_note += f"; THE SERVER DIED: {run_.server_tail[-300:]}"
    name = f"{letter}. {label}"
    rows = [
        make_result(f"{name}: worst latency", during["max"], "s", base["max"],
                    f"worst latency, {sizes.clients} clients, no attacker", goal="≤ 3x", check=lambda r: r <= 3,
                    group=GROUP, note=f"{hostile_note}. {window_note}; p50 in the window "
                    + (f"{during['p50'] * 1e3:.1f} ms" if during["p50"] is not None else "—")
                    + f"; whole run: {whole['n']:,} confirmed, worst "
                    + (f"{whole['max'] * 1e3:.1f} ms" if whole["max"] is not None else "—"),
                    extra={"hostile": h, "window_s": window_s, "during": [op.end - op.start for op in
                                                                          run_.in_range(w0, w1) if op.ok]}),
        make_result(f"{name}: p99 latency", during["p99"], "s", base["p99"],
                    f"p99 latency, {sizes.clients} clients, no attacker", goal="report", group=GROUP),
        make_result(f"{name}: server RSS, peak during the window", _mb(run_.rss_peak), "MB", _mb(run_.rss_before),
                    "server RSS just before the attack", goal="report", group=GROUP,
                    note=f"RSS sampled every 50 ms; baseline run's server: {_mb(base_rss) or 0:.1f} MB"),
        make_result(f"{name}: server RSS after (hostile closed + {sizes.settle_s:g} s)", _mb(run_.rss_after), "MB",
                    _mb(run_.rss_before), "server RSS just before the attack", goal="report (memory returns near 1x)",
                    group=GROUP),
    ]
    return rows


def run(quick: bool, seconds: float | None = None) -> list[Result]:
    sizes = QUICK if quick else FULL
    if seconds is None:
        env = os.environ.get("CN_BENCH_FAIR_SECONDS")
        seconds = float(env) if env else sizes.seconds
    baseline = _one_run(sizes, seconds, None)
    base = _stats(baseline.ops)
    if not base["n"]:
        raise RuntimeError(f"no operation was confirmed in the baseline run: {base['errors']}")
    base["rate"] = rate_per_s(base["n"], baseline.phase[1] - baseline.phase[0])
    out = [make_result(
        f"baseline: worst latency, {sizes.clients} clients, no attacker", base["max"], "s", base["p50"],
        "p50 of the same run", goal="report", group=GROUP,
        note=(f"{seconds:g} s; each client bumps its own counter (by id) and waits for the MutationResponse and a "
              f"Transition at or past its ts, back to back, subscribed to a query of that counter; "
              f"{base['n']:,} confirmed ({base['rate']:,.0f}/s), {base['failed']} failed; "
              f"p50 {base['p50'] * 1e3:.2f} ms, p99 {base['p99'] * 1e3:.2f} ms, max {base['max'] * 1e3:.2f} ms; "
              f"server RSS {_mb(baseline.rss_before) or 0:.1f} MB (peak {_mb(baseline.rss_peak) or 0:.1f} MB); "
              f"one fresh `convex-notebook serve` subprocess per run"),
        extra={"latencies": [op.end - op.start for op in baseline.ops if op.ok]},
    )]
    for letter, kind, label_fmt, size_attr in ATTACKS:
        label = label_fmt.format(n=getattr(sizes, size_attr), s=sizes.action_seconds)
        try:
            run_ = _one_run(sizes, seconds, kind)
            out += _attack_rows(letter, label, run_, base, baseline.rss_before, sizes)
        except Exception as exc:  # noqa: BLE001 - one attack's failure must not hide the others
            out.append(Result(name=f"{letter}. {label}", value=None, unit="s", baseline_value=base["max"],
                              baseline_name="worst latency, no attacker", goal="≤ 3x", group=GROUP,
                              note=f"error: {type(exc).__name__}: {exc}"[:500]))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="issue 14's fairness benchmark (prints its figures)")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seconds", type=float, default=None, help="length of each run's measured phase")
    ap.add_argument("--hostile", choices=["query_set", "batch", "actions"], help=argparse.SUPPRESS)
    ap.add_argument("--url", help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--timeout", type=float, default=60.0, help=argparse.SUPPRESS)
    ap.add_argument("--action-seconds", type=float, default=1.0, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.hostile:
        return _hostile_main(args.hostile, args.url, args.n, args.timeout, args.action_seconds)
    from bench._common import fmt_ratio, fmt_value

    for r in run(args.quick, seconds=args.seconds):
        print(f"{r.name}: {fmt_value(r.value, r.unit)} vs {fmt_value(r.baseline_value, r.unit)} "
              f"({fmt_ratio(r.ratio)}) goal {r.goal or '—'} met {r.met}  {r.note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
