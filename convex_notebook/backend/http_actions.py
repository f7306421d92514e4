"""HTTP actions: functions that answer HTTP requests (``convex/http.ts``).

    @app.http.route(path="/messages", method="POST")
    def post_message(ctx, request):
        body = request.json()
        ctx.run_mutation("messages:send", body)
        return cn.HttpResponse(status=201)

    app.fetch("/messages", method="POST", json={"author": "a", "body": "hi"})   # in a notebook
    # served: POST http://127.0.0.1:3210/messages

A handler gets an action's ``ctx`` (``run_query``/``run_mutation``/``run_action``,
``storage``, ``scheduler``, ``auth`` from a ``Authorization: Bearer`` token) and an
:class:`HttpRequest`; it returns an :class:`HttpResponse` (or ``str``, ``bytes``, or a
JSON-able ``dict``/``list``). Routes match an exact ``path`` first, then the longest
``path_prefix``; ``/api/...`` is the deployment's own and cannot be routed.
"""

from __future__ import annotations

import asyncio
import json as _json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from . import logs
from .limits import LimitError, user_code

if TYPE_CHECKING:
    from .app import Backend

__all__ = ["HttpRequest", "HttpResponse", "HttpRouter"]

METHODS = ("GET", "POST", "PUT", "DELETE", "OPTIONS", "PATCH")


@dataclass
class HttpRequest:
    """An incoming request: ``method``, ``url``, ``path``, ``query`` (dict), ``headers``
    (lowercase names), ``body`` (bytes); ``text()`` and ``json()`` decode it."""

    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    @property
    def path(self) -> str:
        return urlsplit(self.url).path or "/"

    @property
    def query(self) -> dict[str, str]:
        return dict(parse_qsl(urlsplit(self.url).query, keep_blank_values=True))

    def text(self) -> str:
        return self.body.decode("utf-8")

    def json(self) -> Any:
        return _json.loads(self.body or b"null")


@dataclass
class HttpResponse:
    """What a handler answers: ``body`` (bytes or str), ``status``, ``headers``."""

    body: bytes | str = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def content(self) -> bytes:
        return self.body.encode("utf-8") if isinstance(self.body, str) else bytes(self.body)

    def text(self) -> str:
        return self.content.decode("utf-8")

    def json(self) -> Any:
        return _json.loads(self.content)


def _as_response(value: Any) -> HttpResponse:
    if isinstance(value, HttpResponse):
        return value
    if isinstance(value, str):
        return HttpResponse(value, headers={"Content-Type": "text/plain; charset=utf-8"})
    if isinstance(value, (bytes, bytearray)):
        return HttpResponse(bytes(value), headers={"Content-Type": "application/octet-stream"})
    if isinstance(value, (dict, list)) or value is None:
        return HttpResponse(_json.dumps(value), headers={"Content-Type": "application/json"})
    raise TypeError(f"An HTTP action returns cn.HttpResponse, str, bytes or a JSON dict/list, not {type(value).__name__}")


@dataclass
class _Route:
    method: str
    path: str
    prefix: bool
    handler: Callable[..., Any]


class HttpRouter:
    """``app.http``: the deployment's HTTP routes (redefining one replaces it)."""

    def __init__(self) -> None:
        self._routes: dict[tuple[str, str, bool], _Route] = {}

    def route(self, *, method: str, path: str | None = None, path_prefix: str | None = None,
              handler: Callable[..., Any] | None = None) -> Any:
        """``@app.http.route(path="/x", method="GET")``, or with ``handler=`` directly."""
        method = str(method).upper()
        if method not in METHODS:
            raise ValueError(f"route(): method is one of {', '.join(METHODS)}, got {method!r}")
        if (path is None) == (path_prefix is None):
            raise ValueError("route() takes exactly one of path= or path_prefix=")
        where = path if path is not None else path_prefix
        if not isinstance(where, str) or not where.startswith("/"):
            raise ValueError(f"route(): a path starts with '/', got {where!r}")
        if where == "/api" or where.startswith("/api/"):
            raise ValueError(f"route(): {where!r} is reserved for the deployment's API (/api/...)")
        if path_prefix is not None and not path_prefix.endswith("/"):
            raise ValueError(f"route(): a path_prefix ends with '/', got {path_prefix!r}")

        def register(fn: Callable[..., Any]) -> Callable[..., Any]:
            if not callable(fn):
                raise TypeError(f"route(): the handler must be a function of (ctx, request), got {type(fn).__name__}")
            logs.bind_print(fn)  # its print writes the call's log lines
            self._routes[(method, where, path_prefix is not None)] = _Route(method, where, path_prefix is not None, fn)
            return fn

        return register(handler) if handler is not None else register

    def lookup(self, method: str, path: str) -> _Route | None:
        exact = self._routes.get((method, path, False))
        if exact is not None:
            return exact
        prefixes = [r for (m, p, is_prefix), r in self._routes.items() if is_prefix and m == method and path.startswith(p)]
        return max(prefixes, key=lambda r: len(r.path)) if prefixes else None

    def routes(self) -> list[tuple[str, str]]:
        return sorted((r.method, r.path + ("*" if r.prefix else "")) for r in self._routes.values())


def run_http_action(backend: Backend, request: HttpRequest, identity: dict | None = None) -> HttpResponse:
    """Answer ``request`` with the matching route's handler (404 without one; 500 with the
    error when the handler fails). Logged like any function call."""
    from .context import ActionCtx

    route = backend.http.lookup(request.method.upper(), request.path)
    if route is None:
        body = _json.dumps({"code": "NoMatchingRoute", "message": f"No HTTP route for {request.method} {request.path}"})
        return HttpResponse(body, 404, {"Content-Type": "application/json"})
    shown = f"{route.method} {route.path}{'*' if route.prefix else ''}"
    started = time.perf_counter()
    error: str | None = None
    is_async = asyncio.iscoroutinefunction(route.handler)
    with logs.capture() as cap, backend._measured() as usage:
        try:
            ctx = ActionCtx(backend, identity, is_async=is_async, now_ms=backend.database.clock.now_ms())
            limits = backend.limits
            if is_async:
                result = backend._run_coroutine(
                    route.handler(ctx, request), timeout=limits.action_seconds, describe=f"HTTP action {shown}"
                )
            else:
                with user_code(limits.action_seconds, "HTTP action", shown, limit_name="action_seconds"):
                    result = route.handler(ctx, request)
            response = _as_response(result)
            size = len(response.content)
            if limits.http_response_bytes is not None and size > limits.http_response_bytes:
                raise LimitError(
                    f"HTTP action {shown}: the response is too large ({size} bytes; the limit is "
                    f"{limits.http_response_bytes} bytes: cn.Limits(http_response_bytes=...))"
                )
        except Exception as exc:  # noqa: BLE001 - the client gets a 500 with the error
            error = f"{type(exc).__name__}: {exc}"
            response = HttpResponse(_json.dumps({"code": "HttpActionFailed", "message": error}), 500,
                                    {"Content-Type": "application/json"})
    backend._record_call(shown, "httpAction", cap.lines, started, error, usage)
    return response
