"""Admin writes of the dashboard: edit, delete, clear, cancel (API-level, validated).

Each is one admin call of the deployment's system functions (``_system/frontend/...``, the
contract's ``replace_document``, ``delete_documents``...), so the schema validates it and a
failure writes nothing, as an edit in Convex's dashboard; embedded or remote alike.
"""

from __future__ import annotations

import json
from collections.abc import MutableMapping
from typing import TYPE_CHECKING, Any

from .admin import NotSupported

if TYPE_CHECKING:
    from ..backend.contract import Deployment

__all__ = [
    "cancel_scheduled",
    "clear_table",
    "delete_documents",
    "env_mapping",
    "parse_document",
    "remove_env",
    "replace_document",
    "set_env",
]

SYSTEM_FIELDS = ("_id", "_creationTime")


def parse_document(text: str) -> dict:
    """A document's fields from the editor: a JSON object in Convex's JSON (``{"$integer": ...}``
    for Int64); ``_id`` and ``_creationTime`` may stay in it and are ignored."""
    from ..values import from_json

    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"the document is not JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise ValueError("the document must be a JSON object like {\"text\": \"hi\"}")  # noqa: TRY004 - bad JSON text
    return {k: v for k, v in from_json(raw).items() if k not in SYSTEM_FIELDS}


def replace_document(app: Deployment, doc_id: str, fields: dict) -> None:
    """Replace a document's fields (its id and creation time stay), validated by the schema."""
    app.replace_document(doc_id, fields)


def delete_documents(app: Deployment, ids: list[str]) -> int:
    """Delete documents by id, all in one transaction; returns how many existed."""
    return app.delete_documents(ids)


def clear_table(app: Deployment, table: str) -> int:
    """Delete every document of one table in one transaction; returns how many."""
    if table not in app.table_names():
        raise ValueError(f"no table named {table!r}")
    return app.clear_table(table)


def cancel_scheduled(app: Deployment, job_id: str) -> None:
    """Cancel a pending scheduled function (``ctx.scheduler.cancel``)."""
    app.cancel_scheduled(job_id)


# Convex's rule for environment variable names (``npx convex env set``).


def env_mapping(app: Deployment) -> MutableMapping | None:
    """The deployment's environment variables (``app.env``, API.md §9), or None without the
    admin key of a remote deployment."""
    try:
        return app.env
    except PermissionError:
        return None


def set_env(app: Any, name: str, value: str) -> None:
    """``app.env[name] = value``; the name follows Convex's rule (a letter, then letters,
    digits and underscores, at most 40)."""
    env = env_mapping(app)
    if env is None:
        raise NotSupported("this deployment has no environment variables here (app.env)")
    env[name] = value  # (the deployment checks the name and value, as Convex does)


def remove_env(app: Any, name: str) -> None:
    env = env_mapping(app)
    if env is None:
        raise NotSupported("this deployment has no environment variables here (app.env)")
    if name not in env:
        raise KeyError(f"no environment variable named {name!r}")
    del env[name]
