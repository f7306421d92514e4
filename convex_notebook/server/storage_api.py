"""File storage over HTTP: the URLs ``ctx.storage`` hands out.

* ``GET /api/storage/{id}``: the file, with its ``Content-Type`` and a ``Digest: sha-256=...``
  header; 404 once deleted. The URL is the permission (it was made by a function).
* ``POST /api/storage/upload?token=...`` (from ``generate_upload_url()``): the body is the file,
  ``Content-Type`` is kept, a ``Digest: sha-256=<base64>`` header is checked; answers
  ``{"storageId": ...}``. A token works once, within an hour.

Both answer browsers' cross-origin requests (uploads come straight from web apps).
"""

from __future__ import annotations

import base64
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ..backend.storage import STORAGE_TABLE, store_file, take_upload_token
from ..engine.transaction import DatabaseError
from .http import HttpApi, RequestError, json_response

__all__ = ["StorageApi"]

CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type, Digest",
    "Access-Control-Max-Age": "86400",
}


class StorageApi(HttpApi):
    """The file endpoints of one deployment."""

    async def preflight(self, request: Request) -> Response:
        return Response(status_code=204, headers=CORS)

    async def download(self, request: Request) -> Response:
        async def run(request: Request) -> Response:
            storage_id = request.path_params["storage_id"]
            found = await self.dep.run_blocking(self._read, storage_id)
            if found is None:
                raise RequestError(404, "FileNotFound", f"No file {storage_id!r} (deleted, or never stored)")
            doc, data = found
            digest = base64.b64encode(bytes.fromhex(doc["sha256"])).decode("ascii")
            headers = {**CORS, "Digest": f"sha-256={digest}", "Cache-Control": "private, max-age=2592000"}
            return Response(data, media_type=doc.get("contentType") or "application/octet-stream", headers=headers)

        return await self._guard(request, run)

    def _read(self, storage_id: str) -> tuple[dict, bytes] | None:
        backend = self.dep.backend
        with backend.read_snapshot() as txn:
            if backend.table_of_id(storage_id) != STORAGE_TABLE:
                return None
            doc = txn.get(storage_id)
            data = txn.get_file(storage_id) if doc is not None else None
        return (doc, data) if doc is not None and data is not None else None

    async def upload(self, request: Request) -> Response:
        async def run(request: Request) -> Response:
            token = request.query_params.get("token", "")
            if not take_upload_token(self.dep.backend, token):
                raise RequestError(401, "InvalidUploadUrl", "This upload URL is unknown, used or expired: generate another")
            data = await self._raw_body(request, self.dep.settings.max_import_bytes)
            content_type = request.headers.get("content-type") or None
            sha256 = _digest_header(request.headers.get("digest"))
            try:
                storage_id = await self.dep.run_blocking(store_file, self.dep.backend, data, content_type, sha256)
            except DatabaseError as exc:
                raise RequestError(400, "UploadRejected", str(exc)) from None
            return json_response({"storageId": storage_id}, headers=CORS)

        return await self._guard(request, run)


def _digest_header(value: Any) -> str | None:
    """The base64 sha-256 of a ``Digest: sha-256=...`` header (None without one)."""
    if not value:
        return None
    for part in str(value).split(","):
        algorithm, _, encoded = part.strip().partition("=")
        if algorithm.lower() == "sha-256" and encoded:
            return encoded
    return None
