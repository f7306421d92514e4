"""Per-call log capture: ``print`` and ``logging`` inside a function become its log lines.

Capture is keyed by a context variable, so it follows the call across threads started with
``asyncio.to_thread`` and stays separate between concurrent async actions. Outside a function
call, ``print`` and ``logging`` behave exactly as before.
"""

from __future__ import annotations

import builtins
import contextvars
import logging
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

__all__ = ["LogEntry", "LogBook", "begin", "capture", "current_buffer", "end", "install", "isolated"]

MAX_LINE = 4096  # Convex truncates log lines at 4 KiB

_buffer: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("convex_log_buffer", default=None)
_original_print = builtins.print
_installed = False
_install_lock = threading.Lock()


def current_buffer() -> list[str] | None:
    return _buffer.get()


def _line(level: str, text: str) -> str:
    if len(text) > MAX_LINE:
        text = text[:MAX_LINE] + " (truncated)"
    return f"[{level}] {text}"


def _capturing_print(*args: Any, sep: str | None = " ", end: str | None = "\n", file: Any = None, flush: bool = False) -> None:
    buf = _buffer.get()
    if buf is not None and (file is None or file is sys.stdout or file is sys.stderr):
        level = "ERROR" if file is sys.stderr else "LOG"
        buf.append(_line(level, (" " if sep is None else sep).join(str(a) for a in args)))
        return
    _original_print(*args, sep=sep, end=end, file=file, flush=flush)


class _CaptureHandler(logging.Handler):
    """Routes records emitted during a function call into its log lines."""

    def emit(self, record: logging.LogRecord) -> None:
        buf = _buffer.get()
        if buf is not None:
            level = {"WARNING": "WARN"}.get(record.levelname, record.levelname)
            buf.append(_line(level, record.getMessage()))
            return
        # We are the root logger's only handler: keep Python's default behaviour.
        root = logging.getLogger()
        if len(root.handlers) == 1 and logging.lastResort is not None and record.levelno >= logging.lastResort.level:
            logging.lastResort.handle(record)


def install() -> None:
    """Hook ``print`` and the root logger once per process (idempotent)."""
    global _installed
    with _install_lock:
        if _installed:
            return
        builtins.print = _capturing_print
        logging.getLogger().addHandler(_CaptureHandler())
        _installed = True


class capture:
    """Context manager collecting log lines of one call (nested calls share the outer buffer)."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._token: contextvars.Token | None = None

    def __enter__(self) -> "capture":
        outer = _buffer.get()
        if outer is not None:
            self.lines = outer
        else:
            self._token = _buffer.set(self.lines)
        return self

    @property
    def outermost(self) -> bool:
        """True unless this call runs inside another captured call (whose lines it shares)."""
        return self._token is not None

    def __exit__(self, *exc: Any) -> None:
        if self._token is not None:
            _buffer.reset(self._token)


def begin() -> tuple[list[str], contextvars.Token | None]:
    """Start capturing, as :class:`capture` does (a nested call joins the outer buffer): the
    buffer, and the token to pass to :func:`end` (None when joining). A function form of
    ``capture`` for the per-call hot path."""
    outer = _buffer.get()
    if outer is not None:
        return outer, None
    lines: list[str] = []
    return lines, _buffer.set(lines)


def end(token: contextvars.Token | None) -> None:
    if token is not None:
        _buffer.reset(token)


class isolated(capture):
    """Like :class:`capture`, but never shares an outer call's buffer.

    Used for query re-runs triggered by another call's commit: their lines are their own.
    """

    def __enter__(self) -> "isolated":
        self._token = _buffer.set(self.lines)
        return self


def echo(lines: list[str]) -> None:
    """Print log lines to the caller's output (what Convex clients do in dev)."""
    for line in lines:
        _original_print(line)


@dataclass(slots=True)
class LogEntry:
    """One top-level function execution, as shown by ``%convex logs`` and the dashboard."""

    timestamp: float
    path: str
    kind: str
    lines: list[str]
    duration_ms: float
    error: str | None = None
    # What the call read and wrote: documents_read, bytes_read, index_ranges,
    # documents_written, bytes_written, occ_retries (Convex's per-call usage).
    usage: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class LogBook:
    """The most recent executions (a ring buffer)."""

    capacity: int = 1000
    entries: deque[LogEntry] = field(default_factory=deque)
    added: int = 0  # entries ever added: a cursor for streaming (npx convex logs)
    # Called with each new entry, on the thread that made the call (``Backend.on_log``).
    listeners: list[Callable[[LogEntry], Any]] = field(default_factory=list, repr=False)

    def add(self, entry: LogEntry) -> None:
        self.entries.append(entry)
        self.added += 1
        while len(self.entries) > self.capacity:
            self.entries.popleft()
        for listener in list(self.listeners):
            listener(entry)

    def since(self, cursor: int) -> tuple[list[LogEntry], int]:
        """The entries added after ``cursor`` (those still kept) and the new cursor."""
        entries, added = list(self.entries), self.added
        new = max(0, min(added - cursor, len(entries)))
        return (entries[len(entries) - new:] if new else []), added

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(list(self.entries))

    def __len__(self) -> int:
        return len(self.entries)

    def tail(self, n: int = 20) -> list[LogEntry]:
        return list(self.entries)[-n:]


def now() -> float:
    return time.time()
