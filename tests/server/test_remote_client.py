"""cn.connect("http://...") — the remote client has the calling and subscribing API of a
Backend, over the sync protocol, and survives server restarts."""

from __future__ import annotations

import asyncio
import math
import threading
from pathlib import Path
from typing import Any

import pytest

import convex_notebook as cn
from convex_notebook.backend.logs import LogBook
from convex_notebook.server.client import DeploymentClient, RemoteSubscription

from server_helpers import free_port, jwt, make_app, messages


def test_connect_returns_a_remote_client_with_the_backend_api(server: Any) -> None:
    remote = cn.connect(server.url, admin_key=server.admin_key)
    try:
        assert isinstance(remote, DeploymentClient)
        for name in ("query", "mutation", "action", "run", "subscribe", "query_async", "mutation_async",
                     "action_async", "run_async", "with_identity", "wait_for_callbacks", "close",
                     # the data API the notebook layer uses (tests/server/test_remote_data.py)
                     "live", "df", "import_dataframe", "table_names", "count", "functions",
                     "import_table", "export_table"):
            assert callable(getattr(cn.Backend, name)) and callable(getattr(remote, name)), name
        assert isinstance(remote.logs, LogBook)
        for name in ("value", "error", "ts", "version", "journal", "log_lines", "unsubscribe", "close",
                     "wait_for_update", "__iter__", "__aiter__", "__enter__", "__exit__"):
            assert hasattr(cn.Subscription, name) and hasattr(RemoteSubscription, name), name
    finally:
        remote.close()


def test_calls_values_and_errors(app: cn.Backend, server: Any) -> None:
    with cn.connect(server.url, admin_key=server.admin_key) as remote:
        value = {"i": cn.Int64(-(2**63)), "b": b"\x00\xff", "nan": math.nan, "nz": -0.0, "inf": math.inf, "n": 3}
        back = remote.mutation("values:store", {"value": value})
        assert back["i"] == cn.Int64(-(2**63)) and type(back["i"]) is cn.Int64
        assert back["b"] == b"\x00\xff" and math.isnan(back["nan"]) and math.copysign(1, back["nz"]) == -1
        assert back["n"] == 3.0 and type(back["n"]) is float
        assert remote.query("values:latest")["inf"] == math.inf
        assert remote.action("actions:hello", {"name": "r"}) == "hello r"
        with pytest.raises(cn.ConvexError) as info:
            remote.mutation("errors:convexError")
        assert info.value.data == {"code": 42.0, "big": cn.Int64(7), "why": "nope"}
        with pytest.raises(cn.FunctionNotFound):
            remote.query("nope:missing")
        with pytest.raises(cn.FunctionNotFound):
            remote.mutation("admin:secret")  # internal: not over the sync protocol
        with pytest.raises(cn.ValidationError):
            remote.mutation("messages:send", {"author": 1, "body": "x"})
        with pytest.raises(cn.ValidationError):
            remote.mutation("messages:send", {"author": object()})
        with pytest.raises(cn.ConvexFunctionError, match="boom"):
            remote.query("errors:boom")
        # run: an admin call of any function, internal ones too.
        assert remote.run("admin:secret") == "internal ok"
        assert remote.run("messages:list") == [{"author": "admin", "body": "secret"}]
        with pytest.raises(TypeError):
            remote.run(lambda ctx: None)
    with cn.connect(server.url) as anonymous:  # no admin key: internal functions stay hidden
        with pytest.raises(cn.FunctionNotFound):
            anonymous.run("admin:secret")
    assert messages(app) == [("admin", "secret")]


def test_subscribe_updates_iteration_and_callbacks(app: cn.Backend, server: Any) -> None:
    a = cn.connect(server.url, admin_key=server.admin_key)
    b = cn.connect(server.url)
    try:
        seen: list[Any] = []
        fired = threading.Event()
        sub = a.subscribe("messages:list", on_update=lambda v: (seen.append(v), fired.set()))
        assert sub.value == [] and sub.version == 1 and sub.error is None
        b.mutation("messages:send", {"author": "b", "body": "1"})  # another client's write
        assert fired.wait(10)
        assert seen[-1] == [{"author": "b", "body": "1"}]
        # mutation() returns once the caller's own subscriptions show the write.
        a.mutation("messages:send", {"author": "a", "body": "2"})
        assert [m["body"] for m in sub.value] == ["1", "2"]
        version = sub.version
        app.mutation("messages:send", {"author": "nb", "body": "3"})  # in-process write
        assert sub.wait_for_update(version, timeout=10)
        assert [m["body"] for m in sub.value][-1] == "3"
        it = iter(sub)
        first = next(it)
        assert first == sub.value
        b.mutation("messages:send", {"author": "b", "body": "4"})
        assert [m["body"] for m in next(it)][-1] == "4"
        # run() over HTTP also returns once this client's subscriptions caught up.
        a.run("admin:secret")
        assert sub.value[-1] == {"author": "admin", "body": "secret"}
        failing = a.subscribe("errors:boom")
        assert isinstance(failing.error, cn.ConvexFunctionError)
        with pytest.raises(cn.ConvexFunctionError):
            next(iter(failing))
        with pytest.raises(cn.FunctionNotFound):
            a.subscribe("nope:missing")
        sub.unsubscribe()
        failing.unsubscribe()
        assert sub.closed and list(sub) == [sub.value]  # as a Backend subscription: the last value, then stop
        assert a.wait_for_callbacks(10)
    finally:
        a.close()
        b.close()


def test_async_twins_and_async_iteration(server: Any) -> None:
    async def main() -> None:
        with cn.connect(server.url) as remote:
            sub = remote.subscribe("messages:list")
            received = []
            async for value in sub:
                received.append([m["body"] for m in value])
                if len(received) == 3:
                    break
                await remote.mutation_async("messages:send", {"author": "x", "body": str(len(received))})
            assert received == [[], ["1"], ["1", "2"]]
            assert await remote.query_async("messages:list") == [{"author": "x", "body": "1"}, {"author": "x", "body": "2"}]
            assert await remote.action_async("actions:hello", {"name": "a"}) == "hello a"
            with pytest.raises(cn.FunctionNotFound):
                await remote.run_async("admin:secret")
            sub.unsubscribe()

    asyncio.run(main())


def test_identity(server: Any) -> None:
    with cn.connect(server.url, admin_key=server.admin_key) as remote:
        assert remote.query("auth:whoami") is None
        sub = remote.subscribe("auth:whoami")
        remote.set_auth(jwt({"sub": "u1", "name": "Ada"}))
        assert remote.query("auth:whoami") == {"subject": "u1", "name": "Ada"}
        assert sub.wait_for_update(1, timeout=10) and sub.value == {"subject": "u1", "name": "Ada"}
        remote.clear_auth()
        assert remote.query("auth:whoami") is None
        with remote.with_identity({"subject": "u9", "name": "Imp"}) as acting:
            assert acting.query("auth:whoami") == {"subject": "u9", "name": "Imp"}
    with cn.connect(server.url) as no_key:
        with pytest.raises(PermissionError):
            no_key.with_identity({"subject": "x"})


def test_reconnects_resubscribes_and_finishes_queued_mutations(tmp_path: Path) -> None:
    db = str(tmp_path / "app.sqlite3")
    port = free_port()
    app = make_app(db)
    handle = app.serve(port=port, block=False, print_admin_key=False)
    remote = cn.connect(handle.url)
    try:
        sub = remote.subscribe("messages:list")
        remote.mutation("messages:send", {"author": "r", "body": "before"})
        ts_before = sub.ts
        handle.stop()
        app.close()
        # While the server is down, a mutation waits; it completes once the server is back.
        done = threading.Event()
        result: list[Any] = []
        thread = threading.Thread(target=lambda: (result.append(
            remote.mutation("messages:send", {"author": "r", "body": "during"})), done.set()))
        thread.start()
        app = make_app(db)
        handle = app.serve(port=port, block=False, print_admin_key=False)
        assert done.wait(30), "the queued mutation did not complete after the restart"
        assert [m["body"] for m in sub.value] == ["before", "during"]
        assert sub.ts >= ts_before
        remote.mutation("messages:send", {"author": "r", "body": "after"})
        assert [m["body"] for m in sub.value] == ["before", "during", "after"]
        assert messages(app) == [("r", "before"), ("r", "during"), ("r", "after")]
    finally:
        remote.close()
        handle.stop()
        app.close()


def test_connect_to_nothing_fails_clearly() -> None:
    with pytest.raises(ConnectionError, match="Could not connect"):
        cn.connect(f"http://127.0.0.1:{free_port()}", connect_timeout=1)
