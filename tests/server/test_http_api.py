"""The HTTP API (PROTOCOL.md §2) on a real uvicorn server: every endpoint, both formats,
errors as the protocol defines them, admin and user auth."""

from __future__ import annotations

import base64
import math
import struct
import time
from typing import Any

import httpx

import convex_notebook as cn
from convex_notebook.values import from_json

from server_helpers import forged, jwt, messages


def post(server: Any, path: str, body: Any, **kw: Any) -> httpx.Response:
    return httpx.post(server.url + path, json=body, timeout=30, **kw)


def admin(server: Any) -> dict:
    return {"Authorization": f"Convex {server.admin_key}"}


def test_query_mutation_action_encoded(app: cn.Backend, server: Any) -> None:
    r = post(server, "/api/mutation", {"path": "messages:send", "args": [{"author": "a", "body": "b"}],
                                        "format": "convex_encoded_json"})
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "success" and isinstance(body["value"], str)
    assert body["logLines"] == ["[LOG] send from a"]
    assert int(r.headers["x-convex-notebook-ts"]) > 0
    r = post(server, "/api/query", {"path": "messages:list", "args": {}, "format": "convex_encoded_json"})
    assert r.json() == {"status": "success", "value": [{"author": "a", "body": "b"}], "logLines": []}
    r = post(server, "/api/action", {"path": "actions:hello", "args": {"name": "x"}, "format": "convex_json"})
    assert r.json()["value"] == "hello x"
    r = post(server, "/api/query", {"path": "values:sample", "args": [{}], "format": "convex_encoded_json"})
    value = from_json(r.json()["value"])
    assert value["int64"] == cn.Int64(-5) and value["bytes"] == b"\x00\x01\xff"
    assert math.isnan(value["nan"]) and math.copysign(1, value["neg_zero"]) == -1 and value["ninf"] == -math.inf
    assert r.json()["value"]["nan"] == {"$float": "AAAAAAAA+H8="}
    assert r.json()["value"]["neg_zero"] == {"$float": "AAAAAAAAAIA="}
    assert r.json()["value"]["int64"] == {"$integer": base64.b64encode(struct.pack("<q", -5)).decode()}


def test_clean_json_format_is_the_default(server: Any) -> None:
    for fmt in (None, "json", "convex_clean_json"):
        body: dict = {"path": "values:sample", "args": {}}
        if fmt:
            body["format"] = fmt
        value = post(server, "/api/query", body).json()["value"]
        assert value["int64"] == "-5" and value["int64_max"] == str(2**63 - 1)
        assert value["bytes"] == base64.b64encode(b"\x00\x01\xff").decode()
        assert value["nan"] == "NaN" and value["inf"] == "Infinity" and value["ninf"] == "-Infinity"
        assert value["whole"] == 3.0 and value["text"] == "héllo ☃"


def test_run_function_and_get(app: cn.Backend, server: Any) -> None:
    r = post(server, "/api/run/messages/send", {"args": {"author": "run", "body": "x"}})
    assert r.json()["status"] == "success"
    assert post(server, "/api/run/messages/list", {}).json()["value"] == [{"author": "run", "body": "x"}]
    r = httpx.get(server.url + "/api/query", params={"path": "messages:list", "args": "{}"})
    assert r.json()["value"] == [{"author": "run", "body": "x"}]
    # /api/function: any kind by path; internal functions only with the admin key.
    r = post(server, "/api/function", {"path": "admin:secret", "args": {}})
    assert r.status_code == 200 and r.json()["status"] == "error"
    assert "Could not find public function for 'admin:secret'" in r.json()["errorMessage"]
    assert messages(app) == [("run", "x")]
    r = post(server, "/api/function", {"path": "admin:secret", "args": {}, "format": "convex_encoded_json"},
             headers=admin(server))
    assert r.json() == {"status": "success", "value": "internal ok", "logLines": []}
    # The admin key in a URL is refused (URLs end up in logs): a header is the way.
    r = post(server, "/api/run/admin/secret", {"args": {}}, params={"adminKey": server.admin_key})
    assert r.status_code == 401 and "?adminKey=" in r.json()["message"] and "Authorization: Convex" in r.json()["message"]
    # The public endpoints refuse internal functions without the key, too.
    r = post(server, "/api/mutation", {"path": "admin:secret", "args": {}})
    assert r.json()["status"] == "error"
    assert messages(app) == [("run", "x"), ("admin", "secret")]


def test_admin_key_in_url_only_when_allowed(app: cn.Backend) -> None:
    with app.serve(port=0, block=False, print_admin_key=False, allow_admin_key_in_url=True) as handle:
        r = post(handle, "/api/run/admin/secret", {"args": {}}, params={"adminKey": handle.admin_key})
        assert r.json()["status"] == "success"
        r = post(handle, "/api/run/admin/secret", {"args": {}}, params={"adminKey": "wrong"})
        assert r.status_code == 401
    assert messages(app) == [("admin", "secret")]


def test_function_errors(app: cn.Backend, server: Any) -> None:
    r = post(server, "/api/mutation", {"path": "errors:convexError", "args": {}, "format": "convex_encoded_json"})
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "error" and body["errorMessage"].startswith("Uncaught ConvexError")
    assert from_json(body["errorData"]) == {"code": 42.0, "big": cn.Int64(7), "why": "nope"}
    assert messages(app) == []  # rolled back
    r = post(server, "/api/mutation", {"path": "errors:convexError", "args": {}, "format": "json"})
    assert r.json()["errorData"] == {"code": 42.0, "big": "7", "why": "nope"}
    body = post(server, "/api/query", {"path": "errors:boom", "args": {}}).json()
    assert body["status"] == "error" and "boom" in body["errorMessage"] and "errorData" not in body
    body = post(server, "/api/query", {"path": "messages:send", "args": {"author": "a", "body": "b"}}).json()
    assert body["status"] == "error" and "is a mutation, not a query" in body["errorMessage"]
    body = post(server, "/api/mutation", {"path": "messages:send", "args": {"author": 1}}).json()
    assert body["status"] == "error" and "ArgumentValidationError" in body["errorMessage"]
    body = post(server, "/api/query", {"path": "nope:nothing", "args": {}}).json()
    assert body["status"] == "error" and "Could not find public function" in body["errorMessage"]
    assert messages(app) == []


def test_auth_headers(server: Any) -> None:
    r = post(server, "/api/query", {"path": "auth:whoami", "args": {}},
             headers={"Authorization": "Bearer " + jwt({"sub": "u1", "name": "Ada"})})
    assert r.json()["value"] == {"subject": "u1", "name": "Ada"}
    assert post(server, "/api/query", {"path": "auth:whoami", "args": {}}).json()["value"] is None
    for header, code in (("Bearer not-a-jwt", "InvalidAuthHeader"), ("Convex wrong-key", "BadAdminKey"),
                         ("Basic abc", "InvalidAuthHeader"), ("Bearer " + forged({"sub": "admin"}), "NoAuthProvider"),
                         ("Bearer " + jwt({"sub": "u1", "exp": int(time.time()) - 3600}), "IdTokenExpired")):
        r = post(server, "/api/query", {"path": "auth:whoami", "args": {}}, headers={"Authorization": header})
        assert r.status_code == 401
        assert r.json()["code"] == code and r.json()["message"], (header, r.json())


def test_query_ts_at_ts_and_batch(app: cn.Backend, server: Any) -> None:
    ts_text = httpx.post(server.url + "/api/query_ts").json()["ts"]
    ts = struct.unpack("<Q", base64.b64decode(ts_text))[0]
    assert ts == app.database.last_ts
    body = {"path": "messages:list", "args": [{}], "format": "convex_encoded_json", "ts": ts_text}
    assert post(server, "/api/query_at_ts", body).json() == {"status": "success", "value": [], "logLines": []}
    app.mutation("messages:send", {"author": "x", "body": "y"})
    r = post(server, "/api/query_at_ts", body)  # the history: the answer as it was at ts
    assert r.json() == {"status": "success", "value": [], "logLines": []}
    future = base64.b64encode(struct.pack("<Q", app.latest_ts() + 10**12)).decode()
    r = post(server, "/api/query_at_ts", {**body, "ts": future})
    assert r.status_code == 400 and r.json()["code"] == "QueryAtTsUnavailable" and "future" in r.json()["message"]
    old = base64.b64encode(struct.pack("<Q", 1)).decode()
    r = post(server, "/api/query_at_ts", {**body, "ts": old})
    assert r.status_code == 400 and "older than the history" in r.json()["message"]
    r = post(server, "/api/query_batch", {"queries": [
        {"path": "messages:list", "args": {}, "format": "convex_encoded_json"},
        {"path": "values:sample", "args": {}},
        {"path": "errors:boom", "args": {}},
    ]})
    results = r.json()["results"]
    assert results[0]["value"] == [{"author": "x", "body": "y"}]
    assert results[1]["value"]["int64"] == "-5"
    assert results[2]["status"] == "error"


def test_trailing_slash_url_and_unknown_routes(server: Any) -> None:
    # The JS client turns "http://host:port/" into "//api/query": accepted.
    r = httpx.post(server.url + "//api/query", json={"path": "messages:list", "args": [{}]})
    assert r.json()["status"] == "success"
    r = httpx.post(server.url + "/api/nothing", json={})
    assert r.status_code == 404 and set(r.json()) == {"code", "message"}
    r = httpx.get(server.url + "/api/mutation")
    assert r.status_code == 405 and set(r.json()) == {"code", "message"}
