"""Fair sharing: what one connection may hold (issue 14): its live queries, its actions in
flight, a query batch. Past its share a connection's own requests fail or wait; the others'
are untouched."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import httpx

import convex_notebook as cn

from server_helpers import RawSync, make_app, mods_by_id


def test_a_query_set_past_its_share_is_refused_whole() -> None:
    app = make_app()
    handle = app.serve(port=0, block=False, print_admin_key=False, max_queries_per_session=3)
    try:
        async def main() -> None:
            fits = await RawSync(handle.url).open()
            t = await fits.modify(*[fits.add(i, "values:sample") for i in range(3)])
            assert all(m["type"] == "QueryUpdated" for m in t["modifications"])
            # Its share frees up as it removes queries.
            t = await fits.modify({"type": "Remove", "queryId": 0}, fits.add(5, "messages:list"))
            assert mods_by_id(t)[5]["type"] == "QueryUpdated"
            # One more is past the share: the connection is closed, nothing was run for it.
            executions = app.reactivity.executions
            await fits.send({"type": "ModifyQuerySet", "baseVersion": 2, "newVersion": 3,
                             "modifications": [fits.add(9, "messages:list", {"n": 1.0})]})
            frame = await fits.closed()
            assert frame.code == 1008 and frame.reason.startswith("TooManyQueries: The query set would hold 4 queries")
            assert app.reactivity.executions == executions
            # Another connection has its own share.
            other = await RawSync(handle.url).open()
            t = await other.modify(*[other.add(i, "messages:list") for i in range(3)])
            assert all(m["type"] == "QueryUpdated" for m in t["modifications"])
            await other.close()

        asyncio.run(main())
    finally:
        handle.stop()
        app.close()


def test_a_huge_query_set_frame_is_refused_before_it_is_parsed() -> None:
    app = make_app()
    handle = app.serve(port=0, block=False, print_admin_key=False, max_queries_per_session=100)
    try:
        async def main() -> None:
            c = await RawSync(handle.url).open()
            pad = "x" * 200  # (the frame must be big enough to be checked off the event loop)
            adds = [c.add(i, "messages:list", {"pad": pad}) for i in range(2000)]
            await c.send({"type": "ModifyQuerySet", "baseVersion": 0, "newVersion": 1, "modifications": adds})
            frame = await c.closed()
            assert frame.code == 1008 and frame.reason.startswith("TooManyQueries: The query set would hold more than 100")

        executions = app.reactivity.executions
        asyncio.run(main())
        assert app.reactivity.executions == executions
    finally:
        handle.stop()
        app.close()


def test_one_connections_actions_run_at_most_its_share_at_once() -> None:
    app = cn.Backend(echo_logs=False)
    running, started, most = [0], [0], [0]
    lock, release = threading.Lock(), threading.Event()

    @app.action
    def hold(ctx: Any) -> str:
        with lock:
            running[0] += 1
            started[0] += 1
            most[0] = max(most[0], running[0])
        try:
            release.wait(30)
        finally:
            with lock:
                running[0] -= 1
        return "done"

    handle = app.serve(port=0, block=False, print_admin_key=False, max_actions_in_flight=2)
    try:
        async def main() -> None:
            c = await RawSync(handle.url).open()
            for i in range(6):
                await c.send({"type": "Action", "requestId": i, "udfPath": "hold", "args": [{}]})
            # Two start; the other four wait for a slot of this connection (observed for up to
            # a second, which is ample for them all to start if nothing held them back).
            deadline = time.monotonic() + 1.0
            while time.monotonic() < deadline and started[0] <= 2:
                await asyncio.sleep(0.02)
            assert started[0] == 2
            release.set()
            answers = [await c.recv_type("ActionResponse") for _ in range(6)]
            assert sorted(a["requestId"] for a in answers) == list(range(6))
            assert all(a["success"] and a["result"] == "done" for a in answers)
            await c.close()

        asyncio.run(main())
        assert most[0] == 2 and started[0] == 6
    finally:
        release.set()
        handle.stop()
        app.close()


def test_a_query_batch_past_its_limit_is_refused_whole() -> None:
    app = make_app()
    handle = app.serve(port=0, block=False, print_admin_key=False, max_batch_queries=2)
    try:
        queries = [{"path": "messages:list", "args": {}}] * 3
        r = httpx.post(handle.url + "/api/query_batch", json={"queries": queries})
        assert r.status_code == 400 and r.json()["code"] == "TooManyQueries" and "at most 2" in r.json()["message"]
        r = httpx.post(handle.url + "/api/query_batch", json={"queries": queries[:2]})
        assert r.status_code == 200 and len(r.json()["results"]) == 2
        huge = [{"path": "messages:list", "args": {"pad": "x" * 200}}] * 2000  # refused unparsed
        r = httpx.post(handle.url + "/api/query_batch", json={"queries": huge})
        assert r.status_code == 400 and r.json()["code"] == "TooManyQueries"
    finally:
        handle.stop()
        app.close()
