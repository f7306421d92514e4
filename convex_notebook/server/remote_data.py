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
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from ..backend import logs as logbook
from ..backend.admin_calls import SystemCalls
from ..backend.contract import DeployedModule, TableBatch
from ..backend.optional import NotebookMethods
from ..engine.transaction import DatabaseError
from ..errors import ConvexFunctionError
from ..io.paths import snapshot_target
from ..values import from_json, to_json
from ..values.validators import Validator, validator_from_json

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


class RemoteDataMixin(SystemCalls, NotebookMethods):
    """Admin reads and writes of a remote deployment (see module docstring); paging, clearing
    and editing come from ``SystemCalls``, DataFrames and widgets from ``NotebookMethods``."""

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

    def _system_read(self, path: str, args: dict | None = None) -> Any:
        self._require_admin(path)
        return self._system(path, args)

    @property
    def location(self) -> str:
        """The served deployment's URL."""
        return self.url

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

    def read_table(self, table: str, *, at: Any = None) -> Iterator[TableBatch]:
        """Every document of ``table``, one snapshot, as one batch (see ``documents``)."""
        docs = self.documents(table, at=at)
        if docs:
            yield TableBatch(documents=docs)

    def import_columns(
        self, table: str, names: Sequence[str], columns: Sequence[list[Any]], n: int, *, mode: str = "insert",
        keep_ids: bool = False, atomic: bool = True, batch_size: int = 50_000,
        progress: Callable[[int], Any] | None = None,
    ) -> int:
        """As ``Backend.import_columns``, in one request and one transaction on the server (all
        rows or none: ``atomic`` and ``batch_size`` make no difference here)."""
        from ..engine.bulk import rows_from_columns

        if mode not in _IMPORT_MODES:
            raise ValueError(f"mode= takes 'insert', 'replace' or 'append', got {mode!r}")
        self._require_admin("import_dataframe()")
        body = io.StringIO()
        for doc in rows_from_columns(names, columns, n):
            body.write(json.dumps(to_json(doc), ensure_ascii=False, separators=(",", ":")))
            body.write("\n")
        written = self._import(table, body.getvalue().encode("utf-8"), "jsonl", mode, what="import_dataframe")
        if progress is not None:
            progress(n)
        return written

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

    # -- functions, logs -------------------------------------------------------------------
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

    def deploy_folder(self, path: str, *, force: bool = False) -> Any:
        """Not on a remote deployment: a folder's schema, crons and HTTP routes deploy in the
        server's process (``convex-notebook dev FOLDER --url ...`` redeploys on every save)."""
        raise NotImplementedError(
            f"a functions folder deploys into the process that runs it: serve it with `convex-notebook dev "
            f"{path}` (redeploys on save), or push one module with %%convex_module"
        )

    def deploy_module(self, name: str, source: str, *, namespace: dict | None = None,
                      replace: bool = True) -> DeployedModule:
        """Push Python source to the deployment, which runs it as module ``name`` (see
        ``Backend.deploy_module``). The source runs on the server: ``namespace`` (a notebook's
        variables) cannot go with it, and only ``cn``, ``v``, ``app`` and what it imports are in
        scope. An error in the source raises ``SourceError`` as on a Backend."""
        from ..backend.app import module_name_of
        from ..backend.project import SourceError
        from ..errors import ConvexError

        module_name_of(name)  # a bad name fails here, as on a Backend
        self._require_admin("deploy_module()")
        try:
            answer = self.run("_system/cli/deployModule", {"name": name, "source": source, "replace": replace})
        except ConvexError as exc:
            data = exc.data if isinstance(exc.data, dict) else {}
            if data.get("code") != "SourceError":
                raise
            line = data.get("line")
            raise SourceError(str(data.get("message")), int(line) if line is not None else None) from None
        return DeployedModule(answer["name"], [(p, k) for p, k in answer["functions"]], list(answer["removed"]),
                              int(answer["reruns"]))

    def remove_functions(self, paths: Sequence[str]) -> list[str]:
        """Remove functions by path (those that exist); returns the removed paths."""
        self._require_admin("remove_functions()")
        return list(self.run("_system/cli/removeFunctions", {"paths": list(paths)}))

    def on_log(self, listener: Callable[[logbook.LogEntry], Any]) -> Callable[[], None]:
        """Call ``listener(entry)`` for each function execution from now on (a background
        thread follows ``/api/stream_function_logs``, Convex's log stream); returns the
        function that stops it."""
        self._require_admin("on_log()")
        first, _ = self._http("GET", "/api/stream_function_logs", params={"cursor": 2**62, "wait": 0})
        cursor = int(first["newCursor"])

        def follow(stop: threading.Event) -> None:
            nonlocal cursor
            while not stop.is_set():
                try:
                    page, _ = self._http("GET", "/api/stream_function_logs", params={"cursor": cursor, "wait": 2})
                except Exception:  # noqa: BLE001 - the server is away: try again shortly
                    stop.wait(1.0)
                    continue
                cursor = int(page["newCursor"])
                for e in page["entries"]:
                    if not stop.is_set():
                        listener(_log_entry(e))

        return _background(follow, "convex-remote-logs")

    def on_commit(self, listener: Callable[[int], Any], *, poll_interval: float = 1.0) -> Callable[[], None]:
        """Call ``listener(ts)`` when the deployment has committed, asking every
        ``poll_interval`` seconds (``/api/query_ts``); returns the function that stops it."""
        seen = self.latest_ts()  # before returning: no later commit is missed

        def poll(stop: threading.Event) -> None:
            nonlocal seen
            while not stop.wait(poll_interval):
                try:
                    ts = self.latest_ts()
                except Exception:  # noqa: BLE001, S112 - the server is away: try again later
                    continue
                if ts != seen:
                    seen = ts
                    listener(ts)

        return _background(poll, "convex-remote-commits")

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


_KINDS = {"Query": "query", "Mutation": "mutation", "Action": "action", "HttpAction": "httpAction"}


def _log_entry(e: dict) -> logbook.LogEntry:
    """A log entry of ``/api/stream_function_logs`` (Convex's shape) as the log book's."""
    usage = {k: int(n) for k, n in (e.get("usage") or {}).items()}
    return logbook.LogEntry(
        float(e["timestamp"]), e["identifier"], _KINDS.get(e["udfType"], str(e["udfType"]).lower()),
        list(e["logLines"]), float(e["executionTime"]) * 1000, e.get("error"), usage,
    )


def _background(body: Callable[[threading.Event], None], name: str) -> Callable[[], None]:
    """Run ``body(stop)`` on a daemon thread; returns what sets ``stop``."""
    stop = threading.Event()
    threading.Thread(target=body, args=(stop,), name=name, daemon=True).start()
    return stop.set
