"""``POST /api/update_environment_variables``: how ``npx convex env set|remove`` (and
``convex-notebook env``) change a served deployment's environment variables.

Body ``{"changes": [{"name": "KEY", "value": "v"}, {"name": "OLD", "value": null}]}`` (null
removes); admin key required; every change is checked first, then all are applied in one
commit (a bad name changes nothing: 400 naming it). Reading is done through the system queries
``_system/cli/queryEnvironmentVariables`` (all) and ``...:get`` (one), see backend/system.py.
Values are never logged.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from ..backend.env import EnvError, apply_changes
from .http import TS_HEADER, HttpApi, RequestError, json_response

__all__ = ["EnvApi"]


class EnvApi(HttpApi):
    """The environment variables endpoint of one deployment."""

    async def update(self, request: Request) -> Response:
        async def run(request: Request) -> Response:
            self._require_admin(request)
            body = await self._body(request)
            changes = body.get("changes")
            if not isinstance(changes, list):
                raise RequestError(400, "BadJsonBody", "Request body needs 'changes', a list of {name, value}")
            pairs = []
            for change in changes:
                if not isinstance(change, dict) or "name" not in change:
                    raise RequestError(400, "BadJsonBody", "Each change is {\"name\": ..., \"value\": string or null}")
                pairs.append((change["name"], change.get("value")))
            backend = self.dep.backend
            try:
                await self.dep.run_blocking(apply_changes, backend, pairs)
            except EnvError as exc:
                raise RequestError(400, "InvalidEnvironmentVariable", str(exc)) from None
            return json_response({}, headers={TS_HEADER: str(backend.latest_ts())})

        return await self._guard(request, run)
