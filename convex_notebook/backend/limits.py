"""Convex's function limits: time of user code, argument, return and HTTP response sizes,
and warnings near the transaction limits.

    app = cn.Backend(limits=cn.Limits(query_seconds=5))     # a notebook that needs more

Time limits: a query or mutation may run ``query_seconds`` (1 s) of *user code* (time spent in
``ctx.db`` operations does not count, as in Convex); an action ``action_seconds`` (10 min) of
wall time. A watchdog thread raises :class:`FunctionTimeout` in the running thread when the
budget is spent (Python code is interrupted between bytecodes; a blocking C call such as
``time.sleep`` is interrupted when it returns), and the call fails with :class:`LimitError`
naming the limit. A timed-out mutation rolls back: it writes nothing. Async actions are
cancelled on their event loop instead.
"""

from __future__ import annotations

import contextvars
import ctypes
import dataclasses
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from ..engine.query import Query
from ..engine.transaction import Transaction, TransactionLimits
from ..errors import ConvexFunctionError
from ..values._codec import json_bytes
from ..values._size import value_size

__all__ = ["FunctionTimeout", "LimitError", "Limits", "TimedQuery", "check_size", "db_time", "near_limit_warnings",
           "user_code"]

MiB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """A deployment's limits (Convex's defaults). ``None`` turns a time or size limit off."""

    query_seconds: float | None = 1.0  # user code of a query or mutation
    action_seconds: float | None = 600.0  # an action (and an HTTP action), wall time
    argument_bytes: int | None = 16 * MiB  # a function's arguments (also a scheduled one's)
    return_bytes: int | None = 16 * MiB  # a function's return value
    http_response_bytes: int | None = 20 * MiB  # an HTTP action's response body
    transaction: TransactionLimits = field(default_factory=TransactionLimits)
    warn_fraction: float = 0.8  # log a warning past this fraction of a transaction limit

    @classmethod
    def coerce(cls, value: Any) -> Limits:
        """``cn.Backend(limits=...)``: a ``Limits``, a ``TransactionLimits`` or a dict of fields."""
        if value is None:
            return cls()
        if isinstance(value, Limits):
            return value
        if isinstance(value, TransactionLimits):
            return cls(transaction=value)
        if isinstance(value, dict):
            known = {f.name for f in dataclasses.fields(cls)}
            unknown = sorted(set(value) - known)
            if unknown:
                raise TypeError(f"Unknown limits {unknown}; known: {', '.join(sorted(known))}")
            return cls(**value)
        raise TypeError(f"limits= takes cn.Limits(...), cn.TransactionLimits(...) or a dict, got {type(value).__name__}")

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "transaction":
                if not isinstance(value, TransactionLimits):
                    raise TypeError(f"Limits.transaction is a cn.TransactionLimits, got {type(value).__name__}")
            elif value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0):
                raise ValueError(f"Limits.{f.name} must be a positive number or None, got {value!r}")


class LimitError(ConvexFunctionError):
    """A function went past one of Convex's limits (the message names it)."""


class FunctionTimeout(BaseException):
    """Raised inside a function's thread when its time budget is spent (a BaseException, so
    that a handler's ``except Exception`` does not swallow it); the caller sees LimitError."""


# -- time budgets -----------------------------------------------------------------------------
class _Budget:
    """One call's time budget: ``limit`` seconds, minus the time paused in database calls."""

    __slots__ = ("done", "fired", "holds", "limit", "paused", "paused_since", "start", "thread_id")

    def __init__(self, limit: float) -> None:
        self.thread_id = threading.get_ident()
        self.limit = limit
        self.start = time.monotonic()
        self.paused = 0.0
        self.paused_since: float | None = None
        self.holds = 0  # > 0: in a database call or a nested function call; never interrupt there
        self.fired = False  # this budget's timeout was raised (a nested budget tells its own by this)
        self.done = False

    def used(self, now: float) -> float:
        since = self.paused_since
        return now - self.start - self.paused - (now - since if since is not None else 0.0)

    def deadline(self) -> float:
        return self.start + self.paused + self.limit


class _Watchdog:
    """One daemon thread that interrupts calls past their budget.

    Calls only register their budget (a dict insert: no lock, no thread switch); the thread
    polls the registered budgets every ``TICK_S`` while any call runs, and sleeps until woken
    once calls stop coming for ``IDLE_S``. A budget therefore fires at most ``TICK_S`` late,
    and a call that ends well within its budget never wakes the thread: waking it on every
    call cost a thread switch (and the GIL) per function call.
    """

    TICK_S = 0.01
    IDLE_S = 1.0

    def __init__(self) -> None:
        self._lock = threading.Lock()  # firing a budget and finishing it exclude each other
        self._active: dict[_Budget, None] = {}
        self._arrivals = 0  # bumped per call: the thread stays awake while calls keep coming
        self._sleeping = True  # the thread is (or is about to be) parked on _wake
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, budget: _Budget) -> None:
        self._active[budget] = None
        self._arrivals += 1
        if self._sleeping:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="convex-limits", daemon=True)
                    self._thread.start()
                self._sleeping = False
                self._wake.set()

    def finish(self, budget: _Budget) -> bool:
        """Stop watching ``budget``; True if it fired (a pending interrupt is withdrawn).

        Under the lock: the thread fires under it too, so a budget is either fired before
        this (and its interrupt withdrawn here) or never."""
        with self._lock:
            budget.done = True
            self._active.pop(budget, None)
            if budget.fired:
                _async_raise(budget.thread_id, None)  # not delivered yet: clear it
            return budget.fired

    def _run(self) -> None:
        quiet_since = time.monotonic()
        seen = self._arrivals
        while True:
            self._wake.wait()
            time.sleep(self.TICK_S)
            now = time.monotonic()
            for budget in list(self._active):
                if now >= budget.deadline():
                    self._fire(budget, now)
            if self._active or self._arrivals != seen:
                seen, quiet_since = self._arrivals, now
            elif now - quiet_since >= self.IDLE_S:
                with self._lock:  # park; an add() after this wakes us again
                    self._sleeping = True
                    self._wake.clear()
                if self._active:  # one arrived before _sleeping was seen set: stay up
                    with self._lock:
                        self._sleeping = False
                        self._wake.set()

    def _fire(self, budget: _Budget, now: float) -> None:
        with self._lock:
            # In a database call (the clock is paused) or a nested call: look again next tick.
            if budget.done or budget.holds or budget.paused_since is not None or budget.deadline() > now:
                return
            budget.fired = True
            self._active.pop(budget, None)
            _async_raise(budget.thread_id, FunctionTimeout)


def _async_raise(thread_id: int, exc: type[BaseException] | None) -> None:
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), ctypes.py_object(exc) if exc else None)


_WATCHDOG = _Watchdog()
_current: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar("convex_budget", default=None)


class user_code:
    """``with user_code(limit, "query", "tasks:list", limit_name=...)``: run the block under a
    time budget of ``limit`` seconds (None: no limit). Past it, the block is interrupted and
    :class:`LimitError` raised, naming ``what`` (and ``name``: joined only then, not on every
    call). (A class, not a generator: it wraps every function call.)"""

    __slots__ = ("budget", "limit", "limit_name", "name", "token", "what")

    def __init__(self, limit: float | None, what: str, name: str = "", *, limit_name: str) -> None:
        self.limit = limit
        self.what = what
        self.name = name
        self.limit_name = limit_name

    def __enter__(self) -> None:
        if self.limit is None:
            return
        self.budget = budget = _Budget(self.limit)
        self.token = _current.set(budget)
        _WATCHDOG.add(budget)

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        limit = self.limit
        if limit is None:
            return
        budget = self.budget
        fired = _WATCHDOG.finish(budget)
        _current.reset(self.token)
        if exc_type is FunctionTimeout and not budget.fired:
            return  # an outer budget's (an action's, around a nested call)
        if exc_type is FunctionTimeout or fired or budget.used(time.monotonic()) > limit:
            raise LimitError(
                f"{self.what}{' ' if self.name else ''}{self.name} timed out: it ran more than {_seconds(limit)} of user code, Convex's limit "
                f"({self.limit_name}; raise it with cn.Backend(limits=cn.Limits({self.limit_name}=...)))"
            ) from None


def _seconds(limit: float) -> str:
    return f"{limit:g} s" if limit < 60 else f"{limit / 60:g} minutes"


class _DbTime:
    """A database call inside a function: its time does not count (Convex's "user code" only)."""

    __slots__ = ("budget",)

    def __enter__(self) -> None:
        budget = _current.get()
        if budget is None or budget.paused_since is not None:
            self.budget = None
            return
        self.budget = budget
        budget.paused_since = time.monotonic()

    def __exit__(self, *exc: object) -> None:
        budget = self.budget
        if budget is not None:
            budget.paused += time.monotonic() - budget.paused_since  # type: ignore[operator]
            budget.paused_since = None


def db_time() -> _DbTime:
    """``with db_time():`` around a database call inside a function (see :class:`_DbTime`)."""
    return _DbTime()


@contextmanager
def held() -> Iterator[None]:
    """A nested call from an action: the action's clock runs, but it is never interrupted
    inside the nested call (that could land in a commit); the deadline is checked after."""
    budget = _current.get()
    if budget is None:
        yield
        return
    budget.holds += 1
    try:
        yield
    finally:
        budget.holds -= 1
    if budget.used(time.monotonic()) > budget.limit and not budget.done:
        budget.fired = True
        raise FunctionTimeout()


class TimedQuery:
    """``ctx.db.query(...)`` seen through the time budget: reading the query is a database
    operation (its time is not user code). Behaves as the ``Query`` it wraps.

    Building it (``with_index``, ``filter``, ``order``...) reads nothing and is wrapped without
    a clock; the methods that read are spelled out (no ``__getattr__`` and closure per call on
    the hot path); anything else (an attribute, a method added later) falls through
    ``__getattr__``."""

    __slots__ = ("_query",)

    def __init__(self, query: Query) -> None:
        self._query = query

    def with_index(self, *args: Any, **kwargs: Any) -> TimedQuery:
        return TimedQuery(self._query.with_index(*args, **kwargs))

    def with_search_index(self, *args: Any, **kwargs: Any) -> TimedQuery:
        return TimedQuery(self._query.with_search_index(*args, **kwargs))

    def full_table_scan(self) -> TimedQuery:
        return TimedQuery(self._query.full_table_scan())

    def filter(self, predicate: Any) -> TimedQuery:
        return TimedQuery(self._query.filter(predicate))

    def order(self, order: str) -> TimedQuery:
        return TimedQuery(self._query.order(order))

    def collect(self) -> list[dict]:
        with _DbTime():
            return self._query.collect()

    def take(self, n: int) -> list[dict]:
        with _DbTime():
            return self._query.take(n)

    def first(self) -> dict | None:
        with _DbTime():
            return self._query.first()

    def unique(self) -> dict | None:
        with _DbTime():
            return self._query.unique()

    def count(self) -> int:
        with _DbTime():
            return self._query.count()

    def paginate(self, opts: dict | None = None, *, num_items: int | None = None, cursor: str | None = None) -> dict:
        with _DbTime():
            return self._query.paginate(opts, num_items=num_items, cursor=cursor)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._query, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            with db_time():
                result = attr(*args, **kwargs)
            return TimedQuery(result) if isinstance(result, Query) else result

        return call

    def __iter__(self) -> Iterator[dict]:
        with db_time():
            it = iter(self._query)
        while True:
            with db_time():
                try:
                    doc = next(it)
                except StopIteration:
                    return
            yield doc

    def __repr__(self) -> str:
        return repr(self._query)


# -- sizes ------------------------------------------------------------------------------------
def check_size(value: Any, limit: int | None, what: str, limit_name: str) -> None:
    """Refuse ``value`` when its Convex size passes ``limit`` (``what``: "Arguments of m:f")."""
    if limit is None:
        return
    # A quick bound: a Convex size is at most 9 bytes per character of the value's JSON (a
    # number is 9 bytes and at least one character; nothing else is larger than its text).
    # What orjson refuses (bytes, Int64) is measured.
    text = json_bytes(value)
    if text is not None and 9 * len(text) <= limit:
        return
    size = value_size(value)
    if size > limit:
        raise LimitError(
            f"{what} are too large ({size} bytes; the limit is {_bytes(limit)}: "
            f"cn.Limits({limit_name}=...))"
        )


def _bytes(n: int) -> str:
    return f"{n / MiB:g} MiB" if n % (MiB // 4) == 0 else f"{n} bytes"


# -- warnings near the transaction limits ------------------------------------------------------
# Convex's advice after the read warnings (OVER_LIMIT_HELP in crates/database/src/reads.rs).
OVER_LIMIT_HELP = (
    "Consider using smaller limits in your queries, paginating your queries, or using indexed "
    "queries with a selective index range expressions."
)


def near_limit_warnings(txn: Transaction, limits: Limits) -> list[str]:
    """Convex's ``[WARN]`` log lines for a transaction close to its limits: past
    ``warn_fraction`` of one and not over it (crates/udf/src/warnings.rs), in Convex's order
    and words."""
    tl = limits.transaction
    frac = limits.warn_fraction
    if (  # the usual case, checked without building anything
        txn.documents_read <= frac * tl.documents_read and txn.bytes_read <= frac * tl.bytes_read
        and txn.index_ranges <= frac * tl.index_ranges and txn.documents_written <= frac * tl.documents_written
        and txn.bytes_written <= frac * tl.bytes_written
    ):
        return []
    checks = (
        (txn.documents_read, tl.documents_read, "Many documents read in a single function execution", "",
         OVER_LIMIT_HELP),
        (txn.index_ranges, tl.index_ranges, "Many reads in a single function execution", "", OVER_LIMIT_HELP),
        (txn.bytes_read, tl.bytes_read, "Many bytes read in a single function execution", " bytes",
         OVER_LIMIT_HELP),
        (txn.documents_written, tl.documents_written, "Many writes in a single function execution", "", ""),
        (txn.bytes_written, tl.bytes_written, "Many bytes written in a single function execution", " bytes", ""),
    )
    out = []
    for actual, limit, what, unit, advice in checks:
        if limit and int(frac * limit) < actual <= limit:
            suffix = f" {advice}" if advice else ""
            out.append(f"[WARN] {what} (actual: {actual}{unit}, limit: {limit}{unit}).{suffix}")
    return out
