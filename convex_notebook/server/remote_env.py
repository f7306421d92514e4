"""``cn.connect(url).env``: a served deployment's environment variables, as ``app.env``.

Reads go through the system queries the npm CLI uses (``_system/cli/queryEnvironmentVariables``
and ``:get``), writes through ``POST /api/update_environment_variables``; both need the admin key.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, MutableMapping
from typing import Any

from ..backend.env import check_name

__all__ = ["RemoteEnvironment"]


class RemoteEnvironment(MutableMapping[str, str]):
    """The environment variables of a remote deployment (each access is a request)."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def _stored(self) -> dict[str, str]:
        self._client._require_admin("env")
        return {d["name"]: d["value"] for d in self._client._system("_system/cli/queryEnvironmentVariables")}

    def __getitem__(self, name: str) -> str:
        self._client._require_admin("env")
        found = self._client._system("_system/cli/queryEnvironmentVariables:get", {"name": name}) if isinstance(name, str) else None
        if found is None:
            raise KeyError(name)
        return found["value"]

    def _update(self, changes: list[tuple[str, str | None]]) -> None:
        self._client._require_admin("env")
        for name, _ in changes:
            check_name(name)  # a clear error before the request
        body = json.dumps({"changes": [{"name": n, "value": val} for n, val in changes]}).encode()
        self._client._http("POST", "/api/update_environment_variables", body=body)

    def __setitem__(self, name: str, value: str) -> None:
        self._update([(name, value)])

    def __delitem__(self, name: str) -> None:
        if name not in self:
            raise KeyError(name)
        self._update([(name, None)])

    def __iter__(self) -> Iterator[str]:
        return iter(self._stored())

    def __len__(self) -> int:
        return len(self._stored())

    def update(self, other: Any = (), /, **kwargs: str) -> None:  # type: ignore[override]
        """Set several variables in one request (one commit)."""
        items = list(other.items() if isinstance(other, Mapping) else other) + list(kwargs.items())
        self._update(items)

    def set(self, name: str, value: str | None) -> None:
        """Set ``name`` (``None`` removes it)."""
        self._update([(name, value)])

    def to_dict(self) -> dict[str, str]:
        return self._stored()

    def __repr__(self) -> str:
        return f"<env of {self._client.url}>"
