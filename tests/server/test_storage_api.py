"""File storage over HTTP: the three-request upload flow (mutation → POST → mutation), serving
a file with its Digest, CORS for browsers, and refused uploads."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import httpx
import pytest

import convex_notebook as cn


@pytest.fixture
def files(app: cn.Backend) -> cn.Backend:
    @app.mutation
    def upload_url(ctx: Any) -> str:
        return ctx.storage.generate_upload_url()

    @app.mutation
    def attach(ctx: Any, storage_id: str) -> str:
        return ctx.db.insert("photos", {"file": storage_id})

    @app.query
    def photo_urls(ctx: Any) -> list:
        return [ctx.storage.get_url(p["file"]) for p in ctx.db.query("photos").collect()]

    return app


def test_upload_flow_and_download(files: cn.Backend, server: Any) -> None:
    assert files.site_url == server.url  # serving points the URLs at the server
    with cn.connect(server.url) as client:  # any client: the URL is the permission
        url = client.mutation("upload_url")
        body = b"\x89PNG fake image bytes"
        r = httpx.post(url, content=body, headers={"Content-Type": "image/png"})
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "*"
        storage_id = r.json()["storageId"]
        client.mutation("attach", {"storage_id": storage_id})
        [photo] = client.query("photo_urls")
    r = httpx.get(photo)
    assert r.status_code == 200 and r.content == body and r.headers["content-type"] == "image/png"
    assert r.headers["digest"] == "sha-256=" + base64.b64encode(hashlib.sha256(body).digest()).decode()
    assert httpx.post(url, content=b"again").status_code == 401  # an upload URL works once


def test_deleted_files_are_gone(files: cn.Backend, server: Any) -> None:
    url = files.mutation("upload_url")
    storage_id = httpx.post(url, content=b"temporary").json()["storageId"]
    assert httpx.get(f"{server.url}/api/storage/{storage_id}").status_code == 200
    files.run(lambda ctx: ctx.storage.delete(storage_id))
    r = httpx.get(f"{server.url}/api/storage/{storage_id}")
    assert r.status_code == 404 and r.json()["code"] == "FileNotFound"
    assert httpx.get(f"{server.url}/api/storage/not-an-id").status_code == 404


def test_refused_uploads_store_nothing(files: cn.Backend, server: Any) -> None:
    assert httpx.post(f"{server.url}/api/storage/upload?token=made-up", content=b"x").status_code == 401
    url = files.mutation("upload_url")
    r = httpx.post(url, content=b"contents", headers={"Digest": "sha-256=" + base64.b64encode(b"\x00" * 32).decode()})
    assert r.status_code == 400 and r.json()["code"] == "UploadRejected" and "sha256" in r.json()["message"]
    assert files.run(lambda ctx: ctx.db.system.query("_storage").collect()) == []


def test_browsers_get_cors_answers(server: Any) -> None:
    r = httpx.options(f"{server.url}/api/storage/upload", headers={"Origin": "http://localhost:5173",
                                                                  "Access-Control-Request-Method": "POST"})
    assert r.status_code == 204 and "POST" in r.headers["access-control-allow-methods"]
    assert "Digest" in r.headers["access-control-allow-headers"]
