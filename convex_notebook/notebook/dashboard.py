"""``cn.Dashboard(app)``: tables, documents, a function runner, logs, schedules, crons and
files in one widget.

    cn.Dashboard(app)           # last expression of a cell: renders the dashboard

* **Data**: every table with its document count; pick one to page through its documents
  (newest first, ``page_size`` at a time, cursor pagination: a page costs its size).
* **Functions**: pick a function, fill its arguments (one input per validated field, JSON
  for the rest), run it, see the result (or the error) and its log lines.
* **Logs**: the latest executions from ``app.logs``.
* **Schedules**: scheduled functions, when the backend has a scheduler.
* **Crons**: the cron jobs, their schedules, next runs and runs so far (embedded backends).
* **Files**: the newest files of file storage, with size, type and digest (embedded backends).
* **Environment**: the environment variables by name (values stay hidden: they never reach the
  page or a saved notebook), with a form to set or remove one (:meth:`set_env`, :meth:`remove_env`).

Actions (embedded backends), each one validated transaction that writes nothing when refused:
edit a document (Convex JSON), delete one, clear a table (two clicks), cancel a pending
scheduled function; the runner can act as a user (a subject or a JSON identity). The last
action's outcome shows in the header (``_notice``).

The dashboard follows the deployment: every commit (from anywhere) posts it to the
:class:`~convex_notebook.notebook.bridge.KernelBridge`, which repaints it on the kernel's loop,
throttled. Browser actions arrive as comm messages (handled when the kernel is idle).
Every panel has a Python twin, so tests drive it without a browser: :meth:`select_table`,
:meth:`next_page`, :meth:`run_function`, :meth:`edit_document`, :meth:`delete_documents`,
:meth:`clear_table`, :meth:`cancel_job`, :meth:`set_env`, :meth:`remove_env`, :meth:`refresh`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anywidget
import traitlets

from ..values import Int64
from . import admin, admin_writes
from .bridge import KernelBridge, get_bridge
from .display import log_rows, plural, short_error, tabulate, value_text

if TYPE_CHECKING:
    from ..backend.contract import Deployment

__all__ = ["Dashboard"]

STATIC = Path(__file__).resolve().parent / "static"


class ArgumentError(ValueError):
    """A form field could not be turned into a value."""


def parse_form_args(fields: list[dict], values: dict[str, Any]) -> dict[str, Any]:
    """Arguments from the runner's form: ``values`` maps each field to its raw input.

    Strings and ids are taken as typed; numbers, Int64 and booleans are parsed; anything
    else is JSON. An empty optional field is left out (an empty required string is "").
    """
    args: dict[str, Any] = {}
    for field in fields:
        name, kind = field["name"], field["kind"]
        raw = values.get(name)
        if raw is None or raw == "":
            if field["optional"]:
                continue
            if raw is None or kind != "string":
                raise ArgumentError(f"{name}: required")
        try:
            if kind in ("string", "id"):
                args[name] = str(raw)
            elif kind == "boolean":
                args[name] = raw if isinstance(raw, bool) else str(raw).strip().lower() in ("true", "1", "yes")
            elif kind == "float64":
                args[name] = float(raw)
            elif kind == "int64":
                args[name] = Int64(int(str(raw).strip().rstrip("n")))
            else:
                args[name] = json.loads(raw) if isinstance(raw, str) else raw
        except (ValueError, TypeError) as exc:
            raise ArgumentError(f"{name}: expected {field['type']}, got {raw!r} ({exc})") from None
    return args


class Dashboard(anywidget.AnyWidget):
    """The deployment at a glance (see module docstring)."""

    _esm = (STATIC / "dashboard.js").read_text(encoding="utf-8")
    _css = (STATIC / "dashboard.css").read_text(encoding="utf-8")

    _deployment = traitlets.Unicode("").tag(sync=True)
    _tables: traitlets.List[Any] = traitlets.List().tag(sync=True)  # [{"name", "count"}]
    _functions: traitlets.List[Any] = traitlets.List().tag(sync=True)  # [{"path", "kind", "visibility", "validated", "fields"}]
    _browser = traitlets.Dict().tag(sync=True)  # the page of documents being browsed
    _logs: traitlets.List[Any] = traitlets.List().tag(sync=True)
    _scheduled: traitlets.List[Any] = traitlets.List().tag(sync=True)
    _has_scheduler = traitlets.Bool(False).tag(sync=True)
    _crons: traitlets.List[Any] = traitlets.List().tag(sync=True)  # [{"name", "schedule", "function", "next", "runs"}]
    _files: traitlets.List[Any] = traitlets.List().tag(sync=True)  # [{"id", "created", "size", "type", "sha256"}]
    _has_files = traitlets.Bool(False).tag(sync=True)  # crons and files: admin reads answer
    _env: traitlets.List[Any] = traitlets.List().tag(sync=True)  # [{"name", "value": "•••• (N chars)"}]: never the value
    _env_error = traitlets.Unicode("").tag(sync=True)
    _result = traitlets.Dict().tag(sync=True)  # the function runner's last result
    _notice = traitlets.Dict().tag(sync=True)  # the last admin action: {"ok", "text", "seq"}
    _can_write = traitlets.Bool(False).tag(sync=True)  # edit/delete/clear/cancel: admin calls answer
    _seq = traitlets.Int(0).tag(sync=True)

    def __init__(
        self,
        app: Any,
        *,
        page_size: int = 20,
        log_limit: int = 30,
        bridge: KernelBridge | None = None,
        poll_interval: float = 1.0,
    ) -> None:
        super().__init__()
        self.app = app
        self.page_size = page_size
        self.log_limit = log_limit
        self.poll_interval = poll_interval  # a remote deployment: how often to look for commits
        self._bridge = bridge if bridge is not None else get_bridge()
        self._table: str | None = None
        self._cursors: list[str | None] = [None]  # start cursor of each page seen so far
        self._closed = False
        self._unhooks: list[Any] = []
        self._deployment = admin.deployment_name(app)
        self.on_msg(self._handle_message)
        self._hook_changes()
        self.refresh()
        from .widgets import track_in_cell

        track_in_cell(self)

    def __repr__(self) -> str:
        try:
            tables = len(admin.table_counts(self.app))
            functions = len(admin.visible_functions(self.app))
            what = f"{plural(tables, 'table')}, {plural(functions, 'function')}"
        except admin.NotSupported:
            what = "remote"
        return f"Dashboard({self._deployment}: {what})"

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        """The widget view, plus a static HTML snapshot (tables and functions) for places
        without a widget front end (GitHub, nbviewer, a notebook opened before it runs)."""
        bundle = super()._repr_mimebundle_(**kwargs)
        data, metadata = bundle if isinstance(bundle, tuple) else (bundle, None)
        if isinstance(data, dict):
            data = {**data, "text/html": self.snapshot_html()}
        return (data, metadata) if metadata is not None else data

    def snapshot_html(self) -> str:
        """Tables with their document counts and the functions, as static HTML tables."""
        from .display import Table, html_table, plural

        note = "a snapshot: run the notebook for the live dashboard"
        tables = Table(["table", "documents"], [(t["name"], [t["name"], f"{t['count']:,}"]) for t in self._tables],
                       len(self._tables))
        functions = Table(
            ["function", "kind", "arguments"],
            [(f["path"], [f["path"], f["kind"] if f["visibility"] == "public" else f"internal {f['kind']}",
                          ", ".join(a["name"] for a in f["fields"]) if f["validated"] else "(unvalidated)"])
             for f in self._functions],
            len(self._functions),
        )
        title = f"Dashboard · {self._deployment} · {plural(len(self._tables), 'table')}"
        return (html_table(tables, title=title, note=note)
                + html_table(functions, title=plural(len(self._functions), "function")))

    @property
    def closed(self) -> bool:
        return self._closed

    # -- following changes ------------------------------------------------------------------
    def _hook_changes(self) -> None:
        """Repaint (through the bridge) after every commit and every new log entry: the
        deployment tells (``on_commit``, ``on_log``; a remote one asks its server)."""
        def changed(_what: Any) -> None:
            if not self._closed:
                self._bridge.post(self)

        try:
            self._unhooks.append(self.app.on_commit(changed, poll_interval=self.poll_interval))
        except Exception:  # noqa: BLE001, S110 - the server is away: the dashboard shows what it can
            pass
        try:
            self._unhooks.append(self.app.on_log(changed))
        except Exception:  # noqa: BLE001, S110 - no admin key, or the server is away: no log updates
            pass

    def _apply_update(self) -> None:
        """Bridge target: refresh everything that may have changed."""
        if not self._closed:
            self.refresh()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._bridge.discard(self)
            for unhook in self._unhooks:
                try:
                    unhook()
                except ValueError:
                    pass
            self._unhooks.clear()
        super().close()

    # -- Python twins of the panels -------------------------------------------------------------
    def refresh(self) -> None:
        """Re-read tables, the current page, logs and schedules (one comm message)."""
        with self.hold_sync():
            try:
                counts = admin.table_counts(self.app)
            except admin.NotSupported:
                counts = []
            self._tables = [{"name": name, "count": n} for name, n in counts]
            if self._table is None and counts:
                self._table = counts[0][0]
            self._functions = self._function_list()
            self._browser = self._page_state()
            self._logs = self._log_list()
            scheduled = admin.scheduled_functions(self.app)
            self._has_scheduler = scheduled is not None
            self._can_write = scheduled is not None  # admin calls answer (a remote one: its key)
            self._scheduled = scheduled or []
            self._crons = admin.cron_jobs(self.app) or []
            files = admin.stored_files(self.app)
            self._has_files = files is not None
            self._files = files or []
            self._env = self._env_list()
            self._seq += 1

    def select_table(self, table: str) -> None:
        self._table = table
        self._cursors = [None]
        self.refresh()

    def next_page(self) -> None:
        page = self._browser
        if page.get("has_next"):
            self._cursors.append(page["next_cursor"])
            self.refresh()

    def previous_page(self) -> None:
        if len(self._cursors) > 1:
            self._cursors.pop()
            self.refresh()

    def first_page(self) -> None:
        self._cursors = [None]
        self.refresh()

    def run_function(self, path: str, args: dict | None = None, *, form: dict | None = None,
                     identity: Any = None) -> dict:
        """Run a function like the runner does; ``form`` holds raw field inputs instead of
        ``args``; ``identity`` acts as a signed-in user (a dict, a JSON object, or a subject).
        Returns (and shows) ``{"path", "ok", "text", "error", "lines", "as"}``."""
        result: dict[str, Any] = {"path": path, "ok": False, "text": "", "error": "", "lines": [], "as": ""}
        try:
            who = parse_identity(identity)
            caller = self.app.with_identity(who) if who is not None else self.app
            result["as"] = who["subject"] if who is not None else ""
            if form is not None:
                definition = next((f for f in self._functions if f["path"] == path), None)
                if definition is None:
                    raise ArgumentError(f"unknown function {path}")
                if definition["validated"]:
                    args = parse_form_args(definition["fields"], form)
                else:
                    raw = form.get("__json__", "") or "{}"
                    try:
                        args = json.loads(raw)
                    except ValueError as exc:
                        raise ArgumentError(f"arguments: not JSON ({exc})") from None
                    if not isinstance(args, dict):
                        raise ArgumentError("arguments: a JSON object like {\"text\": \"hi\"}")
            value, error, lines = _invoke(caller, path, args or {})
            result["lines"] = lines
            if error is not None:
                result["error"] = short_error(error)
            else:
                result["ok"] = True
                result["text"] = value_text(value)
        except ArgumentError as exc:
            result["error"] = f"ArgumentError: {exc}"
        result["seq"] = self._result.get("seq", 0) + 1
        with self.hold_sync():
            self._result = result
            self._seq += 1
        self.refresh()
        return result

    # -- admin actions: each one transaction, validated ----------------------------------------
    def edit_document(self, doc_id: str, document: dict | str) -> dict:
        """Replace a document's fields (a dict, or the editor's JSON text); the schema validates."""
        def act() -> str:
            fields = admin_writes.parse_document(document) if isinstance(document, str) else dict(document)
            admin_writes.replace_document(self.app, doc_id, fields)
            return f"saved {doc_id}"
        return self._act(act)

    def delete_documents(self, ids: list[str]) -> dict:
        def act() -> str:
            return f"deleted {plural(admin_writes.delete_documents(self.app, list(ids)), 'document')}"
        return self._act(act)

    def clear_table(self, table: str) -> dict:
        def act() -> str:
            return f"cleared {table}: deleted {plural(admin_writes.clear_table(self.app, table), 'document')}"
        return self._act(act)

    def cancel_job(self, job_id: str) -> dict:
        def act() -> str:
            admin_writes.cancel_scheduled(self.app, job_id)
            return f"canceled {job_id}"
        return self._act(act)

    def set_env(self, name: str, value: str) -> dict:
        """Set an environment variable (``app.env[name] = value``; functions see ``ctx.env``)."""
        def act() -> str:
            admin_writes.set_env(self.app, name, value)
            return f"set {name}"
        return self._env_act(act)

    def remove_env(self, name: str) -> dict:
        def act() -> str:
            admin_writes.remove_env(self.app, name)
            return f"removed {name}"
        return self._env_act(act)

    def _env_act(self, act: Any) -> dict:
        """An Environment panel action: its outcome in the header, its error in the panel too."""
        notice = self._act(act)
        self._env_error = "" if notice["ok"] else notice["text"]
        return notice

    def _act(self, action: Any) -> dict:
        notice: dict[str, Any] = {"ok": False, "text": ""}
        try:
            notice.update(ok=True, text=action())
        except Exception as exc:  # noqa: BLE001 - shown in the dashboard; nothing was written
            notice["text"] = short_error(exc)
        notice["seq"] = self._notice.get("seq", 0) + 1
        # One comm message: the notice arrives with the data it speaks of.
        with self.hold_sync():
            self.refresh()
            self._notice = notice
            self._seq += 1
        return notice

    # -- state builders -------------------------------------------------------------------------
    def _function_list(self) -> list[dict]:
        try:
            functions = admin.visible_functions(self.app)
        except admin.NotSupported:
            return []
        out = []
        for fn in functions:
            out.append({
                "path": fn.path,
                "kind": fn.kind,
                "visibility": fn.visibility,
                "validated": getattr(fn, "args", None) is not None,
                "fields": admin.describe_args(fn),
            })
        return out

    def _page_state(self) -> dict:
        table = self._table
        if table is None:
            return {"table": None}
        cursor = self._cursors[-1]
        try:
            page = admin.read_page(self.app, table, cursor=cursor, num_items=self.page_size)
        except admin.NotSupported as exc:
            return {"table": table, "error": str(exc)}
        except Exception as exc:  # noqa: BLE001 - e.g. a cursor made stale by a reset
            self._cursors = [None]
            return {"table": table, "error": short_error(exc)}
        shown = tabulate(page.documents, max_rows=None)
        start = (len(self._cursors) - 1) * self.page_size
        try:
            total: int | None = self.app.count(table)
        except PermissionError:
            total = None
        return {
            "table": table,
            "columns": shown.columns if shown else [],
            "rows": [{"key": k, "cells": c, "json": _editable(d)} for (k, c), d in zip(shown.rows, page.documents)]
            if shown else [],
            "first": start + 1 if page.documents else 0,
            "last": start + len(page.documents),
            "total": total,
            "page": len(self._cursors),
            "has_prev": len(self._cursors) > 1,
            "has_next": not page.is_done and bool(page.documents),
            "next_cursor": page.continue_cursor,
        }

    def _env_list(self) -> list[dict]:
        env = admin_writes.env_mapping(self.app)
        try:
            variables = dict(env) if env is not None else {}
        except PermissionError:
            variables = {}
        return [{"name": name, "value": f"•••••••• ({len(value)} chars)"} for name, value in variables.items()]

    def _log_list(self) -> list[dict]:
        book = admin.log_book(self.app)
        if book is None:
            return []
        entries = book.tail(self.log_limit)
        rows = log_rows(reversed(entries))
        return [{**row, "ok": row["outcome"] == "ok"} for row in rows]

    # -- browser messages -----------------------------------------------------------------------
    def _handle_message(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if not isinstance(content, dict):
            return
        kind = content.get("type")
        if kind == "select_table":
            self.select_table(str(content.get("table", "")))
        elif kind == "page":
            {"next": self.next_page, "prev": self.previous_page, "first": self.first_page}.get(
                str(content.get("direction")), self.refresh
            )()
        elif kind == "run":
            self.run_function(str(content.get("path", "")), form=dict(content.get("form") or {}),
                              identity=content.get("identity") or None)
        elif kind == "env_set":
            self.set_env(str(content.get("name", "")), str(content.get("value", "")))
        elif kind == "env_remove":
            self.remove_env(str(content.get("name", "")))
        elif kind == "refresh":
            self.refresh()
        elif kind == "edit":
            self.edit_document(str(content.get("id", "")), str(content.get("json", "")))
        elif kind == "delete":
            self.delete_documents([str(i) for i in content.get("ids") or []])
        elif kind == "clear":
            self.clear_table(str(content.get("table", "")))
        elif kind == "cancel":
            self.cancel_job(str(content.get("id", "")))
        elif kind == "env_set":
            self.set_env(str(content.get("name", "")), str(content.get("value", "")))
        elif kind == "env_remove":
            self.remove_env(str(content.get("name", "")))


def _invoke(app: Deployment, path: str, args: dict) -> tuple[Any, BaseException | None, list[str]]:
    """``(value, error, log lines)`` of an admin call, without raising."""
    inv = app.invoke(path, args, admin=True)
    return inv.value, inv.error, list(inv.log_lines)


def parse_identity(value: Any) -> dict | None:
    """The runner's "act as" field: empty (no user), a subject (``user_1``), or a JSON object
    with at least ``subject`` (``{"subject": "user_1", "name": "Ada"}``)."""
    if value is None or value == "":
        return None
    if isinstance(value, dict):
        identity = value
    else:
        text = str(value).strip()
        if not text:
            return None
        if text.startswith("{"):
            try:
                identity = json.loads(text)
            except ValueError as exc:
                raise ArgumentError(f"act as: not JSON ({exc})") from None
        else:
            identity = {"subject": text}
    if not isinstance(identity, dict) or not isinstance(identity.get("subject"), str) or not identity["subject"]:
        raise ArgumentError('act as: a subject, or a JSON object with a "subject" string')
    return identity


def _editable(doc: dict) -> str:
    """A document's own fields as the editor shows them (Convex JSON: Int64 as {"$integer"})."""
    from ..values import to_json

    return json.dumps({k: to_json(v) for k, v in doc.items() if k not in ("_id", "_creationTime")},
                      ensure_ascii=False, indent=2)
