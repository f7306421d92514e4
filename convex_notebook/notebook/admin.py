"""Admin reads and writes for the magics and the dashboard (not logged as function calls).

Everything takes the app as its first argument and works on an embedded ``Backend`` and on a
remote deployment (``cn.connect("http://...", admin_key=...)``, through its ``table_page``,
``clear_tables``... methods); :class:`NotSupported` explains what is missing otherwise.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from .display import to_display_json

__all__ = [
    "NotSupported",
    "Page",
    "clear_tables",
    "describe_args",
    "is_embedded",
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


def is_embedded(app: Any) -> bool:
    return hasattr(app, "database") and hasattr(app, "registry")


def deployment_name(app: Any) -> str:
    if is_embedded(app):
        return f"sqlite:///{app.path}" if getattr(app, "path", None) else "memory://"
    return str(getattr(app, "url", None) or type(app).__name__)


def table_counts(app: Any) -> list[tuple[str, int]]:
    """``[(table, documents)]`` sorted by name."""
    with _admin_call():
        names = app.table_names() if hasattr(app, "table_names") else None
        if names is None:
            raise NotSupported("this deployment does not list its tables")
        return [(name, app.count(name)) for name in sorted(names)]


def visible_functions(app: Any) -> list[Any]:
    """Registered functions, without the notebook's own ad-hoc queries."""
    with _admin_call():
        functions = app.functions() if hasattr(app, "functions") else None
    if functions is None:
        raise NotSupported("this deployment does not list its functions")
    return [f for f in functions if not str(getattr(f, "path", "")).startswith(ADHOC_MODULE + ":")]


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


def read_page(app: Any, table: str, *, cursor: str | None = None, num_items: int = 25, order: str = "desc") -> Page:
    """A page of ``table`` in ``_creationTime`` order, read at the latest snapshot."""
    if order not in ("asc", "desc"):
        raise ValueError(f"order is 'asc' or 'desc', got {order!r}")
    if not is_embedded(app):
        if not hasattr(app, "table_page"):
            raise NotSupported("browsing documents needs an embedded backend or a remote deployment client")
        with _admin_call():
            result = app.table_page(table, cursor=cursor, num_items=num_items, order=order)
        return Page(result["page"], cursor, result["continueCursor"] or None, bool(result["isDone"]))
    from ..backend.context import QueryCtx

    with app.database.read() as txn:
        ctx = QueryCtx(app, txn, None)
        if app.database.table(table) is None:
            return Page([], cursor, None, True)
        result = ctx.db.query(table).order(order).paginate({"numItems": num_items, "cursor": cursor})
    return Page(result["page"], cursor, result["continueCursor"], bool(result["isDone"]))


def read_documents(
    app: Any, table: str, *, limit: int | None = 50, order: str = "desc", at: Any = None
) -> list[dict]:
    """Up to ``limit`` documents of ``table`` (all of them with ``limit=None``); ``at``: as
    the table was then (a timestamp, a ``datetime`` or a ``timedelta`` ago)."""
    if not is_embedded(app):
        if (limit is None or at is not None) and hasattr(app, "documents"):
            with _admin_call():
                docs = app.documents(table, at=at) if at is not None else app.documents(table)
            docs = docs[::-1] if order == "desc" else docs
            return docs if limit is None else docs[:limit]
        if at is not None or not hasattr(app, "table_page"):
            raise NotSupported("reading documents needs an embedded backend or a remote deployment client")
        return read_page(app, table, num_items=limit, order=order).documents
    from ..backend.context import QueryCtx
    from ..backend.timestamps import to_timestamp

    when = to_timestamp(at, app.database.clock_ns()) if at is not None else None
    with app.database.read(at=when) as txn:
        if txn.table(table) is None:
            return []
        query = QueryCtx(app, txn, None).db.query(table).order(order)
        return query.collect() if limit is None else query.take(limit)


def clear_tables(app: Any, batch: int = 1000) -> int:
    """Delete every document of every table (functions and schema stay); returns how many."""
    if not is_embedded(app):
        if not hasattr(app, "clear_tables"):
            raise NotSupported("reset needs an embedded backend or a remote deployment client")
        with _admin_call():
            return int(app.clear_tables())
    from ..backend.context import MutationCtx

    deleted = 0
    for name in app.table_names():
        while True:
            with app.database.write() as txn:
                db = MutationCtx(app, txn, None).db
                docs = db.query(name).take(batch)
                for doc in docs:
                    db.delete(doc["_id"])
            deleted += len(docs)
            if len(docs) < batch:
                break
    return deleted


def log_book(app: Any) -> Any:
    """The deployment's log book (``.tail(n)``, iteration), or None when it shows none."""
    try:
        return getattr(app, "logs", None)
    except PermissionError:  # a remote deployment without its admin key
        return None


def scheduled_functions(app: Any, limit: int = 50) -> list[dict] | None:
    """Recent scheduled functions (``_scheduled_functions``), or None without a scheduler."""
    if not is_embedded(app):
        return None
    from ..backend.context import QueryCtx

    try:
        with app.database.read() as txn:
            system = getattr(QueryCtx(app, txn, None).db, "system", None)
            if system is None:
                return None
            docs = system.query("_scheduled_functions").order("desc").take(limit)
    except Exception:  # noqa: BLE001 - a backend without the system table
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


def cron_jobs(app: Any) -> list[dict] | None:
    """The cron jobs (``app.crons``) by name: schedule, function, next run, runs so far; None
    where they cannot be listed (a remote deployment)."""
    crons = getattr(app, "crons", None) if is_embedded(app) else None
    if crons is None:
        return None
    out = []
    for job in sorted(list(crons.jobs.values()), key=lambda j: j.name):
        ref = job.ref
        definition = app.registry.lookup(ref) if isinstance(ref, str) else getattr(ref, "definition", None)
        out.append({
            "name": job.name,
            "schedule": f"every {job.interval_s:g} s" if job.interval_s is not None else f"cron {job.cron}",
            "function": definition.path if definition is not None else str(ref),
            "next": _format_ms(job.next_run_ms) if job.next_run_ms else "",
            "runs": job.runs,
        })
    return out


def stored_files(app: Any, limit: int = 50) -> list[dict] | None:
    """The newest files of file storage (``_storage``); None where they cannot be listed."""
    if not is_embedded(app):
        return None
    from ..backend.context import QueryCtx

    with app.database.read() as txn:
        docs = QueryCtx(app, txn, None).db.system.query("_storage").order("desc").take(limit)
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
