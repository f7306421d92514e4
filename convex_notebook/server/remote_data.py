"""The data and admin half of the remote client: tables, documents, DataFrames, functions, logs.

Mixed into :class:`~convex_notebook.server.client.DeploymentClient` so that a remote deployment
offers what the notebook layer uses on a ``Backend`` (``table_names()``, ``count()``, ``df()``,
``import_dataframe()``, ``live()``, ``functions()``, ``logs``...). Everything here is an admin
HTTP request (it needs ``admin_key``): the deployment's system functions (``_system/cli/...``,
see ``backend/system.py``), Convex's streaming export (``/api/list_snapshot``) and table import
(``/api/import``). pandas is imported only by the DataFrame methods.
"""

from __future__ import annotations

import io
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any, Callable

from ..backend import logs as logbook
from ..backend.registry import FunctionNotFound
from ..engine.transaction import DatabaseError
from ..errors import ConvexFunctionError
from ..values import from_json, to_json
from ..values.validators import Validator, validator_from_json
from ..io.paths import snapshot_target

TS_HEADER = "x-convex-notebook-ts"  # (server/http.py) the commit timestamp of the answer

__all__ = ["RemoteDataMixin", "RemoteFunction", "SnapshotChanged"]

PAGE_SIZE = 8192  # documents per /api/list_snapshot request (the server's maximum)
SNAPSHOT_ATTEMPTS = 5  # a table written while it is read in pages is read again from the start
_IMPORT_MODES = {"insert": "requireEmpty", "append": "append", "replace": "replace"}
_IMPORT_FORMATS = {"jsonl": "jsonLines", "json": "jsonArray", "csv": "csv"}


class SnapshotChanged(ConvexFunctionError):
    """A table kept changing while it was read in pages: no consistent copy could be made."""


class HttpError(ConvexFunctionError):
    """The deployment refused an admin request (``code`` and ``status`` say why)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"HTTP {status} {code}: {message}")
        self.status = status
        self.code = code
        self.reason = message


@dataclass(frozen=True)
class RemoteFunction:
    """A function of a remote deployment, as ``Backend.functions()`` describes its own."""

    path: str
    kind: str
    internal: bool
    args: Validator | None

    @property
    def visibility(self) -> str:
        return "internal" if self.internal else "public"


class RemoteDataMixin:
    """Admin reads and writes of a remote deployment (see module docstring)."""

    url: str
    admin_key: str | None
    run: Callable[..., Any]
    _run_http: Callable[..., tuple[Any, int | None]]
    _catch_up_to: Callable[[int], None]

    # -- HTTP ---------------------------------------------------------------------------------
    def _http(
        self, method: str, path: str, *, params: dict | None = None, body: bytes | None = None,
        content_type: str = "application/json", timeout: float = 300,
    ) -> tuple[Any, Any]:
        """``(JSON answer, response headers)`` of an admin request; 4xx/5xx raise."""
        query = ("?" + urllib.parse.urlencode(params)) if params else ""
        headers = {"Content-Type": content_type, "Convex-Client": "convex-notebook"}
        if self.admin_key:
            headers["Authorization"] = f"Convex {self.admin_key}"
        request = urllib.request.Request(self.url + path + query, data=body, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return json.loads(response.read()), response.headers
        except urllib.error.HTTPError as exc:
            try:
                detail = json.loads(exc.read())
                code, message = str(detail.get("code")), str(detail.get("message"))
            except Exception:  # noqa: BLE001 - not one of our error bodies
                code, message = "HttpError", str(exc)
            if exc.code == 401:
                raise PermissionError(f"{code}: {message}") from None
            raise HttpError(exc.code, code, message) from None

    def _system(self, path: str, args: dict | None = None) -> Any:
        """A system query's answer (no need to wait for subscriptions: it wrote nothing)."""
        return self._run_http(path, args)[0]

    def _require_admin(self, what: str) -> None:
        if not self.admin_key:
            raise PermissionError(f"{what} on a remote deployment needs its admin key: cn.connect(url, admin_key=...)")

    def timestamp(self, at: Any) -> int:
        """A commit timestamp from ``at``: an ``int``, a ``datetime`` (naive: UTC) or a
        ``timedelta`` ago (counted back from this machine's clock)."""
        import time as _time

        from ..backend.timestamps import to_timestamp

        return to_timestamp(at, _time.time_ns())

    def query_at(self, target: Any, args: dict | None, at: Any) -> Any:
        """A query read at an earlier time (``/api/query_at_ts``)."""
        from .protocol import encode_ts

        path = target if isinstance(target, str) else getattr(target, "path", str(target))
        body = json.dumps({
            "path": path, "args": to_json(dict(args or {})), "format": "convex_encoded_json",
            "ts": encode_ts(self.timestamp(at)),
        }).encode()
        answer, _ = self._http("POST", "/api/query_at_ts", body=body)
        if answer.get("status") != "success":
            raise ConvexFunctionError(answer.get("errorMessage") or str(answer))
        return from_json(answer["value"])

    def latest_ts(self) -> int:
        """The deployment's latest commit timestamp (``/api/query_ts``): it moves on every
        commit, so a dashboard polls it to know when to re-read."""
        from .protocol import decode_ts

        answer, _ = self._http("POST", "/api/query_ts", body=b"{}")
        return decode_ts(answer["ts"], "ts")

    @property
    def env(self) -> Any:
        """The deployment's environment variables, a mapping like ``app.env`` (admin key)."""
        from .remote_env import RemoteEnvironment

        return RemoteEnvironment(self)

    # -- tables -------------------------------------------------------------------------------
    def table_names(self) -> list[str]:
        self._require_admin("table_names()")
        return [t["name"] for t in self._system("_system/cli/tables")["page"]]

    def count(self, table: str) -> int:
        """Number of documents in a table (0 if it doesn't exist)."""
        self._require_admin("count()")
        return int(self._system("_system/cli/tableSize", {"tableName": table}))

    def table_page(
        self, table: str, *, cursor: str | None = None, num_items: int = 25, order: str = "asc"
    ) -> dict:
        """A ``paginate`` result of ``table`` in ``_creationTime`` order (the dashboard's pages)."""
        self._require_admin("table_page()")
        return self._system("_system/cli/tableData", {
            "table": table, "order": order, "paginationOpts": {"numItems": num_items, "cursor": cursor},
        })

    def clear_tables(self) -> int:
        """Delete every document of every table, in one transaction (functions and schema stay)."""
        self._require_admin("clear_tables()")
        return int(self.run("_system/cli/clearTables"))

    def documents(self, table: str, *, at: Any = None) -> list[dict]:
        """Every document of ``table`` in ``_creationTime`` order, read at one snapshot (``at``:
        the one at that time, as ``query(..., at=)`` takes it)."""
        self._require_admin("documents()")
        when = self.timestamp(at) if at is not None else None
        for _ in range(SNAPSHOT_ATTEMPTS):
            docs = self._read_snapshot(table, when)
            if docs is not None:
                return docs
        raise SnapshotChanged(
            f"{table!r} changed during each of {SNAPSHOT_ATTEMPTS} attempts to read it: "
            "pause the writers, or read it with a query"
        )

    def _read_snapshot(self, table: str, at: int | None = None) -> list[dict] | None:
        docs: list[dict] = []
        params: dict[str, Any] = {"tableName": table, "format": "convex_encoded_json", "numItems": PAGE_SIZE}
        if at is not None:
            params["snapshot"] = at
        while True:
            try:
                page, _ = self._http("GET", "/api/list_snapshot", params=params)
            except HttpError as exc:
                if exc.code == "SnapshotUnavailable" and at is None:
                    return None  # past the history since the first page: start again
                raise
            for value in page["values"]:
                value.pop("_table", None)
                value.pop("_ts", None)
                docs.append(from_json(value))
            if not page["hasMore"]:
                return docs
            params["snapshot"], params["cursor"] = page["snapshot"], page["cursor"]

    # -- DataFrames -----------------------------------------------------------------------------
    def df(self, source: Any, args: dict | None = None, *, index: str | None = None, at: Any = None) -> Any:
        """As ``Backend.df``: a table name, a query's path (with ``args``), or documents; ``at``
        reads a table or a query as it was then."""
        from ..notebook.dataframes import to_dataframe

        if isinstance(source, str):
            tables = self.table_names() if self.admin_key else None
            if tables is not None and source in tables:
                if args is not None:
                    raise TypeError(f"df({source!r}, args): {source!r} is a table, not a query function")
                return self._table_frame(self.documents(source, at=at), index)
            try:
                if at is not None:
                    result = self.query_at(source, dict(args or {}), at)
                else:
                    result = self.query(source, dict(args or {}))  # type: ignore[attr-defined]
            except FunctionNotFound:
                if args is not None or tables is None:
                    raise
                return self._table_frame([], index)  # a table without documents yet, as on a Backend
            return to_dataframe(result, index=index)
        import pandas as pd

        if isinstance(source, pd.DataFrame):
            return source
        return to_dataframe(source, index=index)

    @staticmethod
    def _table_frame(docs: list[dict], index: str | None) -> Any:
        from ..notebook.dataframes import empty_table_frame, to_dataframe

        if not docs:  # as an embedded table without documents
            return empty_table_frame(index)
        return to_dataframe(docs, index=index)

    def import_dataframe(
        self, table: str, df: Any, mode: str = "insert", *, keep_ids: bool | None = None,
        nan: str = "keep", **options: Any,
    ) -> int:
        """As ``Backend.import_dataframe``, in one request and one transaction on the server
        (all rows or none). ``batch_size``, ``atomic`` and ``progress`` have no effect here."""
        from ..notebook.dataframes import SYSTEM_FIELDS, from_dataframe

        unknown = set(options) - {"batch_size", "atomic", "progress"}
        if unknown:
            raise TypeError(f"import_dataframe() got unexpected options: {', '.join(sorted(unknown))}")
        if mode not in _IMPORT_MODES:
            raise ValueError(f"mode= takes 'insert', 'replace' or 'append', got {mode!r}")
        self._require_admin("import_dataframe()")
        docs = from_dataframe(df, nan=nan)  # type: ignore[arg-type]
        if keep_ids is None:
            keep_ids = "_id" in df.columns
        if not keep_ids:
            docs = [{k: x for k, x in d.items() if k not in SYSTEM_FIELDS} for d in docs]
        body = io.StringIO()
        for doc in docs:
            body.write(json.dumps(to_json(doc), ensure_ascii=False, separators=(",", ":")))
            body.write("\n")
        return self._import(table, body.getvalue().encode("utf-8"), "jsonl", mode, what="import_dataframe")

    def import_table(self, table: str, path: str | os.PathLike[str], *, format: str | None = None, mode: str = "insert") -> int:
        """Import a JSONL, JSON or CSV file into a table of the deployment (``npx convex import --table``)."""
        from ..io.tables import table_format

        file = os.fspath(path)
        fmt = table_format(file, format)  # the embedded import's check: the same errors
        if mode not in _IMPORT_MODES:
            raise ValueError(f"mode= takes 'insert', 'replace' or 'append', got {mode!r}")
        self._require_admin("import_table()")
        with open(file, "rb") as f:
            data = f.read()
        return self._import(table, data, fmt, mode, what=os.path.basename(file))

    def export_table(self, table: str, path: str | os.PathLike[str], **options: Any) -> int:
        """Write a table's documents (one snapshot) to a JSONL, JSON or CSV file; as
        ``Backend.export_table`` (options: ``format``, ``encoding``)."""
        from ..io.tables import write_documents

        return write_documents(self.documents(table), path, **options)

    def export_snapshot(self, path: str | os.PathLike[str], *, include_file_storage: bool = False) -> str:
        """Write every table to a snapshot ZIP, as ``npx convex export`` (``path``: the file, or
        a directory to put ``snapshot_<ts>.zip`` in); returns the file's path."""
        self._require_admin("export_snapshot()")
        params = {"includeStorage": "true"} if include_file_storage else None
        self._http("POST", "/api/export/request/zip", params=params, body=b"")
        latest = self._system("_system/cli/exports:getLatest")
        if not isinstance(latest, dict) or latest.get("state") != "completed":
            raise ConvexFunctionError(f"The snapshot export did not complete: {latest!r}")
        ts = int(latest["start_ts"])
        target = snapshot_target(path, f"snapshot_{ts}.zip")
        request = urllib.request.Request(
            f"{self.url}/api/export/zip/{ts}", headers={"Authorization": f"Convex {self.admin_key}"}
        )
        tmp = target + ".part"
        try:
            with urllib.request.urlopen(request, timeout=300) as response, open(tmp, "wb") as out:
                while chunk := response.read(1 << 20):
                    out.write(chunk)
        except urllib.error.HTTPError as exc:
            raise HttpError(exc.code, "ExportDownloadFailed", f"downloading snapshot {ts}: {exc.reason}") from None
        os.replace(tmp, target)  # complete or not at all
        return target

    def import_snapshot(
        self, path: str | os.PathLike[str], *, mode: str = "insert", clear_other_tables: bool = False
    ) -> dict[str, int]:
        """Restore the tables of a snapshot ZIP, keeping ids (``npx convex import x.zip``);
        ``clear_other_tables`` (``--replace-all``): the tables it lacks are emptied. One transaction."""
        if mode not in _IMPORT_MODES:
            raise ValueError(f"mode= takes 'insert', 'replace' or 'append', got {mode!r}")
        self._require_admin("import_snapshot()")
        file = os.fspath(path)
        with open(file, "rb") as f:
            data = f.read()
        params = {"format": "zip", "mode": "replaceAll" if clear_other_tables else _IMPORT_MODES[mode]}
        answer = self._post_import(params, data, what=os.path.basename(file), target="the deployment")
        return {t: int(n) for t, n in answer["tables"].items()}

    def _import(self, table: str, data: bytes, fmt: str, mode: str, *, what: str) -> int:
        params = {"tableName": table, "mode": _IMPORT_MODES[mode], "format": _IMPORT_FORMATS[fmt]}
        return int(self._post_import(params, data, what=what, target=repr(table))["numWritten"])

    def _post_import(self, params: dict, data: bytes, *, what: str, target: str) -> dict:
        try:
            answer, headers = self._http("POST", "/api/import", params=params, body=data, content_type="application/octet-stream")
        except HttpError as exc:
            raise DatabaseError(f"{what} into {target}: {exc.reason}") from None
        ts = headers.get(TS_HEADER)
        if ts and ts.isdigit():
            self._catch_up_to(int(ts))  # as a mutation: returns once live queries show it
        return answer

    # -- widgets, functions, logs -------------------------------------------------------------------
    def live(self, target: Any, args: dict | None = None, **options: Any) -> Any:
        """A ``LiveQuery`` widget of a query's result, as ``Backend.live``."""
        from ..notebook.widgets import live

        return live(self, target, args, **options)

    def functions(self) -> list[RemoteFunction]:
        """The deployment's functions (internal ones too), by path."""
        self._require_admin("functions()")
        return [
            RemoteFunction(
                f["path"], f["kind"], f["visibility"] == "internal",
                validator_from_json(f["args"]) if f.get("args") is not None else None,
            )
            for f in self._system("_system/cli/functions")
        ]

    @property
    def logs(self) -> logbook.LogBook:
        """The deployment's latest function executions (a copy, as of now)."""
        self._require_admin("logs")
        book = logbook.LogBook()
        for e in self._system("_system/cli/logs", {"limit": book.capacity}):
            usage = {k: int(n) for k, n in (e.get("usage") or {}).items()}
            book.add(logbook.LogEntry(
                e["time"] / 1000, e["path"], e["kind"], list(e["lines"]), e["durationMs"], e["error"], usage,
            ))
        return book
