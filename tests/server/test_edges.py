"""Edge hardening (issue 14): input nested too deep, oversize bodies, CORS preflights, mutation
replays that do not match, client timestamps, the database file's mode. Each bad input gets a
clear refusal, changes nothing, and the server keeps serving."""

from __future__ import annotations

import asyncio
import base64
import os
import stat
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

import convex_notebook as cn

from server_helpers import RawSync, jwt, make_app, messages, mods_by_id

DEEP = 10_000


def deep_array(depth: int = DEEP) -> str:
    return "[" * depth + "]" * depth


def deep_object(depth: int = DEEP) -> str:
    return '{"a":' * depth + "1" + "}" * depth


# -- JSON nested too deep ---------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/query", "/api/mutation", "/api/action", "/api/function",
                                  "/api/run/messages/send", "/api/query_batch"])
def test_deep_json_bodies_are_a_400(app: cn.Backend, server: Any, path: str) -> None:
    for text in (deep_array(), '{"path": "messages:send", "args": ' + deep_object() + "}"):
        r = httpx.post(server.url + path, content=text, headers={"Content-Type": "application/json"})
        assert r.status_code == 400, (path, r.status_code, r.text[:200])
        assert r.json()["code"] == "BadJsonBody" and "nested too deeply" in r.json()["message"]
    # A value nested deeper than Convex allows (64) but parseable: refused as a value.
    shallow_enough = '{"path": "messages:send", "args": {"author": "a", "body": ' + deep_array(200) + "}}"
    r = httpx.post(server.url + "/api/mutation", content=shallow_enough)
    assert r.status_code == 400 and "too nested" in r.json()["message"]
    assert messages(app) == []
    r = httpx.post(server.url + "/api/mutation", json={"path": "messages:send", "args": {"author": "a", "body": "b"}})
    assert r.json()["status"] == "success"  # the server is fine
    assert messages(app) == [("a", "b")]


def test_deep_json_in_a_get_query_and_an_admin_import(app: cn.Backend, server: Any) -> None:
    r = httpx.get(server.url + "/api/query", params={"path": "messages:list", "args": deep_array(3000)})
    assert r.status_code == 400 and "nested too deeply" in r.json()["message"]
    r = httpx.post(server.url + "/api/import", params={"tableName": "messages", "format": "jsonLines"},
                   content=deep_object(), headers={"Authorization": f"Convex {server.admin_key}"})
    assert r.status_code == 400, r.text[:300]
    assert messages(app) == []


def test_deep_json_frames_close_with_a_protocol_error_not_1011(app: cn.Backend, server: Any) -> None:
    async def main() -> None:
        bad = await RawSync(server.url).open()
        await bad.send(deep_array())
        close = await bad.closed()
        assert close.code == 1008 and "nested too deeply" in close.reason
        bad = await RawSync(server.url).open()
        await bad.send('{"type": "Mutation", "requestId": 0, "udfPath": "messages:send", "args": [' + deep_object() + "]}")
        close = await bad.closed()
        assert close.code == 1008 and "nested too deeply" in close.reason
        good = await RawSync(server.url).open()  # everyone else is still served
        t = await good.modify(good.add(0, "messages:list"))
        assert mods_by_id(t)[0]["value"] == []
        await good.close()

    asyncio.run(main())
    assert messages(app) == []


def test_a_token_nested_too_deep_is_refused_not_a_crash(app: cn.Backend, server: Any) -> None:
    def part(text: str) -> str:
        return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")

    token = part('{"alg": "RS256"}') + "." + part(deep_object()) + ".sig"
    r = httpx.post(server.url + "/api/query", json={"path": "messages:list", "args": {}},
                   headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401 and "Could not parse as id token" in r.json()["message"]

    async def main() -> None:
        c = await RawSync(server.url).open()
        await c.send({"type": "Authenticate", "baseVersion": 0, "tokenType": "User", "value": token})
        error = await c.recv_type("AuthError")
        assert "Could not parse as id token" in error["error"]
        assert (await c.closed()).code == 1000

    asyncio.run(main())


# -- oversize bodies --------------------------------------------------------------------------

LIMIT = 64 * 1024


@pytest.fixture
def small_server(app: cn.Backend) -> Iterator[Any]:
    @app.http.route(path="/hook", method="POST")
    def hook(ctx: Any, request: cn.HttpRequest) -> cn.HttpResponse:
        ctx.run_mutation("messages:send", {"author": "hook", "body": str(len(request.body))})
        return cn.HttpResponse("ok")

    handle = app.serve(port=0, block=False, print_admin_key=False, max_message_bytes=LIMIT)
    yield handle
    handle.stop()


def test_oversize_bodies_are_a_413_everywhere(app: cn.Backend, small_server: Any) -> None:
    big = b"x" * (LIMIT + 1)

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        for i in range(0, len(big), 8192):
            yield big[i:i + 8192]

    for path in ("/hook", "/api/mutation", "/api/query", "/api/run/messages/send"):
        for body in (big, chunks()):
            r = httpx.post(small_server.url + path, content=body)
            assert r.status_code == 413, (path, r.status_code, r.text[:200])
            assert r.json()["code"] == "PayloadTooLarge" and str(LIMIT) in r.json()["message"]
    assert messages(app) == []
    assert httpx.post(small_server.url + "/hook", content=b"small").text == "ok"
    assert messages(app) == [("hook", "5")]


@pytest.mark.slow
def test_a_17_mib_body_to_an_http_action_is_a_413(app: cn.Backend) -> None:
    """The issue's probe, at the default limit (16 MiB)."""
    @app.http.route(path="/upload", method="POST")
    def upload(ctx: Any, request: cn.HttpRequest) -> str:
        return "accepted"

    with app.serve(port=0, block=False, print_admin_key=False) as handle:
        r = httpx.post(handle.url + "/upload", content=b"\0" * (17 * 1024 * 1024), timeout=60)
        assert r.status_code == 413
        assert httpx.post(handle.url + "/upload", content=b"fine").text == "accepted"


# -- CORS -------------------------------------------------------------------------------------


def test_cors_preflight_and_answers_on_the_http_api(server: Any) -> None:
    origin = "http://localhost:5173"
    r = httpx.options(server.url + "/api/mutation", headers={
        "Origin": origin, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type, authorization, convex-client",
    })
    assert r.status_code == 200, r.text
    assert r.headers["access-control-allow-origin"] == "*"
    assert "POST" in r.headers["access-control-allow-methods"]
    allowed = r.headers["access-control-allow-headers"].lower()
    for header in ("content-type", "authorization", "convex-client"):
        assert header in allowed
    r = httpx.post(server.url + "/api/query", json={"path": "messages:list", "args": {}}, headers={"Origin": origin})
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "*"
    # Errors carry it too (so the browser app can read them).
    r = httpx.post(server.url + "/api/query", content=b"{", headers={"Origin": origin})
    assert r.status_code == 400 and r.headers["access-control-allow-origin"] == "*"


def test_http_actions_answer_their_own_options(app: cn.Backend, server: Any) -> None:
    @app.http.route(path="/cors", method="OPTIONS")
    def preflight(ctx: Any, request: cn.HttpRequest) -> cn.HttpResponse:
        return cn.HttpResponse("", status=204, headers={"Access-Control-Allow-Origin": "https://mine.example"})

    r = httpx.options(server.url + "/cors", headers={"Origin": "https://x", "Access-Control-Request-Method": "POST"})
    assert r.status_code == 204 and r.headers["access-control-allow-origin"] == "https://mine.example"


# -- mutation replays -------------------------------------------------------------------------


def test_a_replay_must_be_the_same_call_by_the_same_identity(app: cn.Backend, server: Any) -> None:
    async def main() -> None:
        first = await RawSync(server.url, session_id="shared").open()
        original, _ = await first.mutation(0, "messages:send", {"author": "A", "body": "first"})
        assert original["success"]
        # Another connection reusing the session id and request id for another call: refused,
        # not answered with the first caller's result.
        second = await RawSync(server.url, session_id="shared").open()
        response, _ = await second.mutation(0, "messages:send", {"author": "B", "body": "second"})
        assert not response["success"] and "already used for a different call" in response["result"]
        # The same call by another identity: refused too.
        third = await RawSync(server.url, session_id="shared").open()
        await third.send({"type": "Authenticate", "baseVersion": 0, "tokenType": "User", "value": jwt({"sub": "u"})})
        await third.recv_type("Transition")
        response, _ = await third.mutation(0, "messages:send", {"author": "A", "body": "first"})
        assert not response["success"] and "different call" in response["result"]
        # A true replay (same session, identity, function and arguments): the stored result.
        again = await RawSync(server.url, session_id="shared").open(connection_count=1)
        replay, _ = await again.mutation(0, "messages:send", {"author": "A", "body": "first"})
        assert replay == original
        for c in (first, second, third, again):
            await c.close()

    asyncio.run(main())
    assert messages(app) == [("A", "first")]


# -- files ------------------------------------------------------------------------------------


def test_database_files_are_created_owner_only(tmp_path: Path) -> None:
    db = tmp_path / "app.sqlite3"
    app = cn.Backend(str(db), echo_logs=False)
    try:
        app.run(lambda ctx: ctx.db.insert("t", {"x": 1}))
        for name in (db, Path(str(db) + "-wal")):
            assert stat.S_IMODE(os.stat(name).st_mode) == 0o600, name
    finally:
        app.close()


def test_serving_an_existing_readable_database_makes_it_private(tmp_path: Path) -> None:
    db = tmp_path / "old.sqlite3"
    db.touch(mode=0o644)
    os.chmod(db, 0o644)
    app = make_app(str(db))
    try:
        with app.serve(port=0, block=False, print_admin_key=False):
            assert stat.S_IMODE(os.stat(db).st_mode) == 0o600
    finally:
        app.close()
