"""The admin data API of a served deployment: system functions (``_system/cli/...``), Convex's
streaming export (``/api/list_snapshot``) and table import (``/api/import``)."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import pytest

import convex_notebook as cn


def call(server: Any, method: str, path: str, params: dict | None = None, body: bytes | None = None,
         key: str | None = "admin") -> tuple[int, Any]:
    query = ("?" + urllib.parse.urlencode(params)) if params else ""
    headers = {"Content-Type": "application/json"}
    if key == "admin":
        key = server.admin_key
    if key:
        headers["Authorization"] = f"Convex {key}"
    request = urllib.request.Request(server.url + path + query, data=body, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def function(server: Any, path: str, args: dict | None = None, key: str | None = "admin") -> tuple[int, Any]:
    body = json.dumps({"path": path, "args": args or {}, "format": "convex_encoded_json"}).encode()
    return call(server, "POST", "/api/function", body=body, key=key)


def fill(app: cn.Backend, table: str, n: int, **extra: Any) -> None:
    app.run(lambda ctx: [ctx.db.insert(table, {"i": float(i), **extra}) for i in range(n)])


# -- system functions ---------------------------------------------------------------------------

def test_system_functions_answer_admins(app: cn.Backend, server: Any) -> None:
    fill(app, "people", 3)
    status, body = function(server, "_system/cli/tables")
    assert status == 200 and body["status"] == "success"
    assert body["value"] == {"page": [{"name": "people"}], "isDone": True, "continueCursor": ""}
    _, body = function(server, "_system/cli/tableSize", {"tableName": "people"})
    assert body["value"] == 3.0
    _, body = function(server, "_system/cli/tableSize:default", {"tableName": "nothing"})
    assert body["value"] == 0.0
    _, body = function(server, "_system/cli/tableData", {
        "table": "people", "order": "desc", "paginationOpts": {"numItems": 2, "cursor": None}})
    page = body["value"]
    assert [d["i"] for d in page["page"]] == [2.0, 1.0] and page["isDone"] is False
    _, body = function(server, "_system/cli/functions")
    paths = {f["path"]: f for f in body["value"]}
    assert paths["messages:send"]["kind"] == "mutation" and paths["admin:secret"]["visibility"] == "internal"
    assert all(not p.startswith("_system/") for p in paths)


def test_system_functions_are_hidden_from_everyone_else(app: cn.Backend, server: Any) -> None:
    fill(app, "people", 1)
    for path in ("_system/cli/tables", "_system/cli/clearTables"):
        status, body = function(server, path, key=None)
        assert body["status"] == "error" and "Could not find public function" in body["errorMessage"]
    status, body = call(server, "POST", "/api/query", body=json.dumps({"path": "_system/cli/tables", "args": {}}).encode(), key=None)
    assert body["status"] == "error"
    with pytest.raises(cn.FunctionNotFound):
        app.query("_system/cli/tables")  # the public API of the embedded backend too
    assert all(not f.path.startswith("_system/") for f in app.functions())
    assert app.count("people") == 1


def test_system_calls_are_not_the_apps_log(app: cn.Backend, server: Any) -> None:
    before = len(app.logs)
    function(server, "_system/cli/tables")
    function(server, "_system/cli/logs", {"limit": 5})
    assert len(app.logs) == before


def test_clear_tables_is_one_transaction_seen_by_subscribers(app: cn.Backend, server: Any) -> None:
    fill(app, "people", 5)
    sub = app.subscribe("messages:list")
    app.mutation("messages:send", {"author": "a", "body": "x"})
    version = sub.version
    status, body = function(server, "_system/cli/clearTables")
    assert body["value"] == 6.0
    assert app.count("people") == 0 and app.count("messages") == 0
    assert sub.wait_for_update(version, timeout=10) and sub.value == []
    sub.unsubscribe()


# -- /api/list_snapshot --------------------------------------------------------------------------

def test_list_snapshot_walks_every_table_in_pages(app: cn.Backend, server: Any) -> None:
    fill(app, "a", 25, big=cn.Int64(2**60), raw=b"\x00\x01")
    fill(app, "b", 3)
    status, page = call(server, "GET", "/api/list_snapshot", {"numItems": 10, "format": "convex_encoded_json"})
    assert status == 200
    values, pages = list(page["values"]), 1
    while page["hasMore"]:
        status, page = call(server, "GET", "/api/list_snapshot",
                            {"numItems": 10, "snapshot": page["snapshot"], "cursor": page["cursor"]})
        assert status == 200
        values += page["values"]
        pages += 1
    assert pages == 3 and len(values) == 28
    assert [v["_table"] for v in values] == ["a"] * 25 + ["b"] * 3
    big = cn.values.from_json(values[0]["big"])
    assert type(big) is cn.Int64 and big == cn.Int64(2**60)
    assert {v["_ts"] for v in values} == {page["snapshot"]}
    assert [v["i"] for v in values[:25]] == [float(i) for i in range(25)]  # _creationTime order
    assert len({v["_id"] for v in values}) == 28


def test_list_snapshot_of_one_table_and_json_format(app: cn.Backend, server: Any) -> None:
    fill(app, "a", 2, big=cn.Int64(5))
    fill(app, "b", 1)
    status, page = call(server, "GET", "/api/list_snapshot", {"tableName": "a"})
    assert status == 200 and page["hasMore"] is False
    assert [v["_table"] for v in page["values"]] == ["a", "a"]
    assert page["values"][0]["big"] == "5"  # Convex's clean JSON: Int64 as a decimal string
    status, page = call(server, "GET", "/api/list_snapshot", {"tableName": "missing"})
    assert status == 200 and page["values"] == [] and page["hasMore"] is False


def test_list_snapshot_pages_stay_at_their_snapshot_while_writes_land(app: cn.Backend, server: Any) -> None:
    fill(app, "a", 5)
    _, first = call(server, "GET", "/api/list_snapshot", {"tableName": "a", "numItems": 2})
    snapshot = first["snapshot"]
    # Between pages: an insert, a patch and a delete in the table being listed.
    docs = app.run(lambda ctx: ctx.db.query("a").collect())
    app.run(lambda ctx: ctx.db.insert("a", {"i": 99.0}))
    app.run(lambda ctx: ctx.db.patch(docs[3]["_id"], {"i": -3.0}))
    app.run(lambda ctx: ctx.db.delete(docs[4]["_id"]))
    values, page = list(first["values"]), first
    while page["hasMore"]:
        status, page = call(server, "GET", "/api/list_snapshot",
                            {"tableName": "a", "numItems": 2, "snapshot": snapshot, "cursor": page["cursor"]})
        assert status == 200 and page["snapshot"] == snapshot
        values.extend(page["values"])
    assert [v["i"] for v in values] == [0.0, 1.0, 2.0, 3.0, 4.0]  # the table as it was
    assert {v["_ts"] for v in values} == {snapshot}
    status, body = call(server, "GET", "/api/list_snapshot", {"tableName": "a", "snapshot": app.latest_ts() + 10**12})
    assert status == 400 and body["code"] == "SnapshotUnavailable" and "future" in body["message"]


@pytest.mark.parametrize("params, code", [
    ({"cursor": "not-a-cursor"}, "InvalidCursor"),
    ({"snapshot": "yesterday"}, "BadQueryParameter"),
    ({"numItems": 0}, "BadQueryParameter"),
    ({"numItems": 100_000}, "BadQueryParameter"),
    ({"format": "xml"}, "BadFormat"),
    ({"snapshot": 1}, "SnapshotUnavailable"),
])
def test_list_snapshot_bad_parameters(app: cn.Backend, server: Any, params: dict, code: str) -> None:
    fill(app, "a", 1)
    status, body = call(server, "GET", "/api/list_snapshot", params)
    assert status == 400 and body["code"] == code, body


def test_list_snapshot_needs_the_admin_key(app: cn.Backend, server: Any) -> None:
    assert call(server, "GET", "/api/list_snapshot", key=None)[0] == 401
    assert call(server, "GET", "/api/list_snapshot", key="wrong")[0] == 401


# -- /api/import -----------------------------------------------------------------------------------

def test_import_jsonl_csv_and_json_array(app: cn.Backend, server: Any) -> None:
    lines = b'{"x": 1}\n\n{"x": {"$integer": "AQAAAAAAAAA="}, "b": {"$bytes": "AAE="}}\n'
    status, body = call(server, "POST", "/api/import", {"tableName": "j", "format": "jsonLines"}, lines)
    assert status == 200 and body == {"tableName": "j", "numWritten": 2, "tables": {"j": 2}}
    docs = app.run(lambda ctx: ctx.db.query("j").collect())
    assert docs[0]["x"] == 1.0 and docs[1]["x"] == cn.Int64(1) and docs[1]["b"] == b"\x00\x01"
    status, body = call(server, "POST", "/api/import", {"tableName": "c", "format": "csv"}, b"name,n\nada,1\nbob,x\n")
    assert status == 200 and app.run(lambda ctx: [(d["name"], d["n"]) for d in ctx.db.query("c").collect()]) == [["ada", 1.0], ["bob", "x"]]
    status, body = call(server, "POST", "/api/import", {"tableName": "c", "format": "jsonArray", "mode": "replace"}, b'[{"k": true}]')
    assert status == 200 and app.run(lambda ctx: [d["k"] for d in ctx.db.query("c").collect()]) == [True]
    status, body = call(server, "POST", "/api/import", {"tableName": "c", "format": "jsonArray", "mode": "append"}, b'[{"k": false}]')
    assert status == 200 and app.count("c") == 2


def test_import_is_all_or_nothing_with_errors_naming_the_line(app: cn.Backend, server: Any) -> None:
    fill(app, "t", 2)
    status, body = call(server, "POST", "/api/import", {"tableName": "t"}, b'{"x": 1}\n')
    assert status == 400 and body["code"] == "ImportFailed" and "already has 2 documents" in body["message"]
    status, body = call(server, "POST", "/api/import", {"tableName": "t", "mode": "replace"}, b'{"x": 1}\n{"x": oops}\n')
    assert status == 400 and "line 2" in body["message"] and "not valid JSON" in body["message"]
    status, body = call(server, "POST", "/api/import", {"tableName": "t", "mode": "append"}, b'{"x": 1}\n{"$bad": 1}\n')
    assert status == 400 and "line 2" in body["message"]
    assert app.count("t") == 2 and app.run(lambda ctx: [d["i"] for d in ctx.db.query("t").collect()]) == [0.0, 1.0]


@pytest.mark.parametrize("params, status, code", [
    ({}, 400, "BadQueryParameter"),
    ({"tableName": "t", "mode": "merge"}, 400, "BadQueryParameter"),
    ({"tableName": "t", "format": "parquet"}, 400, "BadQueryParameter"),
    ({"tableName": "_system"}, 400, "ImportFailed"),
])
def test_import_bad_parameters(app: cn.Backend, server: Any, params: dict, status: int, code: str) -> None:
    got, body = call(server, "POST", "/api/import", params, b'{"x": 1}\n')
    assert (got, body["code"]) == (status, code), body
    assert app.table_names() == []


def test_import_needs_the_admin_key_and_respects_the_size_limit(app: cn.Backend) -> None:
    handle = app.serve(port=0, block=False, print_admin_key=False, max_import_bytes=64)
    try:
        assert call(handle, "POST", "/api/import", {"tableName": "t"}, b'{"x": 1}\n', key=None)[0] == 401
        status, body = call(handle, "POST", "/api/import", {"tableName": "t"}, b'{"x": 1}\n' * 20)
        assert status == 413 and body["code"] == "PayloadTooLarge"
        assert app.count("t") == 0
    finally:
        handle.stop()
