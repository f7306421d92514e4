"""``cn.connect(url).env``: a served deployment's environment variables, as ``app.env``.

Reads go through the system queries the npm CLI uses (``_system/cli/queryEnvironmentVariables``
and ``:get``), writes through ``POST /api/update_environment_variables``; both need the admin key.
"""

from __future__ import annotations

import json
from typing import Any

from ..backend.env import EnvironmentMapping, check_name

__all__ = ["RemoteEnvironment"]


class RemoteEnvironment(EnvironmentMapping):
    """The environment variables of a remote deployment (each access is a request)."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def _stored(self) -> dict[str, str]:
        self._client._require_admin("env")
        return {d["name"]: d["value"] for d in self._client._system("_system/cli/queryEnvironmentVariables")}

    def _apply(self, changes: list[tuple[str, str | None]]) -> None:
        self._client._require_admin("env")
        for name, _ in changes:
            check_name(name)  # a clear error before the request
        body = json.dumps({"changes": [{"name": n, "value": val} for n, val in changes]}).encode()
        self._client._http("POST", "/api/update_environment_variables", body=body)

    def __getitem__(self, name: str) -> str:
        self._client._require_admin("env")
        found = self._client._system("_system/cli/queryEnvironmentVariables:get", {"name": name}) if isinstance(name, str) else None
        if found is None:
            raise KeyError(name)
        return found["value"]

    def __repr__(self) -> str:
        return f"<env of {self._client.url}>"
