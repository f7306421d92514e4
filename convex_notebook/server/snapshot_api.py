"""Snapshot export and import over HTTP, as the official CLI drives them (admin only).

``npx convex export`` (and ``DeploymentClient.export_snapshot``):
``POST /api/export/request/zip`` makes the ZIP (here, before answering), ``_system/cli/exports:getLatest``
reports it (``{"state": "completed", "start_ts", ...}``), ``GET /api/export/zip/{ts}`` downloads it.

``npx convex import``: ``POST /api/import/start_upload`` → ``{"uploadToken"}``;
``POST /api/import/upload_part?uploadToken=&partNumber=`` (the body is a part of the file);
``POST /api/import/finish_upload`` ``{"import": {"tableName", "mode", "format"}, "uploadToken",
"partTokens"}`` → ``{"importId"}``, whose state ``_system/cli/queryImport`` shows: waiting for
confirmation, then ``POST /api/perform_import`` ``{"importId"}`` writes it in one transaction
(``completed`` with ``num_rows_written``, or ``failed`` with ``error_message``: nothing written).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import FileResponse, Response

from ..backend.system import publish_state
from ..engine.transaction import DatabaseError
from ..values import Int64
from .data_api import IMPORT_FORMATS, IMPORT_MODES, import_file
from .http import HttpApi, RequestError, json_response

if TYPE_CHECKING:
    from .deployment import Deployment

__all__ = ["SnapshotApi"]

UPLOAD_TTL_S = 3600  # an unfinished upload (or an unconfirmed import) is forgotten after this long


def _ms() -> float:
    return time.time() * 1000


def _natural(text: str) -> int | None:
    """``text`` as a non-negative integer written in ASCII digits, else None (``str.isdigit``
    also accepts digits such as '²' that ``int()`` refuses)."""
    if not (text.isascii() and text.isdigit()):
        return None
    try:
        return int(text)
    except ValueError:  # more digits than int() converts
        return None


class SnapshotApi(HttpApi):
    """The export and upload-import endpoints of one deployment."""

    def __init__(self, deployment: Deployment) -> None:
        super().__init__(deployment)
        self._dir = tempfile.mkdtemp(prefix="convex-notebook-exports-")
        self._exports: dict[int, str] = {}  # start_ts → file (the latest only)
        self._uploads: dict[str, dict[str, Any]] = {}  # token → {"parts": {n: bytes}, "size", "started"}
        self._pending: dict[str, tuple[dict, bytes, float]] = {}  # importId → (import args, file, when)
        self._lock = threading.Lock()
        deployment.cleanups.append(lambda: shutil.rmtree(self._dir, ignore_errors=True))

    # -- export ---------------------------------------------------------------------------------
    async def request_export(self, request: Request) -> Response:
        async def run(request: Request) -> Response:
            self._require_admin(request)
            include = request.query_params.get("includeStorage") == "true"
            await self.dep.run_blocking(self._export, include)
            return json_response({})

        return await self._guard(request, run)

    def _export(self, include_storage: bool = False) -> None:
        from ..io import export_snapshot

        backend = self.dep.backend
        ts = backend.latest_ts()  # the export reads the history at ts: one snapshot
        path = export_snapshot(
            backend, os.path.join(self._dir, f"snapshot_{ts}.zip"), include_file_storage=include_storage, at=ts,
        )
        with self._lock:
            for old in self._exports.values():
                if old != path:
                    try:
                        os.unlink(old)
                    except OSError:
                        pass
            self._exports = {ts: path}
        now = _ms()
        publish_state(backend, "latest_export", {
            "state": "completed", "start_ts": Int64(ts), "complete_ts": Int64(time.time_ns()),
            "expiration_ts": Int64(time.time_ns() + 14 * 86400 * 10**9), "requestor": "cliExport",
            "format": {"format": "zip", "include_storage": include_storage}, "_creationTime": now,
        })

    async def download_export(self, request: Request) -> Response:
        async def run(request: Request) -> Response:
            self._require_admin(request)
            raw = request.path_params["ts"]
            ts = _natural(raw)
            path = self._exports.get(ts) if ts is not None else None
            if path is None or not os.path.exists(path):
                raise RequestError(404, "ExportNotFound", f"No snapshot export at timestamp {raw}: request one first")
            headers = {"Content-Disposition": f"attachment; filename=snapshot_{raw}.zip"}
            return FileResponse(path, media_type="application/zip", headers=headers)

        return await self._guard(request, run)

    # -- import in parts --------------------------------------------------------------------------
    async def start_upload(self, request: Request) -> Response:
        async def run(request: Request) -> Response:
            self._require_admin(request)
            token = uuid.uuid4().hex
            with self._lock:
                cutoff = time.monotonic() - UPLOAD_TTL_S
                for old in [t for t, u in self._uploads.items() if u["started"] < cutoff]:
                    del self._uploads[old]
                self._uploads[token] = {"parts": {}, "size": 0, "started": time.monotonic()}
            return json_response({"uploadToken": token})

        return await self._guard(request, run)

    async def upload_part(self, request: Request) -> Response:
        async def run(request: Request) -> Response:
            self._require_admin(request)
            token = request.query_params.get("uploadToken", "")
            number = _natural(request.query_params.get("partNumber", ""))
            if number is None or number < 1:
                raise RequestError(400, "BadQueryParameter", "'partNumber' must be a positive integer")
            limit = self.dep.settings.max_import_bytes
            upload = self._upload(token)
            data = await self._raw_body(request, limit - upload["size"])
            with self._lock:
                upload["parts"][number] = data
                upload["size"] += len(data)
            return json_response({"partNumber": number, "size": len(data)})

        return await self._guard(request, run)

    def _upload(self, token: str) -> dict[str, Any]:
        with self._lock:
            upload = self._uploads.get(token)
        if upload is None:
            raise RequestError(400, "InvalidUploadToken", "Unknown or expired uploadToken: start the upload again")
        return upload

    async def finish_upload(self, request: Request) -> Response:
        async def run(request: Request) -> Response:
            self._require_admin(request)
            body = await self._body(request)
            args = body.get("import")
            if not isinstance(args, dict):
                raise RequestError(400, "BadJsonBody", "'import' must be an object with mode and format")
            fmt, mode, table = args.get("format"), args.get("mode", "requireEmpty"), args.get("tableName")
            # isinstance first: a list or an object is no key of these dicts (and not hashable)
            if not isinstance(fmt, str) or fmt not in IMPORT_FORMATS:
                raise RequestError(400, "BadJsonBody", f"'format' is one of {', '.join(IMPORT_FORMATS)}")
            if not isinstance(mode, str) or mode not in IMPORT_MODES:
                raise RequestError(400, "BadJsonBody", f"'mode' is one of {', '.join(IMPORT_MODES)}")
            if args.get("componentPath"):
                raise RequestError(400, "NotSupported", "Components are not supported (componentPath)")
            if (fmt == "zip") != (table is None):
                raise RequestError(400, "BadJsonBody", "'tableName' is required for a single-table format, and not allowed for zip")
            if table is not None and (not isinstance(table, str) or not table):
                raise RequestError(400, "BadJsonBody", f"'tableName' must be a table's name, got {table!r:.60}")
            token = body.get("uploadToken")
            token = token if isinstance(token, str) else ""
            upload = self._upload(token)
            with self._lock:
                self._uploads.pop(token, None)
                parts = upload["parts"]
            data = b"".join(parts[n] for n in sorted(parts))
            import_id = uuid.uuid4().hex
            target = f"table {table!r}" if table else "every table of the snapshot"
            with self._lock:  # unconfirmed imports are dropped after a while, as unfinished uploads
                cutoff = time.monotonic() - UPLOAD_TTL_S
                for old in [i for i, p in self._pending.items() if p[2] < cutoff]:
                    del self._pending[old]
                self._pending[import_id] = ({"format": fmt, "mode": mode, "tableName": table}, data, time.monotonic())
            await self.dep.run_blocking(self._set_import, import_id, {
                "state": "waiting_for_confirmation",
                "message_to_confirm": f"Import {len(data):,} bytes of {fmt} into {target} (mode {mode})",
                "require_manual_confirmation": False,
            })
            return json_response({"importId": import_id})

        return await self._guard(request, run)

    def _set_import(self, import_id: str, state: dict) -> None:
        imports = dict(self.dep.backend.system_state.get("imports") or {})
        previous = imports.get(import_id)
        imports[import_id] = {
            "_id": import_id,
            "_creationTime": previous["_creationTime"] if previous else _ms(),
            "state": state,
        }
        publish_state(self.dep.backend, "imports", imports)

    async def perform_import(self, request: Request) -> Response:
        async def run(request: Request) -> Response:
            self._require_admin(request)
            body = await self._body(request)
            import_id = body.get("importId")
            with self._lock:
                pending = self._pending.pop(import_id, None) if isinstance(import_id, str) else None
            if pending is None:
                raise RequestError(400, "ImportNotFound", f"No import waiting for confirmation with id {import_id!r}")
            args, data, _ = pending
            await self.dep.run_blocking(self._perform, import_id, args, data)
            return json_response({})

        return await self._guard(request, run)

    def _perform(self, import_id: str, args: dict, data: bytes) -> None:
        self._set_import(import_id, {"state": "in_progress", "progress_message": "Importing", "checkpoint_messages": []})
        try:
            counts = import_file(self.dep.backend, data, args["format"], args["mode"], args["tableName"],
                                 "uploaded snapshot" if args["format"] == "zip" else "uploaded file")
        except (DatabaseError, ValueError) as exc:
            self._set_import(import_id, {"state": "failed", "error_message": str(exc)})
            return
        except Exception as exc:
            # A bug, still a 500; but the import is reported failed, else `npx convex import`
            # polls an import "in_progress" for ever.
            self._set_import(import_id, {"state": "failed", "error_message": f"Internal error: {type(exc).__name__}: {exc}"})
            raise
        self._set_import(import_id, {"state": "completed", "num_rows_written": Int64(sum(counts.values()))})
