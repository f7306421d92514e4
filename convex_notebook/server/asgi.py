"""The ASGI application: HTTP API routes and the sync WebSocket on one Starlette app."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route, WebSocketRoute
from starlette.websockets import WebSocket

from .data_api import DataApi
from .env_api import EnvApi
from .http import HttpApi, RequestError, error_response, json_response
from .logs_api import LogsApi
from .snapshot_api import SnapshotApi
from .storage_api import StorageApi
from .sync import SyncSession

if TYPE_CHECKING:
    from .deployment import Deployment

__all__ = ["build_app"]

_SLASHES = re.compile(r"//+")


class _ApiCors:
    """CORS on the HTTP API (``/api/...``), as Convex's backend answers it: any origin may call
    it (its auth is a header, never a cookie), preflights included. File storage
    (``/api/storage/``) has its own CORS answers; HTTP actions (other paths) answer their own
    ``OPTIONS``, as in Convex."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.cors = CORSMiddleware(
            app, allow_origins=["*"], allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
            allow_headers=["*"], expose_headers=["*"], max_age=86400,
        )

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and (path == "/api" or path.startswith("/api/")) and not path.startswith("/api/storage/"):
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)


class _CollapseSlashes:
    """``http://host:port/`` + ``/api/...`` gives ``//api/...`` in the JS client: accept it."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket") and "//" in scope.get("path", ""):
            scope = dict(scope)
            scope["path"] = _SLASHES.sub("/", scope["path"])
            if scope.get("raw_path"):
                scope["raw_path"] = _SLASHES.sub("/", scope["raw_path"].decode("latin-1")).encode("latin-1")
        await self.app(scope, receive, send)


def build_app(deployment: Deployment) -> Any:
    """The ASGI app serving ``deployment``."""
    api = HttpApi(deployment)
    data = DataApi(deployment)
    snapshots = SnapshotApi(deployment)
    files = StorageApi(deployment)
    env = EnvApi(deployment)
    function_logs = LogsApi(deployment)

    async def sync(websocket: WebSocket) -> None:
        await SyncSession(deployment, websocket).run()

    async def version(request: Request) -> Response:
        return json_response({"name": "convex_notebook", "protocol": "convex"})

    async def not_found(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        code = {404: "NotFound", 405: "MethodNotAllowed"}.get(status, "BadRequest")
        return error_response(status, code, f"{request.method} {request.url.path}: {getattr(exc, 'detail', exc)}")

    async def http_action(request: Request) -> Response:
        """Any other path: the deployment's HTTP actions (``app.http.route``)."""
        from ..backend.http_actions import HttpRequest, run_http_action

        if request.url.path == "/api" or request.url.path.startswith("/api/"):
            for route in api_routes:  # the path is the API's, with another method
                if route.matches(request.scope)[0] == Match.PARTIAL:
                    return error_response(405, "MethodNotAllowed", f"{request.method} {request.url.path}: Method Not Allowed")
            return error_response(404, "NotFound", f"{request.method} {request.url.path}: Not Found")
        try:
            creds = await api.credentials(request)
            body = await api._raw_body(request, deployment.settings.max_message_bytes)
        except RequestError as exc:
            return error_response(exc.status, exc.code, str(exc))
        incoming = HttpRequest(request.method, str(request.url), {k.lower(): v for k, v in request.headers.items()}, body)
        answer = await deployment.run_blocking(run_http_action, deployment.backend, incoming, creds.identity)
        return Response(answer.content, status_code=answer.status, headers=answer.headers)

    async def too_deep(request: Request, exc: Exception) -> Response:
        return error_response(400, "BadJsonBody", f"{request.method} {request.url.path}: the request holds JSON nested too deeply to parse")

    async def server_error(request: Request, exc: Exception) -> Response:
        return error_response(500, "InternalServerError", f"{type(exc).__name__}: {exc}")

    routes = [
        Route("/api/query", api.udf("query"), methods=["POST", "GET"]),
        Route("/api/mutation", api.udf("mutation"), methods=["POST"]),
        Route("/api/action", api.udf("action"), methods=["POST"]),
        Route("/api/function", api.function, methods=["POST"]),
        Route("/api/run/{path:path}", api.run_path, methods=["POST"]),
        Route("/api/query_ts", api.query_ts, methods=["POST", "GET"]),
        Route("/api/query_at_ts", api.query_at_ts, methods=["POST"]),
        Route("/api/query_batch", api.query_batch, methods=["POST"]),
        Route("/api/list_snapshot", data.list_snapshot, methods=["GET"]),
        Route("/api/document_deltas", data.document_deltas, methods=["GET"]),
        Route("/api/import", data.import_table, methods=["POST"]),
        Route("/api/export/request/zip", snapshots.request_export, methods=["POST"]),
        Route("/api/export/zip/{ts}", snapshots.download_export, methods=["GET"]),
        Route("/api/import/start_upload", snapshots.start_upload, methods=["POST"]),
        Route("/api/import/upload_part", snapshots.upload_part, methods=["POST"]),
        Route("/api/import/finish_upload", snapshots.finish_upload, methods=["POST"]),
        Route("/api/perform_import", snapshots.perform_import, methods=["POST"]),
        Route("/api/storage/upload", files.upload, methods=["POST"]),
        Route("/api/storage/upload", files.preflight, methods=["OPTIONS"]),
        Route("/api/storage/{storage_id}", files.download, methods=["GET"]),
        Route("/api/storage/{storage_id}", files.preflight, methods=["OPTIONS"]),
        Route("/api/update_environment_variables", env.update, methods=["POST"]),
        Route("/api/stream_function_logs", function_logs.stream, methods=["GET"]),
        Route("/version", version, methods=["GET"]),
        WebSocketRoute("/api/sync", sync),
        WebSocketRoute("/api/{client_version}/sync", sync),
    ]
    api_routes = list(routes)
    routes.append(Route("/{path:path}", http_action, methods=["GET", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"]))
    app = Starlette(
        routes=routes,
        exception_handlers={HTTPException: not_found, RecursionError: too_deep, 500: server_error},
    )
    return _CollapseSlashes(_ApiCors(app))
