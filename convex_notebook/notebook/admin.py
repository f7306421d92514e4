"""Admin reads and writes for the magics and the dashboard (not logged as function calls).

Everything takes a deployment (``backend/contract.py``: an embedded ``Backend`` or
``cn.connect("http://...", admin_key=...)``) as its first argument; :class:`NotSupported`
explains what is missing (a remote deployment's admin key).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .display import to_display_json

if TYPE_CHECKING:
    from ..backend.contract import Deployment
    from ..backend.logs import LogBook

__all__ = [
    "NotSupported",
    "Page",
    "clear_tables",
    "describe_args",
    "log_book",
    "read_documents",
    "read_page",
    "scheduled_functions",
    "table_counts",
    "visible_functions",
]

ADHOC_MODULE = "_adhoc"  # where %%convex_query registers its ad-hoc queries (hidden)


class NotSupported(RuntimeError):
    """The connected deployment cannot do this (for example, a remote one)."""


@contextmanager
def _admin_call() -> Iterator[None]:
    """A remote deployment refuses admin reads without its key: say so as NotSupported."""
    try:
        yield
    except PermissionError as exc:
        raise NotSupported(f"{exc} (or %convex connect URL --admin-key KEY)") from None


def deployment_name(app: Deployment) -> str:
    return app.location


def table_counts(app: Deployment) -> list[tuple[str, int]]:
    """``[(table, documents)]`` sorted by name."""
    with _admin_call():
        return [(name, app.count(name)) for name in sorted(app.table_names())]


def visible_functions(app: Deployment) -> list[Any]:
    """The deployment's functions, without the notebook's own ad-hoc queries."""
    with _admin_call():
        functions = app.functions()
    return [f for f in functions if not f.path.startswith(ADHOC_MODULE + ":")]


def describe_args(definition: Any) -> list[dict[str, Any]]:
    """The argument fields of a function: ``[{"name", "type", "kind", "optional"}]``.

    ``kind`` is the validator kind (``string``, ``float64``, ``boolean``, ``id``, ...) that the
    dashboard's form uses to pick an input; unvalidated functions have no fields.
    """
    validator = getattr(definition, "args", None)
    fields = getattr(validator, "fields", None)
    if not fields:
        return []
    out = []
    for name, field in fields.items():
        shown = repr(field.as_required()) if hasattr(field, "as_required") else repr(field)
        out.append({"name": name, "type": shown, "kind": field.kind, "optional": bool(field.is_optional)})
    return out


@dataclass
class Page:
    """One page of a table, newest first by default."""

    documents: list[dict]
    cursor: str | None  # where this page started
    continue_cursor: str | None
    is_done: bool


def read_page(app: Deployment, table: str, *, cursor: str | None = None, num_items: int = 25,
              order: str = "desc") -> Page:
    """A page of ``table`` in ``_creationTime`` order, read at the latest snapshot."""
    with _admin_call():
        result = app.table_page(table, cursor=cursor, num_items=num_items, order=order)
    return Page(result["page"], cursor, result["continueCursor"] or None, bool(result["isDone"]))


def read_documents(
    app: Deployment, table: str, *, limit: int | None = 50, order: str = "desc", at: Any = None
) -> list[dict]:
    """Up to ``limit`` documents of ``table`` (all of them with ``limit=None``); ``at``: as
    the table was then (a timestamp, a ``datetime`` or a ``timedelta`` ago)."""
    if limit is not None and at is None:  # one page at the latest snapshot
        return read_page(app, table, num_items=limit, order=order).documents if limit > 0 else []
    with _admin_call():
        docs = app.documents(table, at=at)
    docs = docs[::-1] if order == "desc" else docs
    return docs if limit is None else docs[:limit]


def clear_tables(app: Deployment) -> int:
    """Delete every document of every table in one transaction (functions and schema stay);
    returns how many."""
    with _admin_call():
        return int(app.clear_tables())


def log_book(app: Deployment) -> LogBook | None:
    """The deployment's log book (``.tail(n)``, iteration), or None without the admin key."""
    try:
        return app.logs
    except PermissionError:  # a remote deployment without its admin key
        return None


def scheduled_functions(app: Deployment, limit: int = 50) -> list[dict] | None:
    """Recent scheduled functions (``_scheduled_functions``); None without the admin key."""
    try:
        docs = app.scheduled_functions(limit)
    except PermissionError:
        return None
    out = []
    for doc in docs:
        state = doc.get("state")
        out.append({
            "id": doc.get("_id"),
            "name": doc.get("name"),
            "scheduled": _format_ms(doc.get("scheduledTime")),
            "state": state.get("kind") if isinstance(state, dict) else str(state),
            "args": json.dumps(to_display_json(doc.get("args")), ensure_ascii=False),
        })
    return out


def cron_jobs(app: Deployment) -> list[dict] | None:
    """The cron jobs by name: schedule, function, next run, runs so far; None without the
    admin key."""
    try:
        jobs = app.cron_jobs()
    except PermissionError:
        return None
    return [
        {"name": job["name"], "schedule": job["schedule"], "function": job["function"],
         "next": _format_ms(job["nextRun"]) if job["nextRun"] else "", "runs": int(job["runs"])}
        for job in jobs
    ]


def stored_files(app: Deployment, limit: int = 50) -> list[dict] | None:
    """The newest files of file storage (``_storage``); None without the admin key."""
    try:
        docs = app.stored_files(limit)
    except PermissionError:
        return None
    return [
        {
            "id": doc["_id"],
            "created": _format_ms(doc["_creationTime"]),
            "size": doc.get("size"),
            "type": doc.get("contentType") or "",
            "sha256": str(doc.get("sha256", "")),
        }
        for doc in docs
    ]


def _format_ms(ms: Any) -> str:
    from .display import format_cell

    return format_cell(ms, "_creationTime") or "" if isinstance(ms, (int, float)) else ""
