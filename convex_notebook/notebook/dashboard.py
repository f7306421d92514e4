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

The dashboard follows the deployment: every commit (from anywhere) posts it to the
:class:`~convex_notebook.notebook.bridge.KernelBridge`, which repaints it on the kernel's loop,
throttled. Browser actions arrive as comm messages (handled when the kernel is idle).
Every panel has a Python twin, so tests drive it without a browser: :meth:`select_table`,
:meth:`next_page`, :meth:`run_function`, :meth:`refresh`.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import anywidget
import traitlets

from ..values import Int64
from . import admin
from .bridge import KernelBridge, get_bridge
from .display import log_rows, short_error, tabulate, value_text

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
    _tables = traitlets.List().tag(sync=True)  # [{"name", "count"}]
    _functions = traitlets.List().tag(sync=True)  # [{"path", "kind", "visibility", "validated", "fields"}]
    _browser = traitlets.Dict().tag(sync=True)  # the page of documents being browsed
    _logs = traitlets.List().tag(sync=True)
    _scheduled = traitlets.List().tag(sync=True)
    _has_scheduler = traitlets.Bool(False).tag(sync=True)
    _crons = traitlets.List().tag(sync=True)  # [{"name", "schedule", "function", "next", "runs"}]
    _files = traitlets.List().tag(sync=True)  # [{"id", "created", "size", "type", "sha256"}]
    _has_files = traitlets.Bool(False).tag(sync=True)  # crons and files: an embedded backend
    _env = traitlets.List().tag(sync=True)  # [{"name", "value": "•••• (N chars)"}]: never the value
    _env_error = traitlets.Unicode("").tag(sync=True)
    _result = traitlets.Dict().tag(sync=True)  # the function runner's last result
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
            what = f"{tables} table{'s' if tables != 1 else ''}, {functions} function{'s' if functions != 1 else ''}"
        except admin.NotSupported:
            what = "remote"
        return f"Dashboard({self._deployment}: {what})"

    @property
    def closed(self) -> bool:
        return self._closed

    # -- following changes ------------------------------------------------------------------
    def _hook_changes(self) -> None:
        """Repaint (through the bridge) on every commit and every new log entry; a remote
        deployment is polled for its latest commit timestamp instead."""
        database = getattr(self.app, "database", None)
        listeners = getattr(database, "commit_listeners", None)
        if listeners is None and hasattr(self.app, "latest_ts"):
            self._poll_commits()
            return
        if listeners is not None:
            def on_commit(_writes: Any, _ts: int) -> None:
                if not self._closed:
                    self._bridge.post(self)

            listeners.append(on_commit)
            self._unhooks.append(lambda: listeners.remove(on_commit))
        book = admin.log_book(self.app)
        if book is not None and hasattr(book, "add"):
            original = book.add

            def add(entry: Any, _original: Any = original) -> None:
                _original(entry)
                if not self._closed:
                    self._bridge.post(self)

            book.add = add  # instance attribute: only this app's log book

            def unhook() -> None:
                if book.__dict__.get("add") is add:
                    del book.add

            self._unhooks.append(unhook)

    def _poll_commits(self) -> None:
        """A daemon thread that posts a repaint whenever the remote deployment has committed."""
        stop = threading.Event()
        try:
            first: int | None = self.app.latest_ts()  # before the first paint: no commit is missed
        except Exception:  # noqa: BLE001 - the server is away: the thread keeps trying
            first = None

        def poll(seen: int | None) -> None:
            while not stop.wait(self.poll_interval):
                try:
                    ts = self.app.latest_ts()
                except Exception:  # noqa: BLE001 - the server is away: try again later
                    continue
                if seen is not None and ts != seen and not self._closed:
                    self._bridge.post(self)
                seen = ts

        threading.Thread(target=poll, args=(first,), name="convex-dashboard-poll", daemon=True).start()
        self._unhooks.append(stop.set)

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

    def run_function(self, path: str, args: dict | None = None, *, form: dict | None = None) -> dict:
        """Run a function like the runner does; ``form`` holds raw field inputs instead of
        ``args``. Returns (and shows) ``{"path", "ok", "text", "error", "lines"}``."""
        result: dict[str, Any] = {"path": path, "ok": False, "text": "", "error": "", "lines": []}
        try:
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
            value, error, lines = _invoke(self.app, path, args or {})
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
        total = self.app.count(table) if hasattr(self.app, "count") else None
        return {
            "table": table,
            "columns": shown.columns if shown else [],
            "rows": [{"key": k, "cells": c} for k, c in shown.rows] if shown else [],
            "first": start + 1 if page.documents else 0,
            "last": start + len(page.documents),
            "total": total,
            "page": len(self._cursors),
            "has_prev": len(self._cursors) > 1,
            "has_next": not page.is_done and bool(page.documents),
            "next_cursor": page.continue_cursor,
        }

    def _env_list(self) -> list[dict]:
        env = getattr(self.app, "env", None)
        try:
            variables = env.to_dict() if env is not None else {}
        except (PermissionError, admin.NotSupported):
            variables = {}
        return [{"name": name, "value": f"•••••••• ({len(value)} chars)"} for name, value in variables.items()]

    def set_env(self, name: str, value: str) -> None:
        """The Environment panel's "set": ``app.env[name] = value`` (an error is shown there)."""
        self._env_change(lambda env: env.__setitem__(name, value))

    def remove_env(self, name: str) -> None:
        """The Environment panel's "remove"."""
        self._env_change(lambda env: env.set(name, None))

    def _env_change(self, change: Any) -> None:
        try:
            change(self.app.env)
            self._env_error = ""
        except Exception as exc:  # noqa: BLE001 - shown in the panel
            self._env_error = short_error(exc)
        self.refresh()

    def _log_list(self) -> list[dict]:
        book = admin.log_book(self.app)
        if book is None:
            return []
        entries = book.tail(self.log_limit) if hasattr(book, "tail") else list(book)[-self.log_limit:]
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
                content.get("direction"), self.refresh
            )()
        elif kind == "run":
            self.run_function(str(content.get("path", "")), form=dict(content.get("form") or {}))
        elif kind == "env_set":
            self.set_env(str(content.get("name", "")), str(content.get("value", "")))
        elif kind == "env_remove":
            self.remove_env(str(content.get("name", "")))
        elif kind == "refresh":
            self.refresh()


def _invoke(app: Any, path: str, args: dict) -> tuple[Any, BaseException | None, list[str]]:
    """``(value, error, log lines)`` of an admin call, without raising."""
    invoke = getattr(app, "invoke", None)
    if invoke is not None:
        inv = invoke(path, args, admin=True)
        return inv.value, inv.error, list(inv.log_lines)
    try:
        runner = getattr(app, "run", None) or app.query
        return runner(path, args), None, []
    except Exception as exc:  # noqa: BLE001 - shown in the dashboard
        return None, exc, []

