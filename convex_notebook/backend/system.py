"""System functions: the deployment's own admin API under ``_system/``.

As in Convex, the CLI and dashboards read a deployment through functions of its own rather
than through a separate protocol: ``_system/cli/tables``, ``_system/cli/tableData``... They are
internal (callable only with the admin key: ``/api/query``, ``/api/function``, or a WebSocket
authenticated as admin, which is how ``npx convex data`` reads them), never listed among the
app's functions, and not recorded in its logs. Their reads are recorded like any query's, so
they stay live (``tables`` re-runs when a table is created, ``tableSize`` on any write to it). A remote notebook (the
``DeploymentClient``) uses them for ``table_names()``, ``count()``, the dashboard's document
browser, the function list and ``%convex reset``.
"""

from __future__ import annotations

from typing import Any

from ..engine import bulk
from ..engine.readset import catalog_range, point_range, table_range
from ..values import encode_value
from ..values.validators import v
from .registry import FunctionDef, canonical_path, make_definition

__all__ = ["SYSTEM_PREFIX", "is_system_path", "lookup_system", "publish_state", "table_page"]

SYSTEM_PREFIX = "_system/"


def is_system_path(path: str) -> bool:
    return path.startswith(SYSTEM_PREFIX)


# -- deployment state (latest export, imports) ----------------------------------------------------
STATE_TABLE = "_system_state"  # not a stored table: the (table, index) its changes are written to


def publish_state(backend: Any, name: str, value: Any) -> None:
    """Set a piece of deployment state, as a commit: system queries showing it re-run."""
    with backend.database.write() as txn:
        backend.system_state[name] = value
        txn.writes.add(STATE_TABLE, "by_id", encode_value(name))


def _state(ctx: Any, name: str) -> Any:
    ctx._txn.reads.add(point_range(STATE_TABLE, "by_id", encode_value(name)))
    return ctx._backend.system_state.get(name)


def _latest_export(ctx: Any) -> Any:
    """The latest snapshot export (``npx convex export`` waits for it to complete)."""
    return _state(ctx, "latest_export")


def _imports(ctx: Any) -> list:
    """Snapshot imports (``npx convex import`` checks for one in progress)."""
    return list((_state(ctx, "imports") or {}).values())


def _import(ctx: Any, importId: str) -> Any:
    """One snapshot import, by id (``npx convex import`` follows its state)."""
    found = (_state(ctx, "imports") or {}).get(importId)
    if found is None:
        raise ValueError(f"No snapshot import {importId!r}")
    return found


def _tables(ctx: Any, paginationOpts: dict | None = None) -> dict:
    """The tables, by name, as one page (Convex's shape: ``npx convex data`` pages through it).
    Live: a subscription re-runs when a table is created."""
    ctx._txn.reads.add(catalog_range())
    names = sorted(ctx._backend.database.table_names())
    return {"page": [{"name": name} for name in names], "isDone": True, "continueCursor": ""}


def _table_size(ctx: Any, tableName: str) -> float:
    """Number of documents (live: re-runs on any write to the table)."""
    ctx._txn.reads.add(table_range(tableName))
    return float(bulk.table_count(ctx._txn, tableName))


def table_page(backend: Any, txn: Any, table: str, pagination_opts: dict, order: str = "asc") -> dict:
    """A ``paginate`` page of ``table`` in ``_creationTime`` order, read in ``txn`` (its reads
    recorded there): the one paging of tables, for ``table_page`` on both sides of the contract
    and for ``/api/list_snapshot``. A table that does not exist is one empty page."""
    from .context import QueryCtx

    if txn.table(table) is None:
        return {"page": [], "isDone": True, "continueCursor": ""}
    return QueryCtx(backend, txn, None).db.query(table).order(order).paginate(pagination_opts)


def _table_data(ctx: Any, table: str, paginationOpts: dict, order: str | None = None) -> dict:
    """A page of a table in ``_creationTime`` order (``"asc"`` by default)."""
    return table_page(ctx._backend, ctx._txn, table, paginationOpts, order or "asc")


def _functions(ctx: Any) -> list[dict]:
    """The app's functions: path, kind, visibility and argument validator (Convex's JSON form)."""
    out = []
    for d in ctx._backend.functions():
        out.append({
            "path": d.path,
            "kind": d.kind,
            "visibility": d.visibility,
            "args": d.args.json if d.args is not None else None,
        })
    return out


def _logs(ctx: Any, limit: float = 50) -> list[dict]:
    """The latest function executions, oldest first."""
    n = max(0, int(limit))
    entries = ctx._backend.logs.tail(n) if n else []
    return [
        {
            "time": e.timestamp * 1000,
            "path": e.path,
            "kind": e.kind,
            "lines": list(e.lines),
            "durationMs": float(e.duration_ms),
            "error": e.error,
            "usage": {k: float(n) for k, n in e.usage.items()},
        }
        for e in entries
    ]


def _env_list(ctx: Any) -> list[dict]:
    """The deployment's environment variables, ``[{"name", "value"}]`` (``npx convex env list``)."""
    from .env import read_all

    return [{"name": k, "value": val} for k, val in read_all(ctx._txn).items()]


def _env_get(ctx: Any, name: str) -> dict | None:
    """One environment variable, ``{"name", "value"}`` or null (``npx convex env get``)."""
    from .env import read_variable

    value = read_variable(ctx._txn, name)
    return None if value is None else {"name": name, "value": value}


_FUNCTION_TYPES = {"query": "Query", "mutation": "Mutation", "action": "Action"}


def _api_spec(ctx: Any) -> list[dict]:
    """The app's functions as Convex's ``_system/cli/modules:apiSpec`` (``npx convex function-spec``):
    ``functionType``, ``identifier`` (``module.js:fn``), ``visibility``, ``args`` / ``returns``
    (validator JSON, as strings)."""
    import json

    out: list[dict] = []
    for d in ctx._backend.functions():
        mount = getattr(d, "mount", None)  # a component's function: its own path, and the mount
        module, _, name = (d.local_path if mount is not None else d.path).partition(":")
        spec = {
            "functionType": _FUNCTION_TYPES[d.kind],
            "identifier": f"{module}.js:{name or 'default'}",
            "visibility": {"kind": d.visibility},
            "args": json.dumps(d.args.json if d.args is not None else {"type": "any"}),
            "returns": json.dumps(d.returns.json if d.returns is not None else {"type": "any"}),
        }
        if mount is not None:
            spec["componentPath"] = mount.name
        out.append(spec)
    for method, route in ctx._backend.http.routes():
        out.append({"functionType": "HttpAction", "method": method, "path": route})
    return out


def _cloud_url(ctx: Any) -> str:
    """The deployment's URL (``npx convex function-spec`` prints it)."""
    return getattr(ctx._backend, "served_url", None) or ctx._backend.site_url


def _clear_tables(ctx: Any) -> float:
    """Delete every document of every table in one exclusive transaction (functions and schema
    stay): an action, so that the backend runs its own exclusive clear (``Backend.clear_tables``)."""
    return float(ctx._backend.clear_tables())


def _clear_table(ctx: Any, table: str) -> float:
    """Delete every document of one table in one exclusive transaction."""
    return float(ctx._backend.clear_table(table))


def _delete_documents(ctx: Any, ids: list) -> float:
    """Delete documents by id in one transaction; how many existed (Convex's dashboard's
    ``_system/frontend/deleteDocuments``)."""
    found = 0
    for doc_id in ids:
        if ctx.db.get(doc_id) is not None:
            ctx.db.delete(doc_id)
            found += 1
    return float(found)


def _replace_document(ctx: Any, id: str, document: dict) -> None:
    """Replace a document's fields, validated by the schema (the dashboard's editor)."""
    ctx.db.replace(id, document)


def _cancel_job(ctx: Any, id: str) -> None:
    """Cancel a pending scheduled function (``ctx.scheduler.cancel``)."""
    ctx.scheduler.cancel(id)


def _scheduled_jobs(ctx: Any, limit: float = 50) -> list:
    """The newest scheduled functions (``_scheduled_functions``)."""
    return ctx.db.system.query("_scheduled_functions").order("desc").take(max(0, int(limit)))


def _stored_files(ctx: Any, limit: float = 50) -> list:
    """The newest files of file storage (``_storage``)."""
    return ctx.db.system.query("_storage").order("desc").take(max(0, int(limit)))


def _cron_jobs(ctx: Any) -> list[dict]:
    """The cron jobs by name: schedule, function, next run (ms), runs so far."""
    backend = ctx._backend
    out = []
    for job in sorted(backend.crons.jobs.values(), key=lambda j: j.name):
        ref = job.ref
        definition = backend.registry.lookup(ref) if isinstance(ref, str) else getattr(ref, "definition", None)
        out.append({
            "name": job.name,
            "schedule": f"every {job.interval_s:g} s" if job.interval_s is not None else f"cron {job.cron}",
            "function": definition.path if definition is not None else str(ref),
            "nextRun": float(job.next_run_ms) if job.next_run_ms else None,
            "runs": float(job.runs),
        })
    return out


def _deploy_module(ctx: Any, name: str, source: str, replace: bool = True) -> dict:
    """Deploy Python source as module ``name`` on this deployment (a remote ``%%convex_module``:
    the admin key runs code here, as ``serve --functions`` does). A source error comes back as
    a ``ConvexError`` with ``{"code": "SourceError", "message", "line"}``."""
    from ..errors import ConvexError
    from .project import SourceError

    try:
        report = ctx._backend.deploy_module(name, source, replace=replace)
    except SourceError as exc:
        raise ConvexError({"code": "SourceError", "message": str(exc), "line": exc.line}) from None
    return {"name": report.name, "functions": [list(f) for f in report.functions], "removed": report.removed,
            "reruns": float(report.reruns)}


def _remove_functions(ctx: Any, paths: list) -> list:
    """Remove functions by path; the paths removed."""
    return ctx._backend.remove_functions(paths)


_PAGINATION = v.object({
    "numItems": v.number(),
    "cursor": v.union(v.string(), v.null()),
    "endCursor": v.optional(v.union(v.string(), v.null())),
    "maximumRowsRead": v.optional(v.number()),
    "maximumBytesRead": v.optional(v.number()),
    "id": v.optional(v.number()),
})


def _define(kind: str, name: str, handler: Any, args: Any = None) -> FunctionDef:
    return make_definition(kind, handler, internal=True, name=name, module=None, args=args or {}, returns=None)


_SYSTEM: dict[str, FunctionDef] = {
    d.path: d
    for d in (
        _define("query", "_system/cli/tables:default", _tables, {"paginationOpts": v.optional(_PAGINATION)}),
        _define("query", "_system/cli/tableSize:default", _table_size, {"tableName": v.string()}),
        _define(
            "query", "_system/cli/tableData:default", _table_data,
            {"table": v.string(), "paginationOpts": _PAGINATION,
             "order": v.optional(v.union(v.literal("asc"), v.literal("desc")))},
        ),
        # Not in the database (nothing a query could be invalidated by): actions, never cached.
        _define("action", "_system/cli/functions:default", _functions),
        _define("action", "_system/cli/logs:default", _logs, {"limit": v.optional(v.number())}),
        _define("action", "_system/cli/clearTables:default", _clear_tables),
        _define("action", "_system/cli/clearTable:default", _clear_table, {"table": v.string()}),
        _define("mutation", "_system/frontend/deleteDocuments:default", _delete_documents,
                {"ids": v.array(v.string())}),
        _define("mutation", "_system/frontend/replaceDocument:default", _replace_document,
                {"id": v.string(), "document": v.any()}),
        _define("mutation", "_system/frontend/cancelJob:default", _cancel_job, {"id": v.string()}),
        _define("query", "_system/frontend/scheduledJobs:default", _scheduled_jobs, {"limit": v.optional(v.number())}),
        _define("query", "_system/frontend/storedFiles:default", _stored_files, {"limit": v.optional(v.number())}),
        _define("action", "_system/frontend/cronJobs:default", _cron_jobs),  # not in the database: never cached
        _define("action", "_system/cli/deployModule:default", _deploy_module,
                {"name": v.string(), "source": v.string(), "replace": v.optional(v.boolean())}),
        _define("action", "_system/cli/removeFunctions:default", _remove_functions, {"paths": v.array(v.string())}),
        _define("query", "_system/cli/exports:getLatest", _latest_export),
        _define("query", "_system/cli/queryImport:list", _imports),
        _define("query", "_system/cli/queryImport:default", _import, {"importId": v.string()}),
        _define("query", "_system/cli/modules:apiSpec", _api_spec),
        _define("query", "_system/cli/convexUrl:cloudUrl", _cloud_url),
        _define("query", "_system/cli/queryEnvironmentVariables:default", _env_list),
        _define("query", "_system/cli/queryEnvironmentVariables:get", _env_get, {"name": v.string()}),
    )
}


def lookup_system(ref: Any) -> FunctionDef | None:
    """The system function at a path (``"_system/cli/tables"``, with or without ``:default``)."""
    if not isinstance(ref, str) or not is_system_path(ref):
        return None
    path = canonical_path(ref)
    return _SYSTEM.get(path) or _SYSTEM.get(f"{path}:default")
