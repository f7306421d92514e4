"""Issue 5: the deployment server (HTTP API + WebSocket sync protocol).

a. End-to-end reactive latency: client A sends a Mutation frame until client B's
   subscription update (the Transition carrying the new result) arrives, p50 and p99,
   vs the round trip of a `websockets` echo server measured in the same run (goal: p50 ≤ 5x).
b. Mutations per second over HTTP (keep-alive) and over WebSocket (Mutation → MutationResponse
   → Transition, as the official clients wait for it), from 1 and from 20 clients, vs
   `app.mutation()` called in-process (the same mutation, no network).
c. A remote notebook's DataFrame round trip (``remote.import_dataframe`` over ``/api/import``,
   ``remote.df(table)`` over ``/api/list_snapshot``) vs the same calls on the embedded backend.

Everything runs in this process: the server on its own threads (uvicorn), the clients on an
asyncio loop in the main thread, on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import threading
import time
from typing import Any

from bench._common import Result, make_result, rate_per_s

GROUP = "deployment server (127.0.0.1)"


def _percentile(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    k = min(len(xs) - 1, max(0, round(p / 100 * (len(xs) - 1))))
    return xs[k]


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

    @app.mutation
    def bump(ctx: Any, name: str) -> Any:
        doc = ctx.db.query("counters").with_index("by_name", lambda q: q.eq("name", name)).unique()
        if doc is None:
            return ctx.db.insert("counters", {"name": name, "value": 1})
        ctx.db.patch(doc["_id"], {"value": doc["value"] + 1})
        return None

    return app


# --------------------------------------------------------------------------- baseline: echo


class _EchoServer:
    """A `websockets` echo server on its own thread and event loop (the baseline's server)."""

    def __enter__(self) -> str:
        from websockets.asyncio.server import serve

        ready = threading.Event()
        self._stop: dict[str, Any] = {}

        def server_thread() -> None:
            async def echo(ws: Any) -> None:
                async for message in ws:
                    await ws.send(message)

            async def main() -> None:
                async with serve(echo, "127.0.0.1", 0, compression=None) as server:
                    self._stop["port"] = server.sockets[0].getsockname()[1]
                    self._stop["future"] = asyncio.get_running_loop().create_future()
                    self._stop["loop"] = asyncio.get_running_loop()
                    ready.set()
                    await self._stop["future"]

            asyncio.run(main())

        self._thread = threading.Thread(target=server_thread, daemon=True)
        self._thread.start()
        ready.wait(10)
        return f"ws://127.0.0.1:{self._stop['port']}"

    def __exit__(self, *exc: object) -> None:
        self._stop["loop"].call_soon_threadsafe(self._stop["future"].set_result, None)
        self._thread.join(5)


# --------------------------------------------------------------------------- sync protocol client


class _Sync:
    """A minimal sync-protocol client (what the official clients send)."""

    def __init__(self, url: str) -> None:
        self.url = url.replace("http://", "ws://") + "/api/sync"
        self.qs = 0
        self.rid = 0

    async def open(self) -> _Sync:
        from websockets.asyncio.client import connect

        self.ws = await connect(self.url, compression=None, max_size=None)
        await self.ws.send(json.dumps({"type": "Connect", "sessionId": str(id(self)) + str(time.time()),
                                       "connectionCount": 0, "lastCloseReason": "InitialConnect", "clientTs": 0}))
        return self

    async def subscribe(self, path: str, args: dict) -> Any:
        await self.ws.send(json.dumps({"type": "ModifyQuerySet", "baseVersion": self.qs, "newVersion": self.qs + 1,
                                       "modifications": [{"type": "Add", "queryId": self.qs, "udfPath": path,
                                                          "args": [args]}]}))
        self.qs += 1
        return await self.next_update()

    async def next_update(self) -> Any:
        while True:
            msg = json.loads(await self.ws.recv())
            if msg["type"] == "Transition" and msg["modifications"]:
                return msg["modifications"][-1].get("value")

    async def send_mutation(self, path: str, args: dict) -> None:
        await self.ws.send(json.dumps({"type": "Mutation", "requestId": self.rid, "udfPath": path, "args": [args]}))
        self.rid += 1

    async def mutation(self, path: str, args: dict) -> None:
        """Send and wait as the official clients do: the response, then a Transition."""
        await self.send_mutation(path, args)
        seen_response = False
        while True:
            msg = json.loads(await self.ws.recv())
            if msg["type"] == "MutationResponse":
                if not msg["success"]:
                    raise RuntimeError(msg["result"])
                seen_response = True
            elif msg["type"] == "Transition" and seen_response:
                return

    async def close(self) -> None:
        await self.ws.close()


async def _paired_latencies(echo_url: str, url: str, samples: int) -> tuple[list[float], list[float]]:
    """Echo round trips and reactive latencies, one of each per round (after 50 warm-up
    rounds), so that the machine's drift during the run touches both alike.

    Echo: a Mutation-sized text frame to the echo server and back. Reactive: client A's
    Mutation frame until client B's Transition with the new counter value."""
    from websockets.asyncio.client import connect

    frame = json.dumps({"type": "Mutation", "requestId": 0, "udfPath": "bump", "args": [{"name": "hot"}]})
    echo_times: list[float] = []
    times: list[float] = []
    async with connect(echo_url, compression=None) as echo:
        writer = await _Sync(url).open()
        reader = await _Sync(url).open()
        await writer.mutation("bump", {"name": "hot"})
        await reader.subscribe("counter", {"name": "hot"})
        for i in range(samples + 50):
            t0 = time.perf_counter()
            await echo.send(frame)
            await echo.recv()
            t1 = time.perf_counter()
            await writer.send_mutation("bump", {"name": "hot"})
            await reader.next_update()
            t2 = time.perf_counter()
            if i >= 50:
                echo_times.append(t1 - t0)
                times.append(t2 - t1)
            # Drain the writer's response and Transition so they don't pile up.
            seen = 0
            while seen < 2:
                msg = json.loads(await writer.ws.recv())
                if msg["type"] in ("MutationResponse", "Transition"):
                    seen += 1
        await writer.close()
        await reader.close()
    return echo_times, times


async def _ws_rate(url: str, clients: int, per_client: int) -> float:
    conns = [await _Sync(url).open() for _ in range(clients)]
    for i, c in enumerate(conns):  # warm-up, and every client watches its own counter
        await c.subscribe("counter", {"name": f"ws{i}"})
        await c.mutation("bump", {"name": f"ws{i}"})

    async def work(i: int, c: _Sync) -> None:
        for _ in range(per_client):
            await c.mutation("bump", {"name": f"ws{i}"})

    t0 = time.perf_counter()
    await asyncio.gather(*(work(i, c) for i, c in enumerate(conns)))
    elapsed = time.perf_counter() - t0
    for c in conns:
        await c.close()
    return rate_per_s(clients * per_client, elapsed)


def _http_rate(url: str, clients: int, per_client: int) -> float:
    import httpx

    def work(i: int, barrier: threading.Barrier, out: list[float]) -> None:
        with httpx.Client(base_url=url, timeout=60) as http:
            body = {"path": "bump", "args": {"name": f"http{i}"}, "format": "convex_encoded_json"}
            http.post("/api/mutation", json=body)  # warm-up, keep-alive connection
            barrier.wait()
            for _ in range(per_client):
                r = http.post("/api/mutation", json=body)
                if r.json()["status"] != "success":
                    raise RuntimeError(r.text)
            out.append(time.perf_counter())

    barrier = threading.Barrier(clients + 1)
    ends: list[float] = []
    threads = [threading.Thread(target=work, args=(i, barrier, ends)) for i in range(clients)]
    for t in threads:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    return rate_per_s(clients * per_client, max(ends) - t0)


def _embedded_rate(app: Any, n: int) -> float:
    app.mutation("bump", {"name": "embedded"})
    t0 = time.perf_counter()
    for _ in range(n):
        app.mutation("bump", {"name": "embedded"})
    return rate_per_s(n, time.perf_counter() - t0)


def _frame_round_trip(quick: bool) -> list[Result]:
    """c. rows/s of import_dataframe and df(table), remote vs embedded, same frame."""
    import numpy as np
    import pandas as pd

    import convex_notebook as cn

    n = 5_000 if quick else 100_000
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({
        "i": np.arange(n, dtype=np.float64), "x": rng.random(n), "name": [f"user{k}" for k in range(n)],
        "flag": np.arange(n) % 3 == 0, "score": rng.integers(0, 1000, n).astype(np.float64),
    })
    app = cn.Backend(echo_logs=False)
    handle = app.serve(port=0, block=False, print_admin_key=False)
    remote = cn.connect(handle.url, admin_key=handle.admin_key)
    try:
        t0 = time.perf_counter()
        app.import_dataframe("local", frame, progress=False)
        local_import = rate_per_s(n, time.perf_counter() - t0)
        t0 = time.perf_counter()
        remote.import_dataframe("remote", frame)
        remote_import = rate_per_s(n, time.perf_counter() - t0)
        t0 = time.perf_counter()
        app.df("local")
        local_read = rate_per_s(n, time.perf_counter() - t0)
        t0 = time.perf_counter()
        remote.df("remote")
        remote_read = rate_per_s(n, time.perf_counter() - t0)
    finally:
        remote.close()
        handle.stop()
        app.close()
    note = f"{n:,} rows x 5 columns; one run each"
    return [
        make_result("c. remote import_dataframe (rows/s)", remote_import, "/s", local_import,
                    "`app.import_dataframe` on the embedded backend", goal="report", group=GROUP,
                    note=note + "; one POST /api/import, one transaction"),
        make_result("c. remote df(table) (rows/s)", remote_read, "/s", local_read,
                    "`app.df(table)` on the embedded backend", goal="report", group=GROUP,
                    note=note + "; /api/list_snapshot pages of 8,192 documents"),
    ]


def run(quick: bool) -> list[Result]:
    samples = 100 if quick else 1000
    app = _backend()
    handle = app.serve(port=0, block=False, print_admin_key=False)
    try:
        with _EchoServer() as echo_url:
            echo, reactive = asyncio.run(_paired_latencies(echo_url, handle.url, samples))
        n1, n20 = (100, 20) if quick else (2000, 150)
        embedded = _embedded_rate(app, n1)
        http1 = _http_rate(handle.url, 1, n1)
        http20 = _http_rate(handle.url, 20, n20)
        ws1 = asyncio.run(_ws_rate(handle.url, 1, n1))
        ws20 = asyncio.run(_ws_rate(handle.url, 20, n20))
    finally:
        handle.stop()
        app.close()
    echo_p50, echo_p99 = statistics.median(echo), _percentile(echo, 99)
    p50, p99 = statistics.median(reactive), _percentile(reactive, 99)
    out = [
        make_result(
            "a. reactive latency p50: A's Mutation frame → B's subscription update", p50, "s",
            echo_p50, "`websockets` echo round trip p50 (same process, same client loop, interleaved)",
            goal="≤ 5x", check=lambda r: r <= 5, group=GROUP,
            note=(f"{samples} samples (+50 warm-up); writer and reader are separate WebSocket connections; "
                  f"B waits for the Transition with the new counter value; each round times one echo round "
                  f"trip, then one reactive update (the two interleaved share the machine's drift)"),
            extra={"reactive": reactive, "echo": echo},
        ),
        make_result(
            "a. reactive latency p99", p99, "s", echo_p99, "`websockets` echo round trip p99",
            goal="report", group=GROUP, note=f"{samples} samples",
        ),
    ]
    note_rate = "mutations/s; each client waits for each result before sending the next"
    for name, value, n in (
        ("b. mutations/s over HTTP, 1 client", http1, n1),
        ("b. mutations/s over HTTP, 20 clients", http20, 20 * n20),
        ("b. mutations/s over WebSocket, 1 client", ws1, n1),
        ("b. mutations/s over WebSocket, 20 clients", ws20, 20 * n20),
    ):
        out.append(make_result(
            name, value, "/s", embedded, "`app.mutation()` in-process (no network), 1 caller",
            goal="report", group=GROUP,
            note=f"{n:,} mutations; {note_rate}" + ("; WebSocket: response + Transition" if "WebSocket" in name else "; keep-alive connections, httpx"),
        ))
    out.extend(_frame_round_trip(quick))
    return out
