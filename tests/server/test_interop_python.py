"""The official PyPI `convex` client (ConvexClient: query, mutation, action, subscribe,
set_auth) against our server, started with the `convex-notebook serve` command.

The server runs in another process: the official client blocks inside Rust while holding
the GIL (PROTOCOL.md §4), which would freeze a server thread in this process.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Iterator

import convex  # the official client: a dev dependency (pip install -e ".[dev]")
import pytest

import convex_notebook as cn

from server_helpers import ServerProcess, free_port, jwt

pytestmark = pytest.mark.interop
@pytest.fixture
def served(tmp_path: Path) -> Iterator[ServerProcess]:
    server = ServerProcess(tmp_path / "app.sqlite3", free_port()).start()
    yield server
    server.stop()


def stored_values(db: Path) -> list[Any]:
    app = cn.Backend(str(db), echo_logs=False)
    try:
        return [d["value"] for d in app.run(lambda ctx: ctx.db.query("values").collect())]
    finally:
        app.close()


def test_query_mutation_action_and_values(served: ServerProcess) -> None:
    client = convex.ConvexClient(served.url)
    assert client.query("messages:list") == []
    sent = {
        "int64": convex.ConvexInt64(5), "int64_min": convex.ConvexInt64(-(2**63)), "bytes": b"\x00\x01\xff",
        "nan": math.nan, "neg_zero": -0.0, "inf": math.inf, "ninf": -math.inf, "whole": 3, "text": "héllo ☃",
    }
    back = client.mutation("values:store", {"value": sent})
    assert back["int64"] == convex.ConvexInt64(5) and isinstance(back["int64"], convex.ConvexInt64)
    assert back["int64_min"] == convex.ConvexInt64(-(2**63))
    assert back["bytes"] == b"\x00\x01\xff"
    assert math.isnan(back["nan"]) and math.copysign(1.0, back["neg_zero"]) == -1.0
    assert back["inf"] == math.inf and back["ninf"] == -math.inf
    assert back["whole"] == 3.0 and back["text"] == "héllo ☃"
    sample = client.query("values:sample")
    assert sample["int64"] == convex.ConvexInt64(-5)
    assert sample["int64_max"] == convex.ConvexInt64(2**63 - 1)
    assert sample["nested"] == {"list": [convex.ConvexInt64(1), b"\x07", None, True]}
    assert math.isnan(sample["nan"]) and math.copysign(1.0, sample["neg_zero"]) == -1.0
    assert client.action("actions:hello", {"name": "py"}) == "hello py"
    # ConvexError data arrives intact; the failed mutation wrote nothing.
    with pytest.raises(convex.ConvexError) as info:
        client.mutation("errors:convexError")
    assert info.value.data == {"code": 42.0, "big": convex.ConvexInt64(7), "why": "nope"}
    with pytest.raises(Exception, match="boom"):
        client.query("errors:boom")
    with pytest.raises(Exception, match="Could not find public function"):
        client.mutation("admin:secret")
    assert client.query("messages:list") == []  # neither the ConvexError nor the internal call wrote
    served.stop()
    value = stored_values(served.db)[-1]
    assert value["int64"] == cn.Int64(5) and type(value["int64"]) is cn.Int64
    assert value["int64_min"] == cn.Int64(-(2**63))
    assert value["bytes"] == b"\x00\x01\xff" and math.isnan(value["nan"])
    assert math.copysign(1.0, value["neg_zero"]) == -1.0 and value["whole"] == 3.0


def test_subscribe_sees_another_clients_mutation(served: ServerProcess) -> None:
    watcher = convex.ConvexClient(served.url)
    writer = convex.ConvexClient(served.url)
    sub = watcher.subscribe("messages:list")
    assert next(sub) == []
    writer.mutation("messages:send", {"author": "py-writer", "body": "hello"})
    assert next(sub) == [{"author": "py-writer", "body": "hello"}]
    watcher.mutation("messages:send", {"author": "py-watcher", "body": "again"})
    assert next(sub)[-1] == {"author": "py-watcher", "body": "again"}
    sub.unsubscribe()


def test_set_auth_identity(served: ServerProcess) -> None:
    client = convex.ConvexClient(served.url)
    assert client.query("auth:whoami") is None
    # A token signed by the provider the server trusts (--auth-config, a customJwt provider).
    client.set_auth(jwt({"sub": "user-1", "name": "Ada"}))
    assert client.query("auth:whoami") == {"subject": "user-1", "name": "Ada"}
    client.clear_auth()
    assert client.query("auth:whoami") is None


def test_reconnects_after_a_server_restart(served: ServerProcess) -> None:
    client = convex.ConvexClient(served.url)
    sub = client.subscribe("messages:list")
    assert next(sub) == []
    client.mutation("messages:send", {"author": "py", "body": "before"})
    assert next(sub) == [{"author": "py", "body": "before"}]
    served.stop()
    served.start()  # same port, same database: the client reconnects and re-subscribes
    client.mutation("messages:send", {"author": "py", "body": "after"})
    seen = next(sub)
    while seen != [{"author": "py", "body": "before"}, {"author": "py", "body": "after"}]:
        assert seen == [{"author": "py", "body": "before"}], seen  # an unchanged replay is allowed
        seen = next(sub)
