"""Rich display of Convex values: documents, query results and errors.

One place decides how a value looks in a cell, in a live table and in the dashboard:

* :func:`tabulate` turns a query result into ``(columns, rows, total)``, or ``None`` when it is
  not table-shaped (a scalar, an object without ``_id``);
* :func:`format_cell` renders one field as short text (``Int64`` as ``5n``, bytes as their
  size, ``_creationTime`` as a UTC time, ``null`` vs a missing field);
* :class:`QueryResult` (what ``%convex run`` and ``%%convex_query`` show) and
  :class:`ErrorReport` wrap a value or an exception with ``_repr_html_`` and a deterministic
  ``__repr__``.

Nothing here imports IPython: these are plain objects with rich-display methods.
"""

from __future__ import annotations

import datetime as _dt
import html
import json
import math
from collections.abc import Iterable, Sequence
from typing import Any

from ..values import MISSING, Int64

__all__ = [
    "ErrorReport",
    "QueryResult",
    "Table",
    "format_cell",
    "html_table",
    "plural",
    "tabulate",
    "text_table",
    "to_display_json",
    "to_frame",
]

SYSTEM_FIELDS = ("_id", "_creationTime")
MAX_CELL = 120  # characters shown per cell


# ------------------------------------------------------------------ values as text / JSON


def to_display_json(value: Any) -> Any:
    """A JSON-compatible rendering of a Convex value (for display only: ``Int64`` → ``"5n"``)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, Int64):
        return f"{int(value)}n"
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value)
        return int(value) if value.is_integer() and abs(value) < 2**53 else value
    if isinstance(value, int):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return f"<{len(bytes(value))} bytes>"
    if isinstance(value, dict):
        return {str(k): to_display_json(v) for k, v in value.items() if v is not MISSING}
    if isinstance(value, (list, tuple)):
        return [to_display_json(v) for v in value]
    if value is MISSING:
        return None
    return repr(value)


def _format_time(ms: float) -> str:
    try:
        moment = _dt.datetime.fromtimestamp(ms / 1000, tz=_dt.UTC)
    except (OverflowError, OSError, ValueError):
        return str(ms)
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{moment.microsecond // 1000:03d}"


def format_cell(value: Any, column: str = "") -> str | None:
    """Short text for one field; ``None`` means the field is missing (not ``null``)."""
    if value is MISSING:
        return None
    if column == "_creationTime" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return _format_time(float(value))
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        text = value
    else:
        shown = to_display_json(value)
        text = shown if isinstance(shown, str) else json.dumps(shown, ensure_ascii=False, separators=(", ", ": "))
    if len(text) > MAX_CELL:
        text = text[: MAX_CELL - 1] + "…"
    return text


def plural(n: int, noun: str) -> str:
    """``1 query``, ``2 queries``, ``1 function``, ``3 rows`` (thousands separated)."""
    if n == 1:
        return f"1 {noun}"
    if noun.endswith("y") and noun[-2:-1] not in "aeiou":
        return f"{n:,} {noun[:-1]}ies"
    return f"{n:,} {noun}{'es' if noun.endswith(('s', 'x', 'ch', 'sh')) else 's'}"


# ------------------------------------------------------------------ table shape


def _rows_of(value: Any) -> list[Any] | None:
    """The rows of a table-shaped result: a list, a paginate() page, or one document."""
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        page = value.get("page")
        if isinstance(page, list) and "isDone" in value:
            return page
        if isinstance(value.get("_id"), str):
            return [value]
    return None


def _columns_of(rows: Iterable[dict]) -> list[str]:
    seen: dict[str, None] = {}
    for row in rows:
        for key in row:
            seen.setdefault(key, None)
    user = [c for c in seen if c not in SYSTEM_FIELDS]
    return [c for c in ("_id",) if c in seen] + user + [c for c in ("_creationTime",) if c in seen]


class Table:
    """A result laid out as a table: ``columns``, ``rows`` (each ``(key, cells)``) and ``total``."""

    def __init__(self, columns: list[str], rows: list[tuple[str, list[str | None]]], total: int) -> None:
        self.columns = columns
        self.rows = rows
        self.total = total

    @property
    def shown(self) -> int:
        return len(self.rows)

    def caption(self) -> str:
        return f"showing {self.shown:,} of {plural(self.total, 'row')}"


def tabulate(
    value: Any,
    *,
    max_rows: int | None = 50,
    columns: Sequence[str] | None = None,
    system_fields: bool = True,
) -> Table | None:
    """Lay a query result out as a table (``None`` when it is not table-shaped).

    Rows are keyed by ``_id`` when they have one (the position otherwise). A list of
    non-objects becomes one ``value`` column.
    """
    rows = _rows_of(value)
    if rows is None:
        return None
    if rows and not all(isinstance(r, dict) for r in rows):
        rows = [{"value": r} for r in rows]
    total = len(rows)
    shown = rows if max_rows is None or max_rows <= 0 else rows[:max_rows]
    if columns is None:
        cols = _columns_of(shown)
        if not system_fields:
            cols = [c for c in cols if c not in SYSTEM_FIELDS]
    else:
        cols = list(columns)
    out: list[tuple[str, list[str | None]]] = []
    seen_keys: set[str] = set()
    for i, row in enumerate(shown):
        key = row.get("_id") if isinstance(row.get("_id"), str) else f"#{i}"
        if key in seen_keys:  # the same document twice in a result: keep keys unique
            key = f"{key}#{i}"
        seen_keys.add(key)
        out.append((key, [format_cell(row.get(c, MISSING), c) for c in cols]))
    return Table(cols, out, total)


# ------------------------------------------------------------------ HTML / text rendering

_STYLE = (
    "<style>.cn-static{border-collapse:collapse;font-size:12px;font-family:var(--jp-code-font-family,monospace)}"
    ".cn-static th,.cn-static td{border:1px solid #ddd;padding:2px 6px;text-align:left;vertical-align:top}"
    ".cn-static th{background:#f5f5f5}.cn-static .cn-missing{color:#aaa}"
    ".cn-caption{font-size:11px;color:#666;margin:2px 0}</style>"
)


# Cells say their alignment themselves: JupyterLab right-aligns rendered tables, and where
# <style> is stripped (untrusted notebooks, GitHub) the attributes still hold.
_LEFT = 'align="left" style="text-align:left"'


def html_table(table: Table, *, title: str | None = None, note: str | None = None) -> str:
    """A static HTML table (``note``: a line after the caption, e.g. that it is a snapshot)."""
    head = "".join(f"<th {_LEFT}>{html.escape(c)}</th>" for c in table.columns)
    body = []
    for _key, cells in table.rows:
        tds = "".join(
            f'<td class="cn-missing" {_LEFT}></td>' if c is None else f"<td {_LEFT}>{html.escape(c)}</td>" for c in cells
        )
        body.append(f"<tr>{tds}</tr>")  # static HTML: no ids, so saved outputs stay stable
    extra = f" · {html.escape(note)}" if note else ""
    caption = f'<div class="cn-caption">{html.escape(title + " · " if title else "")}{table.caption()}{extra}</div>'
    return f'{_STYLE}{caption}<table class="cn-static"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def text_table(table: Table, *, max_width: int = 40) -> str:
    """A plain-text table (what ``text/plain`` shows)."""

    def clip(s: str | None) -> str:
        s = "" if s is None else s
        return s if len(s) <= max_width else s[: max_width - 1] + "…"

    grid = [table.columns] + [[clip(c) for c in cells] for _, cells in table.rows]
    widths = [max(len(r[i]) for r in grid) for i in range(len(table.columns))] if table.columns else []
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in grid]
    if table.columns:
        lines.insert(1, "  ".join("-" * w for w in widths))
    lines.append(f"({table.caption()})")
    return "\n".join(lines)


def value_text(value: Any) -> str:
    """A scalar or non-table result as pretty JSON-ish text."""
    shown = to_display_json(value)
    if isinstance(shown, str) and not isinstance(value, str):
        return shown
    return json.dumps(shown, ensure_ascii=False, indent=2)


class QueryResult:
    """A function's result, shown as a table when it is a list of documents.

    ``.value`` is the result itself; ``.df`` a DataFrame of its rows. The text repr is stable
    (no memory addresses), so notebooks that show results diff cleanly.
    """

    def __init__(
        self,
        value: Any,
        *,
        name: str | None = None,
        max_rows: int = 50,
        columns: Sequence[str] | None = None,
        system_fields: bool = True,
    ) -> None:
        self.value = value
        self.name = name
        self.max_rows = max_rows
        self.columns = columns
        self.system_fields = system_fields

    def _table(self) -> Table | None:
        return tabulate(self.value, max_rows=self.max_rows, columns=self.columns, system_fields=self.system_fields)

    @property
    def df(self) -> Any:
        return to_frame(self.value)

    def __repr__(self) -> str:
        table = self._table()
        if table is None:
            return value_text(self.value)
        return text_table(table)

    def _repr_html_(self) -> str:
        table = self._table()
        if table is None:
            return f"<pre>{html.escape(value_text(self.value))}</pre>"
        return html_table(table, title=self.name)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, QueryResult):
            return self.value == other.value
        return self.value == other

    __hash__ = None  # type: ignore[assignment]

    def __len__(self) -> int:
        rows = _rows_of(self.value)
        return len(rows) if rows is not None else 1

    def __iter__(self) -> Any:
        rows = _rows_of(self.value)
        return iter(rows if rows is not None else [self.value])


def short_error(exc: BaseException) -> str:
    """One line naming what failed: ``ConvexError: {...}``, ``ValidationError: ...``."""
    from ..errors import ConvexError

    if isinstance(exc, ConvexError):
        data = exc.data
        shown = data if isinstance(data, str) else json.dumps(to_display_json(data), ensure_ascii=False)
        return f"ConvexError: {shown}"
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


class ErrorReport:
    """An error as a display object (the dashboard's and ``%convex run``'s error box)."""

    def __init__(self, error: BaseException, *, name: str | None = None) -> None:
        self.error = error
        self.name = name

    def __repr__(self) -> str:
        where = f"{self.name}: " if self.name else ""
        return f"{where}{short_error(self.error)}"

    def _repr_html_(self) -> str:
        return (
            '<div style="border-left:3px solid #d33;padding:4px 8px;background:#fff4f4;'
            'font-family:var(--jp-code-font-family,monospace);font-size:12px">'
            f"{html.escape(repr(self))}</div>"
        )


def usage_text(usage: dict[str, int]) -> str:
    """A call's usage in a few words: "read 12 docs (3.1 KB, 2 ranges), wrote 1 (90 B), 2 retries"."""
    if not usage:
        return ""
    parts = []
    read = usage.get("documents_read", 0)
    ranges = usage.get("index_ranges", 0)
    if read or ranges:
        parts.append(f"read {read} doc{'' if read == 1 else 's'} ({_bytes(usage.get('bytes_read', 0))}, "
                     f"{ranges} range{'' if ranges == 1 else 's'})")
    written = usage.get("documents_written", 0)
    if written:
        parts.append(f"wrote {written} ({_bytes(usage.get('bytes_written', 0))})")
    retries = usage.get("occ_retries", 0)
    if retries:
        parts.append(f"{retries} OCC retr{'y' if retries == 1 else 'ies'}")
    return ", ".join(parts)


def _bytes(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    return f"{n / 1024:.1f} KB" if n < 1024 * 1024 else f"{n / (1024 * 1024):.1f} MB"


def log_rows(entries: Iterable[Any], *, with_time: bool = True) -> list[dict[str, Any]]:
    """Log entries (``app.logs``) as table rows: time, function, kind, outcome, lines."""
    rows = []
    for entry in entries:
        row: dict[str, Any] = {}
        if with_time:
            row["time"] = _dt.datetime.fromtimestamp(entry.timestamp).strftime("%H:%M:%S")
        row["function"] = entry.path
        row["kind"] = entry.kind
        row["outcome"] = "ok" if entry.error is None else f"error: {entry.error.splitlines()[0] if entry.error else ''}"
        row["duration"] = f"{entry.duration_ms:.1f} ms"
        row["usage"] = usage_text(getattr(entry, "usage", None) or {})
        row["lines"] = "\n".join(entry.lines)
        rows.append(row)
    return rows


def to_frame(value: Any) -> Any:
    """A pandas DataFrame of a query result's rows (documents → one row each)."""
    rows = _rows_of(value)
    if rows is None:
        rows = [value]
    if rows and not all(isinstance(r, dict) for r in rows):
        rows = [{"value": r} for r in rows]
    try:
        from .dataframes import to_dataframe
    except ImportError:
        import pandas as pd

        return pd.DataFrame.from_records(rows)
    return to_dataframe(rows)
