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
            raw = request.query_params.get("cursor", "0")
            try:
                cursor = int(float(raw))
            except ValueError:
                raise RequestError(400, "BadQueryParameter", f"'cursor' must be a number, got {raw!r}") from None
            book = self.dep.backend.logs
            wait = min(float(request.query_params.get("wait", LONG_POLL_S)), LONG_POLL_S)
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
