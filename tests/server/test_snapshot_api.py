"""Snapshot export and the upload-import flow (what `npx convex export/import` drive), and
their bad input: each refusal is a clear 4xx, or a failed import that wrote nothing."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import httpx
import pytest

import convex_notebook as cn


def admin(server: Any) -> dict[str, str]:
    return {"Authorization": f"Convex {server.admin_key}"}


def upload(server: Any, data: bytes, args: dict, parts: int = 2) -> str:
    """start_upload, upload_part x parts, finish_upload → the import id."""
    token = httpx.post(server.url + "/api/import/start_upload", headers=admin(server)).json()["uploadToken"]
    size = -(-len(data) // parts)
    tokens = []
    for n in range(parts):
        r = httpx.post(server.url + "/api/import/upload_part", params={"uploadToken": token, "partNumber": n + 1},
                       content=data[n * size:(n + 1) * size], headers=admin(server))
        assert r.status_code == 200, r.text
        tokens.append(r.json())
    r = httpx.post(server.url + "/api/import/finish_upload", headers=admin(server),
                   json={"import": args, "uploadToken": token, "partTokens": tokens})
    assert r.status_code == 200, r.text
    return r.json()["importId"]


def import_state(app: cn.Backend, import_id: str) -> dict:
    return app.run("_system/cli/queryImport", {"importId": import_id})["state"]


def test_export_request_and_download(app: cn.Backend, server: Any) -> None:
    app.run(lambda ctx: ctx.db.insert("people", {"n": cn.Int64(1)}))
    assert app.run("_system/cli/exports:getLatest") is None
    assert httpx.post(server.url + "/api/export/request/zip", headers=admin(server)).status_code == 200
    latest = app.run("_system/cli/exports:getLatest")
    assert latest["state"] == "completed" and type(latest["start_ts"]) is cn.Int64
    r = httpx.get(f"{server.url}/api/export/zip/{int(latest['start_ts'])}", headers=admin(server))
    assert r.status_code == 200 and r.headers["content-disposition"] == f"attachment; filename=snapshot_{int(latest['start_ts'])}.zip"
    assert "people/documents.jsonl" in zipfile.ZipFile(io.BytesIO(r.content)).namelist()
    assert httpx.get(f"{server.url}/api/export/zip/123", headers=admin(server)).status_code == 404
    assert httpx.get(f"{server.url}/api/export/zip/{int(latest['start_ts'])}").status_code == 401
    r = httpx.post(server.url + "/api/export/request/zip?includeStorage=true", headers=admin(server))
    assert r.status_code == 200
    latest = app.run("_system/cli/exports:getLatest")
    assert latest["format"] == {"format": "zip", "include_storage": True}
    r = httpx.get(f"{server.url}/api/export/zip/{int(latest['start_ts'])}", headers=admin(server))
    assert "_storage/documents.jsonl" in zipfile.ZipFile(io.BytesIO(r.content)).namelist()


def test_upload_confirm_and_import(app: cn.Backend, server: Any) -> None:
    import_id = upload(server, b'{"a": 1}\n{"a": 2}\n{"a": 3}\n', {"tableName": "t", "mode": "requireEmpty", "format": "jsonLines"}, parts=3)
    state = import_state(app, import_id)
    assert state["state"] == "waiting_for_confirmation" and "jsonLines" in state["message_to_confirm"]
    assert app.count("t") == 0  # nothing before the confirmation
    assert [i["_id"] for i in app.run("_system/cli/queryImport:list")] == [import_id]
    r = httpx.post(server.url + "/api/perform_import", headers=admin(server), json={"importId": import_id})
    assert r.status_code == 200
    assert import_state(app, import_id) == {"state": "completed", "num_rows_written": cn.Int64(3)}
    assert sorted(d["a"] for d in app.run(lambda ctx: ctx.db.query("t").collect())) == [1.0, 2.0, 3.0]
    r = httpx.post(server.url + "/api/perform_import", headers=admin(server), json={"importId": import_id})
    assert r.status_code == 400 and r.json()["code"] == "ImportNotFound"  # not twice


def test_a_failing_import_reports_and_writes_nothing(app: cn.Backend, server: Any) -> None:
    app.run(lambda ctx: ctx.db.insert("t", {"a": 0}))
    import_id = upload(server, b'{"a": 1}\n{"a": oops}\n', {"tableName": "t", "mode": "append", "format": "jsonLines"})
    httpx.post(server.url + "/api/perform_import", headers=admin(server), json={"importId": import_id})
    state = import_state(app, import_id)
    assert state["state"] == "failed" and "line 2" in state["error_message"]
    corrupt = upload(server, b"PK\x03\x04 not really a zip", {"mode": "replace", "format": "zip"})
    httpx.post(server.url + "/api/perform_import", headers=admin(server), json={"importId": corrupt})
    assert "not a ZIP file" in import_state(app, corrupt)["error_message"]
    assert [d["a"] for d in app.run(lambda ctx: ctx.db.query("t").collect())] == [0.0]


def test_an_import_that_crashes_is_reported_failed_not_left_in_progress(
    app: cn.Backend, server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from convex_notebook.server import snapshot_api

    def crash(*args: Any) -> dict:
        raise RuntimeError("a bug in the importer")

    import_id = upload(server, b'{"a": 1}\n', {"tableName": "t", "mode": "append", "format": "jsonLines"})
    monkeypatch.setattr(snapshot_api, "import_file", crash)
    r = httpx.post(server.url + "/api/perform_import", headers=admin(server), json={"importId": import_id})
    assert r.status_code == 500  # a server bug stays one...
    state = import_state(app, import_id)  # ...but the CLI polling the import is told, not kept waiting
    assert state["state"] == "failed" and "a bug in the importer" in state["error_message"]
    assert app.count("t") == 0


def test_zip_listing_a_table_number_no_id_can_hold_is_a_400(app: cn.Backend, server: Any) -> None:
    data = io.BytesIO()
    with zipfile.ZipFile(data, "w") as zf:
        zf.writestr("_tables/documents.jsonl", '{"name": "t", "id": 1e999}\n')
        zf.writestr("t/documents.jsonl", '{"a": 1}\n')
    r = httpx.post(server.url + "/api/import", params={"format": "zip"}, headers=admin(server), content=data.getvalue())
    assert r.status_code == 400 and r.json()["code"] == "ImportFailed", r.text  # was an OverflowError, a 500
    assert "_tables/documents.jsonl, line 1" in r.json()["message"]
    assert app.table_names() == []


@pytest.mark.parametrize("body, code", [
    ({"import": {"mode": "requireEmpty", "format": "parquet", "tableName": "t"}}, "BadJsonBody"),
    ({"import": {"mode": "merge", "format": "jsonLines", "tableName": "t"}}, "BadJsonBody"),
    ({"import": {"mode": "requireEmpty", "format": "jsonLines"}}, "BadJsonBody"),  # no table
    ({"import": {"mode": "requireEmpty", "format": "zip", "tableName": "t"}}, "BadJsonBody"),
    ({"import": {"mode": "requireEmpty", "format": "jsonLines", "tableName": "t"}, "uploadToken": "nope"}, "InvalidUploadToken"),
    ({"import": "jsonLines"}, "BadJsonBody"),
    ({"import": {"mode": "requireEmpty", "format": ["zip"]}}, "BadJsonBody"),  # not a name: was a 500
    ({"import": {"mode": {"replace": True}, "format": "jsonLines", "tableName": "t"}}, "BadJsonBody"),
    ({"import": {"mode": "requireEmpty", "format": "jsonLines", "tableName": 5}}, "BadJsonBody"),
    ({"import": {"mode": "requireEmpty", "format": "jsonLines", "tableName": ""}}, "BadJsonBody"),
])
def test_finish_upload_bad_input(app: cn.Backend, server: Any, body: dict, code: str) -> None:
    r = httpx.post(server.url + "/api/import/finish_upload", headers=admin(server), json=body)
    assert r.status_code == 400 and r.json()["code"] == code, r.text
    assert app.run("_system/cli/queryImport:list") == []


def test_upload_endpoints_need_the_admin_key_and_a_known_token(server: Any) -> None:
    for path in ("/api/import/start_upload", "/api/import/upload_part", "/api/import/finish_upload",
                 "/api/perform_import", "/api/export/request/zip"):
        assert httpx.post(server.url + path).status_code == 401, path
    r = httpx.post(server.url + "/api/import/upload_part", params={"uploadToken": "x", "partNumber": 1},
                   content=b"data", headers=admin(server))
    assert r.status_code == 400 and r.json()["code"] == "InvalidUploadToken"
    r = httpx.post(server.url + "/api/import/upload_part", params={"uploadToken": "x", "partNumber": "first"},
                   content=b"data", headers=admin(server))
    assert r.status_code == 400 and json.loads(r.text)["code"] == "BadQueryParameter"
