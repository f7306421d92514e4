"""The WebSocket sync protocol (PROTOCOL.md §3) frame by frame, on a real server."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import convex_notebook as cn

from server_helpers import RawSync, free_port, jwt, make_app, messages, mods_by_id, ts_of


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_query_set_transitions(server: Any) -> None:
    async def main() -> None:
        c = await RawSync(server.url).open()
        t = await c.modify(c.add(0, "messages:list"), c.add(1, "values:sample"))
        assert t["startVersion"] == {"querySet": 0, "identity": 0, "ts": "AAAAAAAAAAA="}
        assert t["endVersion"]["querySet"] == 1 and t["endVersion"]["identity"] == 0
        mods = mods_by_id(t)
        assert mods[0] == {"type": "QueryUpdated", "queryId": 0, "value": [], "logLines": [], "journal": None}
        assert mods[1]["value"]["int64"] == {"$integer": "+/////////8="}
        t = await c.modify({"type": "Remove", "queryId": 1})
        assert t["modifications"] == [{"type": "QueryRemoved", "queryId": 1}]
        assert t["endVersion"]["querySet"] == 2
        # The JS and Rust clients spell paths differently: all mean messages:list.
        t = await c.modify(c.add(2, "messages.js:list"), c.add(3, "errors:boom"), c.add(4, "nope:missing"))
        mods = mods_by_id(t)
        assert mods[2]["type"] == "QueryUpdated" and mods[2]["value"] == []
        assert mods[3]["type"] == "QueryFailed" and "boom" in mods[3]["errorMessage"]
        assert mods[3]["logLines"] == [] and "journal" in mods[3]
        assert mods[4]["type"] == "QueryFailed" and "Could not find public function" in mods[4]["errorMessage"]
        await c.close()

    run(main())


def test_mutation_response_then_transition_with_only_changed_queries(app: cn.Backend, server: Any) -> None:
    async def main() -> None:
        writer = await RawSync(server.url).open()
        watcher = await RawSync(server.url).open()
        await writer.modify(writer.add(0, "messages:list"))
        await watcher.modify(watcher.add(0, "values:latest"), watcher.add(1, "messages:list"))
        response, transition = await writer.mutation(0, "messages:send", {"author": "w", "body": "1"})
        assert response["type"] == "MutationResponse" and response["success"] is True
        assert response["requestId"] == 0 and isinstance(response["result"], str)
        assert response["logLines"] == ["[LOG] send from w"]
        # The Transition after the response reaches the commit and holds the new result.
        assert ts_of(transition["endVersion"]["ts"]) >= ts_of(response["ts"])
        assert mods_by_id(transition)[0]["value"] == [{"author": "w", "body": "1"}]
        # The watcher hears about messages:list only: values:latest did not change.
        t = await watcher.recv_type("Transition")
        assert set(mods_by_id(t)) == {1}
        assert ts_of(t["endVersion"]["ts"]) == ts_of(response["ts"])
        # A mutation that changes nothing the writer watches still gets a Transition past it.
        response, transition = await writer.mutation(1, "values:store", {"value": 1})
        assert transition["modifications"] == []
        assert ts_of(transition["endVersion"]["ts"]) >= ts_of(response["ts"])
        t = await watcher.recv_type("Transition")
        assert set(mods_by_id(t)) == {0} and mods_by_id(t)[0]["value"] == 1.0
        # A commit made in-process (the notebook) reaches both.
        app.mutation("messages:send", {"author": "notebook", "body": "2"})
        assert mods_by_id(await writer.recv_type("Transition"))[0]["value"][-1]["body"] == "2"
        assert mods_by_id(await watcher.recv_type("Transition"))[1]["value"][-1]["body"] == "2"
        # Failures: the response says why; the Transition still follows.
        response, _ = await writer.mutation(2, "errors:convexError")
        assert response["success"] is False and response["ts"] is None
        assert response["errorData"] == {"code": 42.0, "big": {"$integer": "BwAAAAAAAAA="}, "why": "nope"}
        response, _ = await writer.mutation(3, "admin:secret")
        assert response["success"] is False and "Could not find public function" in response["result"]
        await writer.close()
        await watcher.close()

    run(main())
    assert messages(app) == [("w", "1"), ("notebook", "2")]


def test_action_and_ping(server: Any) -> None:
    async def main() -> None:
        c = await RawSync(server.url).open()
        await c.send({"type": "Action", "requestId": 0, "udfPath": "actions:hello", "args": [{"name": "a"}]})
        response = await c.recv_type("ActionResponse")
        assert response == {"type": "ActionResponse", "requestId": 0, "success": True, "result": "hello a",
                            "logLines": []}
        # Idle: the server sends {"type":"Ping"} (every 0.5 s in these tests, 15 s by default).
        assert (await c.recv(pings=True))["type"] == "Ping"
        await c.close()

    run(main())


def test_replayed_mutation_is_not_applied_twice(app: cn.Backend, server: Any) -> None:
    async def main() -> None:
        first = await RawSync(server.url, session_id="session-A").open()
        await first.modify(first.add(0, "messages:list"))
        response, _ = await first.mutation(0, "messages:send", {"author": "js", "body": "once"})
        await first.close()
        # Reconnect with the same session: the JS client re-sends the mutation, same requestId.
        again = await RawSync(server.url, session_id="session-A").open(connection_count=1,
                                                                        max_observed=ts_of(response["ts"]))
        await again.modify(again.add(0, "messages:list"))
        replay, transition = await again.mutation(0, "messages:send", {"author": "js", "body": "once"})
        assert replay == response
        assert ts_of(transition["endVersion"]["ts"]) >= ts_of(response["ts"])
        # Another session's request 0 is a different mutation.
        other = await RawSync(server.url, session_id="session-B").open()
        await other.mutation(0, "messages:send", {"author": "js", "body": "twice"})
        for c in (again, other):
            await c.close()

    run(main())
    assert messages(app) == [("js", "once"), ("js", "twice")]


def test_authenticate_bumps_identity_and_reruns_queries(server: Any) -> None:
    async def main() -> None:
        c = await RawSync(server.url).open()
        t = await c.modify(c.add(0, "auth:whoami"))
        assert mods_by_id(t)[0]["value"] is None
        await c.send({"type": "Authenticate", "baseVersion": 0, "tokenType": "User",
                      "value": jwt({"sub": "u1", "name": "Ada"})})
        t = await c.recv_type("Transition")
        assert t["endVersion"]["identity"] == 1
        assert mods_by_id(t)[0]["value"] == {"subject": "u1", "name": "Ada"}
        # Admin key with an impersonated user.
        await c.send({"type": "Authenticate", "baseVersion": 1, "tokenType": "Admin", "value": server.admin_key,
                      "impersonating": {"subject": "u2", "name": "Bob"}})
        t = await c.recv_type("Transition")
        assert t["endVersion"]["identity"] == 2 and mods_by_id(t)[0]["value"] == {"subject": "u2", "name": "Bob"}
        await c.send({"type": "Authenticate", "baseVersion": 2, "tokenType": "None"})
        t = await c.recv_type("Transition")
        assert t["endVersion"]["identity"] == 3 and mods_by_id(t)[0]["value"] is None
        # A refused token: AuthError, then the socket closes.
        await c.send({"type": "Authenticate", "baseVersion": 3, "tokenType": "Admin", "value": "wrong"})
        error = await c.recv_type("AuthError")
        assert error["baseVersion"] == 3 and "admin key" in error["error"]
        assert (await c.closed()) is not None

    run(main())


def test_transitions_never_go_backwards_under_concurrent_writers(app: cn.Backend, server: Any) -> None:
    async def writer(n: int) -> None:
        c = await RawSync(server.url).open()
        for i in range(15):
            response, transition = await c.mutation(i, "messages:send", {"author": f"w{n}", "body": str(i)})
            assert ts_of(transition["endVersion"]["ts"]) >= ts_of(response["ts"])
        await c.close()

    async def main() -> None:
        watcher = await RawSync(server.url).open()
        await watcher.modify(watcher.add(0, "messages:list"))
        await asyncio.gather(*(writer(n) for n in range(4)))
        # RawSync.recv checks each startVersion == the previous endVersion and ts monotonic.
        while True:
            t = await watcher.recv_type("Transition")
            if len(mods_by_id(t).get(0, {}).get("value", [])) == 60:
                break
        await watcher.close()

    run(main())
    assert len(messages(app)) == 60


def test_timestamps_never_go_backwards_across_restarts(tmp_path: Path) -> None:
    db = str(tmp_path / "app.sqlite3")
    port = free_port()

    async def session(url: str, observed: int | None) -> int:
        c = await RawSync(url).open(connection_count=1 if observed else 0, max_observed=observed)
        t = await c.modify(c.add(0, "messages:list"))
        if observed is not None:
            assert ts_of(t["endVersion"]["ts"]) >= observed
        response, transition = await c.mutation(0, "messages:send", {"author": "a", "body": "b"})
        if observed is not None:
            assert ts_of(response["ts"]) > observed
        await c.close()
        return ts_of(transition["endVersion"]["ts"])

    seen = None
    for _ in range(3):
        app = make_app(db)
        handle = app.serve(port=port, block=False, print_admin_key=False)
        seen = run(session(handle.url, seen))
        handle.stop()
        app.close()


def test_a_client_cannot_push_timestamps_past_the_servers_clock(app: cn.Backend, server: Any) -> None:
    """maxObservedTimestamp is clamped to our clock: an anonymous client claiming to have seen
    a timestamp a minute ahead does not push later commits (anyone's) into the future."""
    ahead = time.time_ns() + 60 * 1_000_000_000

    async def main() -> int:
        c = await RawSync(server.url).open(connection_count=1, max_observed=ahead)
        await c.modify(c.add(0, "messages:list"))  # the connection works
        response, _ = await c.mutation(0, "messages:send", {"author": "a", "body": "b"})
        await c.close()
        return ts_of(response["ts"])

    ts = run(main())
    after = time.time_ns()
    assert ts <= after < ahead
    app.mutation("messages:send", {"author": "c", "body": "d"})  # someone else's commit
    assert app.database.last_ts <= time.time_ns() < ahead
    assert messages(app) == [("a", "b"), ("c", "d")]


def test_an_admin_session_reaches_internal_and_system_functions_live(app: cn.Backend, server: Any) -> None:
    """As the CLI (`npx convex data`) and dashboards do: an admin-authenticated socket may
    subscribe to system queries and run internal functions; system queries stay live."""
    async def main() -> None:
        anonymous = await RawSync(server.url).open()
        t = await anonymous.modify(anonymous.add(0, "_system/cli/tables", {}))
        assert t["modifications"][0]["type"] == "QueryFailed"
        response, _ = await anonymous.mutation(0, "admin:secret")
        assert response["success"] is False
        c = await RawSync(server.url).open()
        await c.send({"type": "Authenticate", "baseVersion": 0, "tokenType": "Admin", "value": server.admin_key})
        await c.recv_type("Transition")
        t = await c.modify(c.add(0, "_system/cli/tables", {"paginationOpts": {"numItems": 100, "cursor": None}}),
                           c.add(1, "_system/cli/tableSize", {"tableName": "messages"}))
        values = mods_by_id(t)
        assert values[0]["value"]["page"] == [] and values[1]["value"] == 0
        response, t = await c.mutation(1, "admin:secret")  # internal, over the socket
        assert response["success"] is True, response
        values = mods_by_id(t)  # the new table and its count arrive with the write
        assert values[0]["value"]["page"] == [{"name": "messages"}] and values[1]["value"] == 1
        app.mutation("messages:send", {"author": "py", "body": "x"})
        t = await c.recv_type("Transition")
        assert mods_by_id(t) == {1: mods_by_id(t)[1]} and mods_by_id(t)[1]["value"] == 2  # only the count changed
        for s in (anonymous, c):
            await s.close()

    run(main())
    assert messages(app) == [("admin", "secret"), ("py", "x")]
