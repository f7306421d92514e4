"""``LiveQuery``: a live table bound to a query subscription (an anywidget).

    msgs = app.live("messages:list", {"channel": "general"})
    msgs                       # renders a table that re-renders on every change
    msgs.value                 # the latest result
    msgs.wait_for(lambda rows: len(rows) >= 3, timeout=5)
    msgs.df                    # a pandas snapshot
    msgs.close()               # unsubscribes (re-running the cell does it too)

Whoever changes the data (this notebook, a background thread, a scheduled function, a remote
client through ``app.serve``), the subscription's callback posts the widget to the
:class:`~convex_notebook.notebook.bridge.KernelBridge`, which applies the latest value on the
kernel's loop: coalesced, throttled, never from the engine's threads.

The widget holds display state only (rendered cells, capped at ``max_rows``); ``.value`` reads
the subscription, so it is current even before the table repaints.
"""

from __future__ import annotations

import asyncio
import html
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import anywidget
import traitlets

from ..errors import InvalidValueError
from .bridge import KernelBridge, get_bridge
from .display import format_cell, short_error, tabulate, to_frame, value_text

__all__ = ["LiveQuery", "close_all", "live", "to_frame"]

STATIC = Path(__file__).resolve().parent / "static"
DEFAULT_MAX_ROWS = 50


def _static(name: str) -> str:
    return (STATIC / name).read_text(encoding="utf-8")


# ------------------------------------------------------------------ cell tracking
# A widget made by a cell is closed when that cell runs again (or makes a new one), so
# re-running a cell never stacks subscriptions. Cells are identified by the front end's cell
# id (JupyterLab sends it with every execute request) or IPython's pre_run_cell info.

_by_cell: dict[str, list[tuple[int, weakref.ReferenceType[Any]]]] = {}
_current: dict[str, Any] = {"cell": None, "count": None}
_hooked_shells: weakref.WeakSet[Any] = weakref.WeakSet()
_all_live: weakref.WeakSet[LiveQuery] = weakref.WeakSet()


def _shell() -> Any:
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover
        return None
    return get_ipython()


def _pre_run_cell(info: Any) -> None:
    key = getattr(info, "cell_id", None)
    _current["cell"] = key
    shell = _shell()
    _current["count"] = getattr(shell, "execution_count", None)
    if key is not None:
        _close_cell(key, keep_count=None)


def _post_run_cell(result: Any) -> None:
    _current["cell"] = None


def install_cell_hooks(shell: Any = None) -> None:
    """Close a cell's widgets when it re-runs (idempotent per shell)."""
    shell = shell if shell is not None else _shell()
    if shell is None or shell in _hooked_shells:
        return
    shell.events.register("pre_run_cell", _pre_run_cell)
    shell.events.register("post_run_cell", _post_run_cell)
    _hooked_shells.add(shell)


def _cell_key() -> tuple[str | None, int | None]:
    shell = _shell()
    if shell is None:
        return None, None
    count = getattr(shell, "execution_count", None)
    if _current["cell"] is not None:
        return _current["cell"], count
    kernel = getattr(shell, "kernel", None)
    if kernel is not None:
        try:
            parent = kernel.get_parent()
        except Exception:  # noqa: BLE001 - older kernels
            parent = getattr(shell, "parent_header", None)
        cell_id = ((parent or {}).get("metadata") or {}).get("cellId")
        if cell_id:
            return str(cell_id), count
    return None, count


def _close_cell(key: str, keep_count: int | None) -> None:
    kept = []
    for count, ref in _by_cell.pop(key, []):
        widget = ref()
        if widget is None:
            continue
        if keep_count is not None and count == keep_count:
            kept.append((count, ref))
        else:
            widget.close()
    if kept:
        _by_cell[key] = kept


def track_in_cell(widget: Any) -> None:
    """Register ``widget`` as made by the running cell, closing what an earlier run made."""
    install_cell_hooks()
    key, count = _cell_key()
    if key is None:
        return
    _close_cell(key, keep_count=count)
    _by_cell.setdefault(key, []).append((count if count is not None else -1, weakref.ref(widget)))


def close_all(app: Any = None) -> int:
    """Close every live widget (of ``app`` when given); returns how many."""
    closed = 0
    for widget in list(_all_live):
        if widget.closed:
            continue
        if app is None or widget.app is app or getattr(widget.app, "_backend", lambda: None)() is app:
            widget.close()
            closed += 1
    return closed


# ------------------------------------------------------------------ the widget


class LiveQuery(anywidget.AnyWidget):
    """A live query result rendered as a table (see module docstring)."""

    # Shipped inline (no CDN): anywidget turns these strings into synced traits.
    _esm = _static("live_table.js")
    _css = _static("live_table.css")

    # Display state (a private protocol with static/live_table.js; read it through properties).
    _title = traitlets.Unicode("").tag(sync=True)
    _columns = traitlets.List(traitlets.Unicode()).tag(sync=True)
    _rows: traitlets.List[Any] = traitlets.List().tag(sync=True)  # [{"key": str, "cells": [str | None, ...]}]
    _changed = traitlets.List(traitlets.Unicode()).tag(sync=True)  # keys of new/changed rows
    _total = traitlets.Int(0).tag(sync=True)
    _scalar = traitlets.Unicode("").tag(sync=True)  # a non-table result, as text
    _shape = traitlets.Unicode("table").tag(sync=True)  # "table" | "value"
    _status = traitlets.Unicode("loading").tag(sync=True)  # loading | live | error | closed
    _error = traitlets.Unicode("").tag(sync=True)
    _seq = traitlets.Int(0).tag(sync=True)  # bumped on every render: the front end redraws on it

    _sub: Any = None  # set in __init__ (class defaults keep close() safe if __init__ failed)
    _closed = False

    def __init__(
        self,
        app: Any,
        name: Any,
        args: dict | None = None,
        *,
        max_rows: int | None = None,
        columns: Sequence[str] | None = None,
        system_fields: bool = True,
        title: str | None = None,
        bridge: KernelBridge | None = None,
        subscription: Any = None,
    ) -> None:
        columns = _checked_options(max_rows, columns)
        self._bridge = bridge if bridge is not None else get_bridge()  # (_on_change posts to it)
        own = subscription is None
        if own:  # (first: it validates the arguments, and nothing is made yet)
            subscription = app.subscribe(name, args, on_update=self._on_change, on_error=self._on_change)
        try:
            self._setup(app, name, args, subscription, max_rows, columns, system_fields, title)
        except BaseException:
            if own:  # a half-made widget must not stay subscribed
                subscription.unsubscribe()
            raise

    def _setup(
        self, app: Any, name: Any, args: dict | None, subscription: Any, max_rows: int | None,
        columns: list[str] | None, system_fields: bool, title: str | None,
    ) -> None:
        """The rest of ``__init__``, once subscribed."""
        self.app = app
        self.name = getattr(name, "path", name)
        self.args = dict(args or {})
        self.max_rows = DEFAULT_MAX_ROWS if max_rows is None else max_rows
        self.columns = columns
        self.system_fields = system_fields
        self._applied_version = -1
        self._previous_cells: dict[str, list[str | None]] = {}
        self._closed = False
        self.updates_applied = 0
        self.on_close_callbacks: list[Callable[[], Any]] = []
        self._title = title if title is not None else _title(self.name, self.args)
        self._sub = subscription
        # The first value is known: render it before the comm opens, so that the widget
        # arrives complete in its comm_open message (no flash of an empty table).
        self._apply_update()
        super().__init__()
        _all_live.add(self)
        track_in_cell(self)

    # -- public face --------------------------------------------------------------------
    def __repr__(self) -> str:
        shown = f", {self.args!r}" if self.args else ""
        name = self._title if str(self.name).startswith("_adhoc:") else self.name  # %%convex_query
        rows = self._row_count()
        what = f"rows={rows}" if rows is not None else "value"
        return f"LiveQuery({name!r}{shown}, {what}, status={self.status!r})"

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        """The widget view, plus a static HTML snapshot of the table for every place where no
        widget front end runs (GitHub, nbviewer, nbconvert, a notebook opened before it runs)."""
        bundle = super()._repr_mimebundle_(**kwargs)
        data: Any = bundle
        metadata: Any = None
        if isinstance(bundle, tuple):
            data, metadata = bundle
        if isinstance(data, dict):
            data = {**data, "text/html": self.snapshot_html()}
        return (data, metadata) if metadata is not None else data

    def snapshot_html(self) -> str:
        """The rows shown now, as a static HTML table (what a saved notebook displays)."""
        from .display import html_table

        note = f"a snapshot ({self.status}): run the notebook for the live table"
        table = tabulate(self.value, max_rows=self.max_rows, columns=self.columns, system_fields=self.system_fields)
        if table is None:
            return (f'<div class="cn-caption">{html.escape(self._title)} · {html.escape(note)}</div>'
                    f"<pre>{html.escape(value_text(self.value))}</pre>")
        return html_table(table, title=self._title, note=note)

    def _row_count(self) -> int | None:
        from .display import _rows_of

        rows = _rows_of(self.value)
        return len(rows) if rows is not None else None

    @property
    def value(self) -> Any:
        """The latest result (current as soon as the commit that changed it returns)."""
        return self._sub.value

    @property
    def error(self) -> BaseException | None:
        """The query's current error (its last good value stays in ``.value``)."""
        return None if self._closed else self._sub.error

    @property
    def status(self) -> str:
        """``live``, ``error`` (the query currently fails) or ``closed``."""
        if self._closed:
            return "closed"
        return "error" if self._sub.error is not None else "live"

    @property
    def version(self) -> int:
        """How many distinct results the subscription has seen (1 after subscribing)."""
        return self._sub.version

    @property
    def subscription(self) -> Any:
        return self._sub

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def df(self) -> Any:
        """A pandas DataFrame of the current rows (a fresh snapshot on every access)."""
        return to_frame(self.value)

    def wait_for(self, predicate: Callable[[Any], bool] | None = None, timeout: float = 10.0) -> Any:
        """Block until ``predicate(value)`` holds (without one: until the next change);
        returns the value. Raises ``TimeoutError`` naming the last value seen."""
        deadline = time.monotonic() + timeout
        start_version = self._sub.version
        while True:
            version = self._sub.version
            value = self._sub.value
            if predicate(value) if predicate is not None else version > start_version:
                self._sync_if_main_thread()
                return value
            if self._closed:
                raise RuntimeError(f"{self!r} was closed while waiting")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(
                    f"LiveQuery {self.name}: condition not met within {timeout:g}s; "
                    f"last value: {value_text(value)[:200]}"
                )
            self._sub.wait_for_update(version, timeout=min(remaining, 0.5))

    async def wait_for_async(self, predicate: Callable[[Any], bool] | None = None, timeout: float = 10.0) -> Any:
        """``await`` twin of :meth:`wait_for` (the kernel keeps rendering while it waits)."""
        value = await asyncio.to_thread(self.wait_for, predicate, timeout)
        self._sync_if_main_thread()
        return value

    def refresh(self) -> None:
        """Re-render from the subscription now (normally the bridge does this)."""
        self._applied_version = -1
        self._apply_update()

    def close(self) -> None:
        """Unsubscribe and close the widget (idempotent)."""
        if not self._closed and self._sub is not None:
            self._closed = True
            self._bridge.discard(self)
            try:
                self._sub.unsubscribe()
            finally:
                if getattr(self, "comm", None) is not None:
                    with self.hold_sync():
                        self._status = "closed"
                        self._seq += 1
            for callback in self.on_close_callbacks:
                callback()
        super().close()

    # -- updates --------------------------------------------------------------------------
    def _on_change(self, _value: Any = None) -> None:
        """Subscription callback (dispatcher thread): only hand over to the bridge."""
        if not self._closed:
            self._bridge.post(self)

    def _sync_if_main_thread(self) -> None:
        if threading.current_thread() is threading.main_thread():
            self._apply_update()

    def _apply_update(self) -> None:
        """Render the subscription's latest state into the traits (one comm message)."""
        if self._closed:
            return
        sub = self._sub
        version = sub.version
        if version == self._applied_version:
            return
        value = sub.value
        error = sub.error
        table = tabulate(value, max_rows=self.max_rows, columns=self.columns, system_fields=self.system_fields)
        with self.hold_sync():
            if table is None:
                self._shape = "value"
                self._scalar = value_text(value)
                self._columns, self._rows, self._total, self._changed = [], [], 0, []
                self._previous_cells = {}
            else:
                rows = [{"key": key, "cells": cells} for key, cells in table.rows]
                first = self._applied_version < 0
                changed = [] if first else [
                    key for key, cells in table.rows if self._previous_cells.get(key) != cells
                ]
                self._previous_cells = dict(table.rows)
                self._shape = "table"
                self._scalar = ""
                self._columns = table.columns
                self._rows = rows
                self._total = table.total
                self._changed = changed
            self._status = "error" if error is not None else "live"
            self._error = short_error(error) if error is not None else ""
            self._seq += 1
        self._applied_version = version
        self.updates_applied += 1

    # -- introspection for tests and the text view ----------------------------------------
    def rendered_rows(self) -> list[list[str | None]]:
        """The cells the front end is showing (after the last applied update)."""
        return [row["cells"] for row in self._rows]

    @property
    def rendered_columns(self) -> list[str]:
        return list(self._columns)


def _checked_options(max_rows: Any, columns: Any) -> list[str] | None:
    """``max_rows`` and ``columns`` (returned as a list) checked before subscribing: a wrong
    one would fail only when the first value renders."""
    if max_rows is not None and (not isinstance(max_rows, int) or isinstance(max_rows, bool)):
        raise InvalidValueError(f"max_rows= takes a whole number (0: all) or None, got {max_rows!r}")
    if columns is None:
        return None
    names = list(columns) if isinstance(columns, Iterable) and not isinstance(columns, str) else None
    if names is None or not all(isinstance(c, str) for c in names):
        raise InvalidValueError(f"columns= takes a list of field names, got {columns!r}")
    return names


def _title(name: str, args: dict) -> str:
    if not args:
        return str(name)
    inner = ", ".join(f"{k}: {format_cell(v, k)}" for k, v in args.items())
    return f"{name}({inner})"


def live(app: Any, name: Any, args: dict | None = None, **options: Any) -> LiveQuery:
    """``app.live(name, args)``: a :class:`LiveQuery` for any backend with ``subscribe``."""
    return LiveQuery(app, name, args, **options)
