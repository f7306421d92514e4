"""The reactive core: a query cache and live subscriptions kept current by read sets.

Every query execution records what it read (index ranges). Results are kept in one of two
places, both registered in a :class:`RangeIndex` under the ranges they read:

* **live queries**: the results somebody subscribed to. A commit that writes into their ranges
  re-runs them *inside the commit* (under the database lock, at exactly the committed
  snapshot), so when ``mutation()`` returns every subscription already holds the new value;
* **cached results** of one-shot calls (and of live queries nobody watches any more), in a
  bounded LRU. A commit into their ranges simply drops them.

Identical ``(function, args, identity)`` at the same snapshot therefore share one execution.
Results are stored frozen (pickled): each reader decodes its own copy, so nobody can mutate
what another caller holds, and "did it change?" is a byte comparison.

Callbacks never run on the committing thread: a dispatcher thread delivers them in commit
order, coalesced per subscription, so a slow callback only delays itself.

The hub knows nothing about functions: the backend hands it an *executor* that runs one
query at the current snapshot and reports an :class:`Execution`.
"""

from __future__ import annotations

import asyncio
import pickle
import sys
import threading
import traceback
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Callable, Hashable, Iterator, NamedTuple

from .rangeindex import RangeIndex
from .readset import ReadSet, WriteSet

__all__ = ["Execution", "HubStats", "QueryKey", "Subscription", "SubscriptionHub", "freeze", "thaw"]

# A cached result that looked at the clock goes stale after this long (Convex: about 20 min).
TIME_READ_TTL_MS = 20 * 60 * 1000


def freeze(value: Any) -> bytes:
    """An immutable, comparable copy of a Convex value."""
    return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)


def thaw(frozen: bytes) -> Any:
    """A fresh, private copy of a frozen value."""
    return pickle.loads(frozen)


class QueryKey(NamedTuple):
    """What identifies a query result: function path, arguments and (maybe) identity."""

    path: str
    args: bytes
    identity: bytes | None

    @classmethod
    def make(cls, path: str, args: dict, identity: dict | None) -> "QueryKey":
        return cls(path, freeze(args), freeze(identity) if identity is not None else None)


@dataclass
class Execution:
    """One run of a query, as reported by the executor."""

    frozen: bytes | None  # the result (None when the query raised)
    error: BaseException | None
    reads: ReadSet
    ts: int
    now_ms: float = 0.0
    journal: str | None = None  # a paginated query's pinned end cursor
    functions: frozenset[str] = frozenset()  # every function path it ran (for redefinition)
    read_time: bool = False
    log_lines: list[str] = field(default_factory=list)
    # The result object itself, handed to the caller whose call computed it (saves a copy);
    # the hub clears it right away so that nothing else can see what that caller mutates.
    value: Any = None

    def take_value(self) -> Any:
        value, self.value = self.value, None
        return value


Executor = Callable[[str, dict, "dict | None", "str | None"], Execution]


@dataclass
class HubStats:
    """Counters that tests and benchmarks use to check precision."""

    executions: int = 0  # executor calls of any kind
    reruns: int = 0  # executions of live queries caused by a commit or a redefinition
    unchanged: int = 0  # re-runs whose result was identical (no notification)
    notifications: int = 0  # result changes published to live queries
    cache_hits: int = 0
    cache_misses: int = 0
    invalidations: int = 0  # cached results dropped by a commit

    def snapshot(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass
class _Cached:
    execution: Execution


class _LiveQuery:
    """One live result, shared by every subscription to the same key."""

    __slots__ = ("key", "args", "identity", "execution", "subscribers")

    def __init__(self, key: QueryKey, args: dict, identity: dict | None, execution: Execution) -> None:
        self.key = key
        self.args = args
        self.identity = identity
        self.execution = execution
        self.subscribers: set[Subscription] = set()


class SubscriptionHub:
    """Live queries and the query cache of one database (see module docstring)."""

    def __init__(
        self,
        lock: threading.RLock,
        executor: Executor,
        *,
        now_ms: Callable[[], float],
        last_ts: Callable[[], int],
        cache_size: int = 1024,
    ) -> None:
        self._lock = lock
        self._execute = executor
        self._now_ms = now_ms
        self._last_ts = last_ts
        self.cache_size = cache_size
        self._ranges = RangeIndex()
        self._live: dict[QueryKey, _LiveQuery] = {}
        self._cache: OrderedDict[QueryKey, _Cached] = OrderedDict()
        self._by_function: dict[str, set[tuple[str, QueryKey]]] = {}
        self._owner_functions: dict[tuple[str, QueryKey], frozenset[str]] = {}
        self.stats = HubStats()
        self.dispatcher = Dispatcher()
        self.on_rerun: Callable[[QueryKey, Execution], None] | None = None

    # -- introspection ----------------------------------------------------------------------
    @property
    def live_count(self) -> int:
        return len(self._live)

    @property
    def subscription_count(self) -> int:
        return sum(len(live.subscribers) for live in self._live.values())

    @property
    def cached_count(self) -> int:
        return len(self._cache)

    @property
    def watched_owners(self) -> int:
        """Entries registered in the range index (live + cached): freed on unsubscribe."""
        return len(self._ranges)

    # -- one-shot queries -------------------------------------------------------------------
    def query(self, path: str, args: dict, identity: dict | None) -> tuple[Any, Execution, bool]:
        """``(value, execution, fresh)`` of a query at the latest snapshot, from the cache
        when still valid (``fresh`` is False then). ``value`` is the caller's own copy."""
        with self._lock:
            hit = self._lookup(path, args, identity)
            if hit is not None:
                self.stats.cache_hits += 1
                return thaw(hit.frozen), hit, False  # type: ignore[arg-type]
            self.stats.cache_misses += 1
            execution = self._run(path, args, identity, None)
            if execution.error is None and execution.journal is None:
                self._store(path, args, identity, execution)
            return execution.take_value(), execution, True

    def _lookup(self, path: str, args: dict, identity: dict | None) -> Execution | None:
        shared = QueryKey.make(path, args, None)
        keys = [shared] if identity is None else [shared, shared._replace(identity=freeze(identity))]
        for key in keys:
            live = self._live.get(key)
            if live is not None and live.execution.error is None and live.execution.journal is None:
                # An anonymous live result that read the identity is not another user's answer.
                if not (key.identity is None and identity is not None and live.execution.reads.read_identity):
                    return live.execution
            cached = self._cache.get(key)
            if cached is not None:
                execution = cached.execution
                if key.identity is None and execution.reads.read_identity:
                    continue
                if execution.read_time and self._now_ms() - execution.now_ms > TIME_READ_TTL_MS:
                    self._drop_cached(key)
                    continue
                self._cache.move_to_end(key)
                return execution
        return None

    def _store(self, path: str, args: dict, identity: dict | None, execution: Execution) -> None:
        if self.cache_size <= 0:
            return
        # A result that never looked at the identity is shared by every identity.
        ident = identity if execution.reads.read_identity else None
        key = QueryKey.make(path, args, ident)
        if key in self._live:
            return
        self._drop_cached(key)
        self._cache[key] = _Cached(execution)
        self._watch(("cache", key), execution)
        while len(self._cache) > self.cache_size:
            self._drop_cached(next(iter(self._cache)))

    def _drop_cached(self, key: QueryKey) -> None:
        if self._cache.pop(key, None) is not None:
            self._unwatch(("cache", key))

    # -- subscriptions ----------------------------------------------------------------------
    def subscribe(
        self,
        path: str,
        args: dict,
        identity: dict | None,
        *,
        on_update: Callable[[Any], Any] | None = None,
        on_error: Callable[[BaseException], Any] | None = None,
        journal: str | None = None,
    ) -> "Subscription":
        """A live subscription; its first value is computed (or found) before this returns."""
        key = QueryKey.make(path, args, identity)
        if journal is not None:
            # A resumed paginated query keeps its own pinned end: never share it.
            key = key._replace(path=f"{path}#{journal}")
        with self._lock:
            live = self._live.get(key)
            if live is None:
                execution = None
                if journal is None:
                    execution = self._lookup(path, args, identity)
                if execution is not None:
                    self.stats.cache_hits += 1
                else:
                    self.stats.cache_misses += 1
                    execution = self._run_live(path, args, identity, journal)
                self._drop_cached(key)
                live = self._live[key] = _LiveQuery(key, args, identity, execution)
                self._watch(("live", key), execution)
            sub = Subscription(self, key, path, on_update, on_error)
            live.subscribers.add(sub)
            sub._publish(live.execution, initial=True)
            return sub

    def _unsubscribe(self, sub: "Subscription") -> None:
        with self._lock:
            live = self._live.get(sub.key)
            if live is None:
                return
            live.subscribers.discard(sub)
            if live.subscribers:
                return
            del self._live[sub.key]
            self._unwatch(("live", sub.key))
            execution = live.execution
            # Keep the result around (LRU) so that re-subscribing, e.g. re-running a cell, is free.
            if execution.error is None and execution.journal is None and "#" not in sub.key.path:
                self._store(sub.key.path, live.args, live.identity, execution)

    # -- invalidation -----------------------------------------------------------------------
    def on_commit(self, writes: WriteSet, ts: int) -> None:
        """Commit listener (called under the database lock right after a commit)."""
        if getattr(writes, "everything", False):
            owners = {("live", k) for k in self._live} | {("cache", k) for k in self._cache}
        else:
            owners = self._ranges.affected(writes)
        if owners:
            self._invalidate(owners)

    def function_changed(self, path: str) -> None:
        """A function was (re)defined or removed: refresh every result that ran it."""
        with self._lock:
            owners = set(self._by_function.get(path, ()))
            # A new function may satisfy queries that failed because it didn't exist yet.
            owners |= {("live", k) for k, live in self._live.items() if live.execution.error is not None}
            if owners:
                self._invalidate(owners)

    def _invalidate(self, owners: set[Hashable]) -> None:
        stale: list[_LiveQuery] = []
        for kind, key in owners:  # type: ignore[misc]
            if kind == "cache":
                self.stats.invalidations += 1
                self._drop_cached(key)
            else:
                live = self._live.get(key)
                if live is not None:
                    stale.append(live)
        for live in stale:
            self._rerun(live)

    def _rerun(self, live: _LiveQuery) -> None:
        path = live.key.path.split("#", 1)[0]
        before = live.execution
        try:
            execution = self._run_live(path, live.args, live.identity, before.journal)
        except Exception as exc:  # an executor bug must not break the commit that triggered us
            traceback.print_exc(file=sys.stderr)
            execution = Execution(None, exc, before.reads, self._last_ts(), journal=before.journal)
        self.stats.reruns += 1
        live.execution = execution
        self._watch(("live", live.key), execution)
        if self.on_rerun is not None:
            self.on_rerun(live.key, execution)
        if _same_result(before, execution):
            self.stats.unchanged += 1
            for sub in live.subscribers:
                sub._advance(execution)
            return
        self.stats.notifications += 1
        for sub in live.subscribers:
            sub._publish(execution)

    # -- bookkeeping ------------------------------------------------------------------------
    def _run(self, path: str, args: dict, identity: dict | None, journal: str | None) -> Execution:
        self.stats.executions += 1
        return self._execute(path, args, identity, journal)

    def _run_live(self, path: str, args: dict, identity: dict | None, journal: str | None) -> Execution:
        execution = self._run(path, args, identity, journal)
        execution.value = None  # subscribers decode their own copies
        return execution

    def _watch(self, owner: tuple[str, QueryKey], execution: Execution) -> None:
        self._unwatch(owner)
        self._ranges.set_ranges(owner, execution.reads.ranges)
        functions = execution.functions or frozenset([owner[1].path.split("#", 1)[0]])
        for fn in functions:
            self._by_function.setdefault(fn, set()).add(owner)
        self._owner_functions[owner] = functions

    def _unwatch(self, owner: tuple[str, QueryKey]) -> None:
        self._ranges.remove(owner)
        for fn in self._owner_functions.pop(owner, ()):
            owners = self._by_function.get(fn)
            if owners is not None:
                owners.discard(owner)
                if not owners:
                    del self._by_function[fn]

    def drain(self, timeout: float | None = 10.0) -> bool:
        """Wait until every callback scheduled so far has run; False on timeout."""
        return self.dispatcher.drain(timeout)

    def close(self) -> None:
        with self._lock:
            for live in list(self._live.values()):
                for sub in list(live.subscribers):
                    sub._close_silently()
            self._live.clear()
            self._cache.clear()
            self._ranges = RangeIndex()
            self._by_function.clear()
            self._owner_functions.clear()
        self.dispatcher.stop()


def _same_result(a: Execution, b: Execution) -> bool:
    if a.error is not None or b.error is not None:
        return a.error is not None and b.error is not None and str(a.error) == str(b.error) and (
            type(a.error) is type(b.error)
        )
    return a.frozen == b.frozen and a.journal == b.journal


class Dispatcher:
    """One thread that runs subscription callbacks in commit order, coalesced per subscription."""

    def __init__(self) -> None:
        self._queue: deque[Subscription] = deque()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._running = 0  # callbacks in progress
        self._stopped = False

    def schedule(self, sub: "Subscription") -> None:
        with self._cond:
            if sub._callback_pending or self._stopped:
                return  # already queued: it will deliver the latest value when its turn comes
            sub._callback_pending = True
            self._queue.append(sub)
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="convex-subscriptions", daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._stopped:
                    self._cond.wait()
                if self._stopped:
                    return
                sub = self._queue.popleft()
                sub._callback_pending = False
                self._running += 1
            try:
                sub._run_callbacks()
            finally:
                with self._cond:
                    self._running -= 1
                    self._cond.notify_all()

    def drain(self, timeout: float | None) -> bool:
        if self._thread is threading.current_thread():
            return not self._queue
        with self._cond:
            return self._cond.wait_for(lambda: not self._queue and not self._running, timeout)

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._queue.clear()
            self._cond.notify_all()


class Subscription:
    """A live query result: ``.value``, ``.error``, iteration over new values, ``unsubscribe()``.

    ``for value in sub`` yields the current value, then each new one (blocking; values that
    arrive faster than the loop consumes them are coalesced to the latest). ``async for``
    does the same without blocking the event loop. Either raises the query's error if it
    fails. Callbacks (``on_update(value)``, ``on_error(exc)``) run on the dispatcher thread.
    """

    def __init__(
        self,
        hub: SubscriptionHub,
        key: QueryKey,
        path: str,
        on_update: Callable[[Any], Any] | None,
        on_error: Callable[[BaseException], Any] | None,
    ) -> None:
        self._hub = hub
        self.key = key
        self.path = path
        self.on_update = on_update
        self.on_error = on_error
        self._cond = threading.Condition()
        self._execution: Execution | None = None
        self._version = 0
        self._decoded: tuple[int, Any] | None = None
        self._good: bytes | None = None  # the latest successful result, frozen
        self._good_version = 0
        self._delivered_version = 0
        self._callback_pending = False
        self._async_waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
        self.closed = False

    def __repr__(self) -> str:
        state = "closed" if self.closed else ("error" if self.error is not None else "live")
        return f"<Subscription {self.path} {state} v{self._version}>"

    # -- state ------------------------------------------------------------------------------
    @property
    def value(self) -> Any:
        """The latest result (a private copy); the last good one while the query fails."""
        with self._cond:
            version, good = self._good_version, self._good
            if self._decoded is not None and self._decoded[0] == version:
                return self._decoded[1]
            if good is None:
                return None
            value = thaw(good)
            self._decoded = (version, value)
            return value

    @property
    def error(self) -> BaseException | None:
        """The query's current error, or None when its latest run succeeded."""
        execution = self._execution
        return execution.error if execution is not None else None

    @property
    def ts(self) -> int:
        """The commit timestamp the current value reflects."""
        execution = self._execution
        return execution.ts if execution is not None else 0

    @property
    def version(self) -> int:
        """How many distinct results this subscription has seen (1 after subscribing)."""
        return self._version

    @property
    def journal(self) -> str | None:
        execution = self._execution
        return execution.journal if execution is not None else None

    @property
    def log_lines(self) -> list[str]:
        execution = self._execution
        return list(execution.log_lines) if execution is not None else []

    # -- called by the hub (under the database lock) ---------------------------------------
    def _publish(self, execution: Execution, initial: bool = False) -> None:
        with self._cond:
            self._execution = execution
            self._version += 1
            if execution.frozen is not None:
                self._good, self._good_version = execution.frozen, self._version
            if initial:
                self._delivered_version = self._version  # the caller gets it from .value
            self._cond.notify_all()
            waiters = list(self._async_waiters)
        for loop, event in waiters:
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:  # that loop is closed
                self._async_waiters.discard((loop, event))
        if not initial and (self.on_update is not None or self.on_error is not None):
            self._hub.dispatcher.schedule(self)

    def _advance(self, execution: Execution) -> None:
        """Same result at a newer snapshot: move the timestamp, notify nobody."""
        with self._cond:
            if self._execution is not None and self._execution.frozen == execution.frozen:
                # Keep the decoded copy valid: nothing a reader could see has changed.
                self._execution = execution

    def _run_callbacks(self) -> None:
        with self._cond:
            if self.closed or self._version == self._delivered_version:
                return
            self._delivered_version = self._version
            execution = self._execution
        try:
            if execution is None:
                return
            if execution.error is not None:
                if self.on_error is not None:
                    self.on_error(execution.error)
            elif self.on_update is not None:
                self.on_update(self.value)
        except Exception:  # a failing callback must not kill the dispatcher
            print(f"Exception in a subscription callback for {self.path}:", file=sys.stderr)
            traceback.print_exc(file=sys.stderr)

    # -- waiting ----------------------------------------------------------------------------
    def _current(self) -> tuple[int, Any]:
        with self._cond:
            version, execution = self._version, self._execution
        if execution is not None and execution.error is not None:
            raise execution.error
        return version, self.value

    def wait_for_update(self, after_version: int, timeout: float | None = None) -> bool:
        """Block until the version passes ``after_version`` (or the subscription closes)."""
        with self._cond:
            return self._cond.wait_for(lambda: self._version > after_version or self.closed, timeout)

    def __iter__(self) -> Iterator[Any]:
        seen = -1
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._version > seen or self.closed)
                if self._version <= seen:
                    return  # closed
            seen, value = self._current()
            yield value

    async def _aiter(self) -> AsyncIterator[Any]:
        loop = asyncio.get_running_loop()
        event = asyncio.Event()
        waiter = (loop, event)
        self._async_waiters.add(waiter)
        seen = -1
        try:
            while True:
                event.clear()
                if self._version > seen:
                    seen, value = self._current()
                    yield value
                    continue
                if self.closed:
                    return
                await event.wait()
        finally:
            self._async_waiters.discard(waiter)

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._aiter()

    # -- closing ----------------------------------------------------------------------------
    def unsubscribe(self) -> None:
        """Stop receiving updates and free everything this subscription held."""
        if self.closed:
            return
        self._hub._unsubscribe(self)
        self._close_silently()

    close = unsubscribe

    def _close_silently(self) -> None:
        with self._cond:
            self.closed = True
            self._cond.notify_all()
            waiters = list(self._async_waiters)
        for loop, event in waiters:
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:
                pass
        self.on_update = self.on_error = None

    def __enter__(self) -> "Subscription":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.unsubscribe()
