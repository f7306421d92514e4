"""Per-call log capture: ``print`` and ``logging`` inside a function become its log lines.

Capture is keyed by a context variable, so it follows the call across threads started with
``asyncio.to_thread`` and stays separate between concurrent async actions.

``print`` is captured the way Convex captures ``console.log``: through the function's own
environment, never by patching the process. Registering a function (:func:`bind_print`) gives
its module a global ``print`` (:func:`captured_print`) that writes to the running call's log
lines and, outside a call, is the built-in ``print``. ``builtins.print`` and ``sys.stdout``
are left alone, so code elsewhere in the process prints as usual. ``logging`` records reach a
call's lines through a handler on the root logger, attached only while some call is capturing:
between calls the root logger is as the user left it (``logging.basicConfig()`` in a later cell
still configures it, as it does when the root logger has no handlers).
"""

from __future__ import annotations

import builtins
import contextvars
import functools
import logging
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Self

__all__ = [
    "LogBook",
    "LogEntry",
    "begin",
    "bind_print",
    "capture",
    "captured_print",
    "current_buffer",
    "end",
    "isolated",
]

MAX_LINE = 4096  # Convex truncates log lines at 4 KiB

_buffer: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("convex_log_buffer", default=None)


def current_buffer() -> list[str] | None:
    return _buffer.get()


def _line(level: str, text: str) -> str:
    if len(text) > MAX_LINE:
        text = text[:MAX_LINE] + " (truncated)"
    return f"[{level}] {text}"


def captured_print(*args: Any, sep: str | None = " ", end: str | None = "\n", file: Any = None, flush: bool = False) -> None:
    """``print`` for Convex functions: inside a call, a line of its log (stderr: an ERROR
    line); outside one, or to a file, the built-in ``print``."""
    buf = _buffer.get()
    if buf is not None and (file is None or file is sys.stdout or file is sys.stderr):
        level = "ERROR" if file is sys.stderr else "LOG"
        buf.append(_line(level, (" " if sep is None else sep).join(str(a) for a in args)))
        return
    builtins.print(*args, sep=sep, end=end, file=file, flush=flush)


def bind_print(fn: Callable[..., Any]) -> None:
    """Give the module(s) ``fn`` is written in a global ``print`` that is :func:`captured_print`
    (unless the module defines its own ``print``). Follows ``functools.wraps`` and
    ``functools.partial`` to the function the user wrote."""
    for target in _unwrapped(fn):
        namespace = getattr(target, "__globals__", None)
        if isinstance(namespace, dict):
            namespace.setdefault("print", captured_print)


def _unwrapped(fn: Any) -> Iterator[Any]:
    seen: set[int] = set()
    while fn is not None and id(fn) not in seen:
        seen.add(id(fn))
        yield fn
        fn = fn.func if isinstance(fn, functools.partial) else getattr(fn, "__wrapped__", None)


class _CaptureHandler(logging.Handler):
    """Routes records emitted during a function call into its log lines."""

    def emit(self, record: logging.LogRecord) -> None:
        buf = _buffer.get()
        if buf is not None:
            level = {"WARNING": "WARN"}.get(record.levelname, record.levelname)
            buf.append(_line(level, record.getMessage()))
            return
        # A record of another thread, outside any call, while we are the root logger's only
        # handler: without us Python would hand it to its last resort, so do that.
        if len(_ROOT.handlers) == 1 and logging.lastResort is not None and record.levelno >= logging.lastResort.level:
            logging.lastResort.handle(record)


_ROOT = logging.getLogger()
_HANDLER = _CaptureHandler()
# One item per capture open in the process: the handler is on the root logger while any is.
# (list.append and list.pop are atomic: no lock of our own on the per-call path.)
_open: list[None] = []


def _attach() -> None:
    """A capture starts: make sure the handler is on the root logger."""
    _open.append(None)
    if _HANDLER not in _ROOT.handlers:  # (also after a basicConfig(force=True) in a call)
        _ROOT.addHandler(_HANDLER)


def _detach() -> None:
    """A capture ends: the last one open takes the handler off the root logger again."""
    _open.pop()
    if not _open:
        _ROOT.removeHandler(_HANDLER)
        if _open:  # a capture started meanwhile and found the handler still there: put it back
            _ROOT.addHandler(_HANDLER)


class capture:
    """Context manager collecting log lines of one call (nested calls share the outer buffer)."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._token: contextvars.Token | None = None

    def __enter__(self) -> Self:
        outer = _buffer.get()
        if outer is not None:
            self.lines = outer
        else:
            _attach()
            self._token = _buffer.set(self.lines)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._token is not None:
            _buffer.reset(self._token)
            _detach()


def begin() -> tuple[list[str], contextvars.Token | None]:
    """Start capturing, as :class:`capture` does (a nested call joins the outer buffer): the
    buffer, and the token to pass to :func:`end` (None when joining). A function form of
    ``capture`` for the per-call hot path."""
    outer = _buffer.get()
    if outer is not None:
        return outer, None
    lines: list[str] = []
    _attach()
    return lines, _buffer.set(lines)


def end(token: contextvars.Token | None) -> None:
    if token is not None:
        _buffer.reset(token)
        _detach()


class isolated(capture):
    """Like :class:`capture`, but never shares an outer call's buffer.

    Used for query re-runs triggered by another call's commit: their lines are their own.
    """

    def __enter__(self) -> Self:
        _attach()
        self._token = _buffer.set(self.lines)
        return self


def echo(lines: list[str]) -> None:
    """Print log lines to the caller's output (what Convex clients do in dev)."""
    for line in lines:
        builtins.print(line)


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
