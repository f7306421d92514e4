"""Convex's HTTP API (``PROTOCOL.md`` §2): ``/api/query``, ``/api/mutation``, ``/api/action``,
``/api/run/{path}``, ``/api/function``, ``/api/query_ts``, ``/api/query_at_ts``,
``/api/query_batch``.

A function's own failure is HTTP 200 with ``{"status": "error", ...}``; a bad request (JSON,
value, auth, route) is 4xx with ``{"code", "message"}``, which every official client reads.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from ..errors import InvalidValueError
from . import protocol as P
from .auth import (
    ANONYMOUS,
    AuthenticationError,
    Credentials,
    parse_authorization,
    split_authorization,
)

if TYPE_CHECKING:
    from ..backend.app import Invocation
    from .deployment import Deployment

__all__ = ["HttpApi", "error_response"]

TS_HEADER = "x-convex-notebook-ts"  # the commit (or snapshot) timestamp of the answer, in ns


class RequestError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(P.dumps(body), status_code=status, media_type="application/json", headers=headers)


def error_response(status: int, code: str, message: str) -> Response:
    return json_response({"code": code, "message": message}, status)


def udf_response(inv: Invocation, encode: Callable[[Any], Any]) -> dict:
    """``{"status": "success", "value", "logLines"}`` or ``{"status": "error", ...}``."""
    if inv.error is None:
        try:
            return {"status": "success", "value": encode(inv.value), "logLines": inv.log_lines}
        except Exception as exc:  # noqa: BLE001 - a result we cannot encode is the function's error
            inv.error = exc
    message, data, has_data = P.error_fields(inv.error, encode)
    out: dict[str, Any] = {"status": "error", "errorMessage": message, "logLines": inv.log_lines}
    if has_data:
        out["errorData"] = data
    return out


class HttpApi:
    """The HTTP endpoints of one deployment."""

    def __init__(self, deployment: Deployment) -> None:
        self.dep = deployment

    # -- request helpers ---------------------------------------------------------------------
    async def _raw_body(self, request: Request, limit: int) -> bytes:
        """The request body, refused (413) beyond ``limit`` bytes before reading all of it."""
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise RequestError(413, "PayloadTooLarge", f"Request body is larger than {limit} bytes")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise RequestError(413, "PayloadTooLarge", f"Request body is larger than {limit} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    async def _body(self, request: Request, *, most: tuple[bytes, int, str] | None = None) -> dict:
        """The request's JSON object. ``most``: ``(marker, limit, error)``, a body holding
        the marker more than twice ``limit`` times is refused before it is parsed (a C-speed
        count; parsing a huge batch would hold the interpreter from everyone else)."""
        raw = await self._raw_body(request, self.dep.settings.max_message_bytes)
        if most is not None and len(raw) > 256 * 1024 and raw.count(most[0]) > 2 * most[1]:
            raise RequestError(400, "TooManyQueries", most[2])
        if not raw.strip():
            return {}
        try:
            if len(raw) > 256 * 1024:  # a big body: parsed off the event loop
                body = await self.dep.run_blocking(P.loads, raw, "Request body")
            else:
                body = P.loads(raw, "Request body")
        except P.ProtocolError as exc:
            raise RequestError(400, "BadJsonBody", str(exc)) from None
        if not isinstance(body, dict):
            raise RequestError(400, "BadJsonBody", "Request body must be a JSON object")
        return body

    def _header(self, request: Request) -> str | None:
        """The request's ``Authorization``; ``?adminKey=`` only when the server allows keys in
        URLs (they end up in logs and histories; the official clients send a header)."""
        header = request.headers.get("authorization")
        if "adminKey" in request.query_params:
            if not self.dep.settings.allow_admin_key_in_url:
                raise RequestError(
                    401, "Unauthenticated",
                    "An admin key in the URL (?adminKey=) is refused: send it as the header "
                    "'Authorization: Convex <admin key>' (or serve with allow_admin_key_in_url=True)",
                )
            if header is None:
                header = "Convex " + request.query_params["adminKey"]
        return header

    def _credentials(self, request: Request) -> Credentials:
        """Credentials from an admin key or nothing (no user token: see :meth:`credentials`)."""
        header = self._header(request)
        parts = split_authorization(header)
        if parts is not None and parts[0] == "bearer":
            raise RequestError(401, "Unauthenticated", f"{request.url.path} takes no user token")
        try:
            return parse_authorization(header, self.dep.admin_key, None)
        except AuthenticationError as exc:
            raise RequestError(401, exc.code, str(exc)) from None

    async def credentials(self, request: Request) -> Credentials:
        """The request's credentials; a user token is verified on the thread pool (checking
        it may fetch a provider's keys)."""
        header = self._header(request)
        parts = split_authorization(header)
        if parts is None:
            return ANONYMOUS
        try:
            if parts[0] == "bearer":
                return await self.dep.run_blocking(parse_authorization, header, self.dep.admin_key, self.dep.token_claims)
            return parse_authorization(header, self.dep.admin_key, None)
        except AuthenticationError as exc:
            raise RequestError(401, exc.code, str(exc)) from None

    def _require_admin(self, request: Request) -> Credentials:
        """The request's credentials, which must carry the admin key (else 401)."""
        parts = split_authorization(self._header(request))
        if parts is None or parts[0] != "convex":
            raise RequestError(401, "Unauthenticated", f"{request.url.path} needs the deployment's admin key")
        return self._credentials(request)

    @staticmethod
    def _path(body: dict) -> str:
        path = body.get("path")
        if not isinstance(path, str) or not path:
            raise RequestError(400, "BadJsonBody", "Request body needs 'path', a function path such as 'messages:list'")
        try:
            return P.with_component(body.get("componentPath"), path)
        except P.ProtocolError as exc:
            raise RequestError(400, "BadJsonBody", str(exc)) from None

    @staticmethod
    def _args(raw: Any) -> dict:
        try:
            return P.decode_args(raw)
        except InvalidValueError as exc:
            raise RequestError(400, "BadConvexValue", f"Invalid arguments: {exc}") from None

    @staticmethod
    def _encoder(fmt: Any, default: str = "json") -> Callable[[Any], Any]:
        if fmt is not None and not isinstance(fmt, str):
            raise RequestError(400, "BadFormat", "'format' must be a string")
        try:
            return P.encoder_for(fmt, default)
        except P.ProtocolError as exc:
            raise RequestError(400, exc.code, str(exc)) from None

    async def _invoke(self, creds: Credentials, path: str, args: dict, kind: str | None) -> Invocation:
        view = self.dep.backend.with_identity(creds.identity)
        return await self.dep.run_blocking(lambda: view.invoke(path, args, kind=kind, admin=creds.admin))

    async def _guard(self, request: Request, handler: Callable[[Request], Any]) -> Response:
        try:
            return await handler(request)
        except RequestError as exc:
            return error_response(exc.status, exc.code, str(exc))
        except RecursionError:  # JSON (or a value built from it) too deep for the parser
            return error_response(400, "BadJsonBody", "The request holds JSON nested too deeply to parse")

    # -- endpoints ---------------------------------------------------------------------------
    def udf(self, kind: str) -> Callable[[Request], Any]:
        """POST (and GET for queries) ``/api/{query,mutation,action}``."""

        async def handler(request: Request) -> Response:
            async def run(request: Request) -> Response:
                creds = await self.credentials(request)
                if request.method == "GET":
                    params = request.query_params
                    try:
                        raw_args = P.loads(params.get("args", "{}"), "'args'")
                    except P.ProtocolError as exc:
                        raise RequestError(400, "BadJsonBody", str(exc)) from None
                    body: dict = {"path": params.get("path"), "args": raw_args, "format": params.get("format")}
                else:
                    body = await self._body(request)
                path = self._path(body)
                encode = self._encoder(body.get("format"))
                args = self._args(body.get("args"))
                inv = await self._invoke(creds, path, args, kind)
                return json_response(udf_response(inv, encode), headers={TS_HEADER: str(inv.ts)})

            return await self._guard(request, run)

        return handler

    async def function(self, request: Request) -> Response:
        """POST ``/api/function``: any kind of function, by path (internal ones with an admin key)."""

        async def run(request: Request) -> Response:
            creds = await self.credentials(request)
            body = await self._body(request)
            path = self._path(body)
            encode = self._encoder(body.get("format"))
            args = self._args(body.get("args"))
            inv = await self._invoke(creds, path, args, None)
            return json_response(udf_response(inv, encode), headers={TS_HEADER: str(inv.ts)})

        return await self._guard(request, run)

    async def run_path(self, request: Request) -> Response:
        """POST ``/api/run/{module/path/function}``: ``a/b/fn`` means ``a/b:fn``."""

        async def run(request: Request) -> Response:
            creds = await self.credentials(request)
            body = await self._body(request)
            parts = request.path_params["path"].strip("/").split("/")
            if not parts or not all(parts):
                raise RequestError(400, "BadJsonBody", "The URL must name a function: /api/run/<module>/<function>")
            path = parts[0] if len(parts) == 1 else "/".join(parts[:-1]) + ":" + parts[-1]
            encode = self._encoder(body.get("format"))
            args = self._args(body.get("args"))
            inv = await self._invoke(creds, path, args, None)
            return json_response(udf_response(inv, encode), headers={TS_HEADER: str(inv.ts)})

        return await self._guard(request, run)

    async def query_ts(self, request: Request) -> Response:
        return json_response({"ts": P.encode_ts(self.dep.backend.latest_ts())})

    async def query_at_ts(self, request: Request) -> Response:
        """A query at a timestamp within the deployment's history (``/api/query_ts`` gives the
        latest); older or future ones: 400 naming the readable range."""

        async def run(request: Request) -> Response:
            creds = await self.credentials(request)
            body = await self._body(request)
            path = self._path(body)
            encode = self._encoder(body.get("format"))
            args = self._args(body.get("args"))
            try:
                ts = P.decode_ts(body.get("ts"), "ts")
            except P.ProtocolError as exc:
                raise RequestError(400, "BadJsonBody", str(exc)) from None
            view = self.dep.backend.with_identity(creds.identity)
            oldest, latest = self.dep.backend.history_range()
            if not oldest <= ts <= latest:
                why = "it is in the future" if ts > latest else "it is older than the history kept"
                raise RequestError(
                    400, "QueryAtTsUnavailable",
                    f"Cannot run a query at ts {ts}: {why} (readable: {oldest} to {latest})",
                )
            inv = await self.dep.run_blocking(lambda: view.invoke(path, args, kind="query", admin=creds.admin, at=ts))
            return json_response(udf_response(inv, encode), headers={TS_HEADER: str(inv.ts)})

        return await self._guard(request, run)

    async def query_batch(self, request: Request) -> Response:
        """POST ``/api/query_batch``: ``{"queries": [{path, args, format}]}``, all at one timestamp."""

        async def run(request: Request) -> Response:
            creds = await self.credentials(request)
            limit = self.dep.settings.max_batch_queries
            body = await self._body(request, most=(b'"path"', limit, f"A query batch holds at most {limit} queries"))
            queries = body.get("queries")
            if not isinstance(queries, list):
                raise RequestError(400, "BadJsonBody", "Request body needs 'queries', an array")
            if len(queries) > limit:
                raise RequestError(
                    400, "TooManyQueries", f"A query batch holds at most {limit} queries; this one has {len(queries)}"
                )
            plan = []
            for q in queries:
                if not isinstance(q, dict):
                    raise RequestError(400, "BadJsonBody", "Each entry of 'queries' must be an object")
                plan.append((self._path(q), self._args(q.get("args")), self._encoder(q.get("format"))))
            view = self.dep.backend.with_identity(creds.identity)
            ts = self.dep.backend.latest_ts()

            def batch() -> list:  # one snapshot for all of them: the history at ts
                return [view.invoke(path, args, kind="query", admin=creds.admin, at=ts) for path, args, _ in plan]

            invs = await self.dep.run_blocking(batch)
            results = [udf_response(inv, enc) for inv, (_, _, enc) in zip(invs, plan)]
            return json_response({"results": results}, headers={TS_HEADER: str(ts)})

        return await self._guard(request, run)
