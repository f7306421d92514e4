"""``GET /api/stream_function_logs?cursor=N``: the log stream ``npx convex logs`` (and the log
pane of ``npx convex dev``) polls. Admin only.

Answers ``{"entries": [...], "newCursor": N}`` in Convex's shape: one entry per function
execution, ``{"kind": "Completion", "identifier": "tasks:add", "udfType": "Mutation",
"timestamp": seconds, "executionTime": seconds, "logLines": ["[LOG] ..."], "error"?}``. The
cursor counts executions (``0``: every kept one). With nothing new the request waits (a long
poll, up to ``wait`` seconds) so that a streaming client is told at once.
"""

from __future__ import annotations

import asyncio
import math

from starlette.requests import Request
from starlette.responses import Response

from .http import HttpApi, RequestError, json_response

__all__ = ["LogsApi"]

UDF_TYPES = {"query": "Query", "mutation": "Mutation", "action": "Action", "httpAction": "HttpAction"}
LONG_POLL_S = 2.0
POLL_EVERY_S = 0.1


class LogsApi(HttpApi):
    """The log stream of one deployment."""

    async def stream(self, request: Request) -> Response:
        async def run(request: Request) -> Response:
            self._require_admin(request)
            cursor = int(_finite_param(request, "cursor", 0))
            book = self.dep.backend.logs
            wait = min(_finite_param(request, "wait", LONG_POLL_S), LONG_POLL_S)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + wait
            entries, new_cursor = book.since(cursor)
            while not entries and cursor >= book.added and loop.time() < deadline and not self.dep.closed:
                await asyncio.sleep(POLL_EVERY_S)
                entries, new_cursor = book.since(cursor)
            out = []
            for e in entries:
                entry = {
                    "kind": "Completion",
                    "identifier": e.path,
                    "udfType": UDF_TYPES.get(e.kind, e.kind.capitalize()),
                    "timestamp": e.timestamp,
                    "executionTime": e.duration_ms / 1000,
                    "logLines": list(e.lines),
                    "usage": dict(e.usage),  # ours: what the call read and wrote
                }
                if e.error is not None:
                    entry["error"] = e.error
                out.append(entry)
            return json_response({"entries": out, "newCursor": new_cursor})

        return await self._guard(request, run)


def _finite_param(request: Request, name: str, default: float) -> float:
    """A numeric query parameter; 400 unless it is a finite number (``inf`` would make an
    int() fail, and ``nan`` compares false with everything)."""
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        return int(raw)  # exact, however large (a float would round a cursor past 2**53)
    except ValueError:
        pass
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise RequestError(400, "BadQueryParameter", f"'{name}' must be a number, got {raw[:40]!r}")
    return value
