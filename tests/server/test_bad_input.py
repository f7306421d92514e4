"""Bad input: malformed JSON, unknown message types, out-of-order versions, oversized frames,
non-Convex values, unknown functions. Each gets a clear error response or a close with a
reason; the server keeps serving everyone else; nothing is written."""

from __future__ import annotations

import asyncio
from typing import Any, Iterator

import httpx
import pytest

import convex_notebook as cn

from server_helpers import RawSync, messages, mods_by_id

LIMIT = 64 * 1024


@pytest.fixture
def small_server(app: cn.Backend) -> Iterator[Any]:
    handle = app.serve(port=0, block=False, print_admin_key=False, max_message_bytes=LIMIT)
    yield handle
    handle.stop()


CONNECT = {"type": "Connect", "sessionId": "bad", "connectionCount": 0, "lastCloseReason": "InitialConnect", "clientTs": 0}

# (frames to send after opening the socket, expected close code, text expected in the reason)
PROTOCOL_VIOLATIONS = [
    (["garbage{"], 1008, "not valid JSON"),
    (["[1, 2]"], 1008, "must be a JSON object"),
    ([{"type": "ModifyQuerySet", "baseVersion": 0, "newVersion": 1, "modifications": []}], 1008,
     "first message must be Connect"),
    ([CONNECT, {"type": "Bogus"}], 1008, "Unknown message type"),
    ([CONNECT, {"noType": 1}], 1008, "no 'type'"),
    ([CONNECT, {"type": "ModifyQuerySet", "baseVersion": 5, "newVersion": 6, "modifications": []}], 1008,
     "InvalidQuerySetVersion"),
    ([CONNECT, {"type": "ModifyQuerySet", "baseVersion": 0, "newVersion": 1, "modifications": [
        {"type": "Add", "queryId": 1, "udfPath": "messages:list", "args": [{}]},
        {"type": "Add", "queryId": 1, "udfPath": "messages:list", "args": [{}]}]}], 1008, "Duplicate query id"),
    ([CONNECT, {"type": "ModifyQuerySet", "baseVersion": 0, "newVersion": 1, "modifications": [
        {"type": "Remove", "queryId": 9}]}], 1008, "unknown query id"),
    ([CONNECT, {"type": "ModifyQuerySet", "baseVersion": 0, "newVersion": 1, "modifications": [
        {"type": "Replace", "queryId": 9}]}], 1008, "modification type"),
    ([CONNECT, {"type": "Authenticate", "baseVersion": 3, "tokenType": "None"}], 1008, "InvalidIdentityVersion"),
    ([CONNECT, {"type": "Authenticate", "baseVersion": 0, "tokenType": "Magic", "value": "x"}], 1008, "tokenType"),
    ([CONNECT, {"type": "Mutation", "udfPath": "messages:send", "args": [{}]}], 1008, "requestId"),
    ([CONNECT, {"type": "Mutation", "requestId": -1, "udfPath": "messages:send", "args": [{}]}], 1008, "out of range"),
    ([CONNECT, {"type": "Mutation", "requestId": 0, "udfPath": 7, "args": [{}]}], 1008, "udfPath"),
    ([CONNECT, CONNECT], 1008, "Connect was sent twice"),
    ([CONNECT | {"maxObservedTimestamp": "AAAAAAAAAEA="}], 1008, "InvalidMaxObservedTimestamp"),
    ([b"\xff\xfe"], 1008, "not UTF-8"),
    ([CONNECT, "x" * (LIMIT + 1)], 1009, ""),
]


def test_protocol_violations_close_the_socket_with_a_reason(app: cn.Backend, small_server: Any) -> None:
    async def main() -> None:
        good = await RawSync(small_server.url).open()
        await good.modify(good.add(0, "messages:list"))
        for n, (frames, code, reason) in enumerate(PROTOCOL_VIOLATIONS):
            bad = await RawSync(small_server.url).open(connect=False)
            for frame in frames:
                await bad.send(frame)
            close = await bad.closed()
            assert close is not None and close.code == code, (frames, close)
            assert reason in close.reason, (frames, close.reason)
            # Everyone else is still served.
            response, transition = await good.mutation(n, "messages:send", {"author": "good", "body": str(n)})
            assert response["success"] and mods_by_id(transition)[0]["value"][-1]["body"] == str(n)
        await good.close()

    asyncio.run(main())
    assert messages(app) == [("good", str(n)) for n in range(len(PROTOCOL_VIOLATIONS))]


BAD_ARGS = [
    [{"value": {"$set": []}}],
    [{"value": {"$integer": "AAA="}}],
    [{"value": {"$float": "AAAAAAAA8D8="}}],  # 1.0 must be a plain number
    [{"value": {"$bytes": "***"}}],
    [{"$weird": 1}],
    [{"value": {"nested": {"$x": 1, "y": 2}}}],
    [{"a": 1}, {"b": 2}],
    ["not an object"],
    7,
]


def test_bad_values_and_unknown_functions_fail_the_call_not_the_connection(app: cn.Backend, small_server: Any) -> None:
    async def main() -> None:
        c = await RawSync(small_server.url).open()
        await c.modify(c.add(0, "messages:list"))
        for i, args in enumerate(BAD_ARGS):
            await c.send({"type": "Mutation", "requestId": i, "udfPath": "values:store", "args": args})
            response = await c.recv_type("MutationResponse")
            assert response["success"] is False and response["result"], args
        base = len(BAD_ARGS)
        await c.send({"type": "Mutation", "requestId": base, "udfPath": "nope:missing", "args": [{}]})
        response = await c.recv_type("MutationResponse")
        assert response["success"] is False and "Could not find public function" in response["result"]
        await c.send({"type": "Action", "requestId": base + 1, "udfPath": "actions:hello", "args": [{"$x": 1}]})
        response = await c.recv_type("ActionResponse")
        assert response["success"] is False
        t = await c.modify(c.add(1, "messages:list", {"$set": 1}), c.add(2, "values:latest", {"k": {"$integer": "x"}}))
        assert {m["type"] for m in t["modifications"]} == {"QueryFailed"}
        # The same socket still works.
        response, transition = await c.mutation(base + 2, "messages:send", {"author": "ok", "body": "1"})
        assert response["success"]
        await c.close()

    asyncio.run(main())
    assert messages(app) == [("ok", "1")]
    assert app.run(lambda ctx: ctx.db.query("values").collect()) == []


def test_http_bad_input(app: cn.Backend, small_server: Any) -> None:
    url = small_server.url

    def check(response: httpx.Response, status: int, code: str) -> None:
        assert response.status_code == status, response.text
        body = response.json()
        assert body["code"] == code and body["message"], body

    check(httpx.post(url + "/api/mutation", content=b"{not json"), 400, "BadJsonBody")
    check(httpx.post(url + "/api/mutation", json=[1, 2]), 400, "BadJsonBody")
    check(httpx.post(url + "/api/mutation", json={"args": {}}), 400, "BadJsonBody")
    for args in ({"value": {"$set": []}}, {"value": {"$integer": "AAA="}}, {"$x": 1}, [{"a": 1}, {"b": 2}], "text"):
        check(httpx.post(url + "/api/mutation", json={"path": "values:store", "args": args}), 400, "BadConvexValue")
    check(httpx.post(url + "/api/mutation", json={"path": "values:store", "args": {}, "format": "xml"}), 400, "BadFormat")
    check(httpx.post(url + "/api/mutation", json={"path": "values:store", "args": {"value": "x" * LIMIT}}),
          413, "PayloadTooLarge")
    check(httpx.post(url + "/api/query_batch", json={"queries": "no"}), 400, "BadJsonBody")
    check(httpx.post(url + "/api/query_at_ts", json={"path": "messages:list", "ts": "short"}), 400, "BadJsonBody")
    unknown = httpx.post(url + "/api/mutation", json={"path": "nope:missing", "args": {}})
    assert unknown.status_code == 200 and unknown.json()["status"] == "error"
    # Still serving, and nothing was written.
    ok = httpx.post(url + "/api/mutation", json={"path": "messages:send", "args": {"author": "ok", "body": "1"}})
    assert ok.json()["status"] == "success"
    assert messages(app) == [("ok", "1")]
    assert app.run(lambda ctx: ctx.db.query("values").collect()) == []


# (method, path, query parameters): each a 400 naming the parameter, never a 500.
BAD_QUERY_PARAMETERS = [
    ("GET", "/api/document_deltas", {"cursor": "9" * 30}),  # past any date the clock can spell
    ("GET", "/api/list_snapshot", {"snapshot": "9" * 30}),
    ("GET", "/api/stream_function_logs", {"cursor": "inf"}),
    ("GET", "/api/stream_function_logs", {"cursor": "1e400"}),
    ("GET", "/api/stream_function_logs", {"cursor": "0", "wait": "soon"}),
    ("GET", "/api/export/zip/\u00b2", {}),  # a digit to str.isdigit, not to int()
    ("POST", "/api/import/upload_part", {"uploadToken": "x", "partNumber": "\u00b2"}),
]


@pytest.mark.parametrize("method, path, params", BAD_QUERY_PARAMETERS)
def test_bad_query_parameters_are_a_400_not_a_500(app: cn.Backend, server: Any, method: str, path: str,
                                                  params: dict) -> None:
    headers = {"Authorization": f"Convex {server.admin_key}"}
    r = httpx.request(method, server.url + path, params=params, headers=headers)
    assert 400 <= r.status_code < 500, (r.status_code, r.text)
    assert r.json()["code"] != "InternalServerError" and r.json()["message"], r.text
    ok = httpx.post(server.url + "/api/mutation", json={"path": "messages:send", "args": {"author": "ok", "body": "1"}})
    assert ok.json()["status"] == "success"  # still serving


def test_a_query_removed_and_added_again_in_one_modification_stays_live(app: cn.Backend, server: Any) -> None:
    """Add, Remove, Add of one queryId in one ModifyQuerySet: applied in order, the query set
    holds the last Add, kept current (it was left unsubscribed, and the first Add's
    subscription leaked)."""
    hub = app.subscription_hub

    async def main() -> None:
        c = await RawSync(server.url).open()
        t = await c.modify(c.add(1, "messages:list"), {"type": "Remove", "queryId": 1}, c.add(1, "messages:list"))
        assert [(m["type"], m["queryId"]) for m in t["modifications"]][-1] == ("QueryUpdated", 1)
        assert hub.subscription_count == 1
        response, transition = await c.mutation(0, "messages:send", {"author": "a", "body": "1"})
        assert response["success"] and mods_by_id(transition)[1]["value"][-1]["body"] == "1"
        await c.close()
        for _ in range(200):  # the server releases the socket's queries once it sees the close
            if hub.subscription_count == 0:
                break
            await asyncio.sleep(0.05)
        assert hub.subscription_count == 0  # none leaked

    asyncio.run(main())
