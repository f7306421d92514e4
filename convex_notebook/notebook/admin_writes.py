"""Admin writes of the dashboard: edit, delete, clear, cancel (API-level, validated).

Each is one inline admin mutation (``app.run(lambda ctx: ...)``), so the schema validates it
and a failure writes nothing, as an edit in Convex's dashboard. They need an embedded
backend; a remote deployment answers :class:`~convex_notebook.notebook.admin.NotSupported`.
"""

from __future__ import annotations

import json
from collections.abc import MutableMapping
from typing import Any

from .admin import NotSupported, is_embedded

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


def _embedded(app: Any, what: str) -> None:
    if not is_embedded(app):
        raise NotSupported(f"{what} needs an embedded backend (this dashboard shows a remote deployment)")


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


def replace_document(app: Any, doc_id: str, fields: dict) -> None:
    """Replace a document's fields (its id and creation time stay), validated by the schema."""
    _embedded(app, "editing documents")
    app.run(lambda ctx: ctx.db.replace(doc_id, fields))


def delete_documents(app: Any, ids: list[str]) -> int:
    """Delete documents by id, all in one transaction; returns how many existed."""
    _embedded(app, "deleting documents")

    def delete(ctx: Any) -> int:
        found = 0
        for doc_id in ids:
            if ctx.db.get(doc_id) is not None:
                ctx.db.delete(doc_id)
                found += 1
        return found

    return int(app.run(delete))


def clear_table(app: Any, table: str, batch: int = 1000) -> int:
    """Delete every document of one table (in batches of ``batch``); returns how many."""
    _embedded(app, "clearing a table")
    if table not in app.table_names():
        raise ValueError(f"no table named {table!r}")
    deleted = 0
    while True:
        def take(ctx: Any) -> int:
            docs = ctx.db.query(table).take(batch)
            for doc in docs:
                ctx.db.delete(doc["_id"])
            return len(docs)

        done = int(app.run(take))
        deleted += done
        if done < batch:
            return deleted


def cancel_scheduled(app: Any, job_id: str) -> None:
    """Cancel a pending scheduled function (``ctx.scheduler.cancel``)."""
    _embedded(app, "canceling a scheduled function")
    app.run(lambda ctx: ctx.scheduler.cancel(job_id))


# Convex's rule for environment variable names (``npx convex env set``).


def env_mapping(app: Any) -> MutableMapping | None:
    """The deployment's environment variables (``app.env``, API.md §9), or None without them."""
    try:
        env = getattr(app, "env", None)
    except PermissionError:  # a remote deployment without its admin key
        return None
    return env if isinstance(env, MutableMapping) else None


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
