"""The reactive core: a query cache and live subscriptions kept current by read sets.

Every query execution records what it read (index ranges). Results are kept in one of two
places, both registered in a :class:`RangeIndex` under the ranges they read:

* **live queries**: the results somebody subscribed to. A commit that writes into their ranges
  re-runs them *inside the commit* (the committer waits for them, and they read exactly the
  committed snapshot), so when ``mutation()`` returns every subscription already holds the
  new value;
* **cached results** of one-shot calls (and of live queries nobody watches any more), in a
  bounded LRU. A commit into their ranges simply drops them.

Identical ``(function, args, identity)`` at the same snapshot therefore share one execution.
Executions run outside the hub's lock (queries run side by side); a result computed at a
snapshot that a later commit made stale is never kept: the write log tells (``_fresh``).
Results are stored frozen (pickled): each reader decodes its own copy, so nobody can mutate
what another caller holds, and "did it change?" is a byte comparison.

Callbacks never run on the committing thread: a dispatcher thread delivers them in commit
order, coalesced per subscription, so a slow callback only delays itself.

The hub knows nothing about functions: the backend hands it an *executor* that runs one
query at the current snapshot and reports an :class:`Execution`.
"""

from __future__ import annotations

import pickle
import sys
import threading
import traceback
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple, cast

from .handles import Dispatcher, LiveHandle
from .rangeindex import RangeIndex
from .readset import ReadSet, WriteSet
from .writelog import WriteLog

__all__ = ["Dispatcher", "Execution", "HubStats", "QueryKey", "Subscription", "SubscriptionHub", "freeze", "thaw"]

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
    def make(cls, path: str, args: dict, identity: dict | None) -> QueryKey:
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
    usage: dict[str, int] = field(default_factory=dict)  # what the execution read
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

    __slots__ = ("args", "execution", "identity", "key", "subscribers")

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
        write_log: WriteLog | None = None,
    ) -> None:
        self._lock = lock
        self._write_log = write_log
        self.ts = last_ts()  # the commit every live result reflects (under the lock)
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
        execution = self._run(path, args, identity, None)  # (outside the lock: side by side)
        if execution.error is None and execution.journal is None:
            with self._lock:
                if self._fresh(execution):
                    self._store(path, args, identity, execution)
        return execution.take_value(), execution, True

    def _fresh(self, execution: Execution) -> bool:
        """Whether no commit since the execution's snapshot wrote into what it read."""
        log = self._write_log
        return log is None or log.conflict(execution.ts, execution.reads) is None

    def _lookup(self, path: str, args: dict, identity: dict | None) -> Execution | None:
        shared = QueryKey.make(path, args, None)
        keys = [shared] if identity is None else [shared, shared._replace(identity=freeze(identity))]
        for key in keys:
            live = self._live.get(key)
            # An anonymous live result that read the identity is not another user's answer.
            if (
                live is not None and live.execution.error is None and live.execution.journal is None
                and not (key.identity is None and identity is not None and live.execution.reads.read_identity)
            ):
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
    ) -> Subscription:
        """A live subscription; its first value is computed (or found) before this returns."""
        key = QueryKey.make(path, args, identity)
        if journal is not None:
            # A resumed paginated query keeps its own pinned end: never share it.
            key = key._replace(path=f"{path}#{journal}")
        execution: Execution | None = None
        while True:
            with self._lock:
                live = self._live.get(key)
                if live is None and execution is None and journal is None:
                    execution = self._lookup(path, args, identity)
                    if execution is not None:
                        self.stats.cache_hits += 1
                if live is not None or execution is not None:
                    return self._join(key, args, identity, path, live, execution, on_update, on_error)
            # First run, outside the lock (other queries and commits go on meanwhile); a
            # commit since its snapshot that wrote what it read makes it run again.
            self.stats.cache_misses += 1
            execution = self._run_live(path, args, identity, journal)
            with self._lock:
                live = self._live.get(key)
                if live is not None or self._fresh(execution):
                    return self._join(key, args, identity, path, live, execution, on_update, on_error)
            execution = None

    def _join(
        self, key: QueryKey, args: dict, identity: dict | None, path: str, live: _LiveQuery | None,
        execution: Execution | None, on_update: Callable[[Any], Any] | None, on_error: Callable[[BaseException], Any] | None,
    ) -> Subscription:
        """Under the lock: a subscription to the live query ``key`` (made live from
        ``execution`` if nobody watches it yet)."""
        if live is None:
            assert execution is not None
            self._drop_cached(key)
            live = self._live[key] = _LiveQuery(key, args, identity, execution)
            self._watch(("live", key), execution)
        sub = Subscription(self, key, path, on_update, on_error)
        live.subscribers.add(sub)
        sub._publish(live.execution, initial=True)
        return sub

    def _unsubscribe(self, sub: Subscription) -> None:
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
    def reflects(self, ts: int) -> None:
        """Live results hold at ``ts`` too: no commit came between theirs and it (a client's
        observed timestamp the database moved its clock past)."""
        with self._lock:
            self.ts = max(self.ts, ts)

    @property
    def lock(self) -> threading.RLock:
        """Held while live results change: under it they are all at ``self.ts``."""
        return self._lock

    def on_commit(self, writes: WriteSet, ts: int) -> None:
        """Commit listener (called by the committer right after a commit, in commit order)."""
        with self._lock:
            self.ts = ts
            if getattr(writes, "everything", False):
                owners = {("live", k) for k in self._live} | {("cache", k) for k in self._cache}
            else:
                owners = cast("set[tuple[str, QueryKey]]", self._ranges.affected(writes))  # our owners
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

    def _invalidate(self, owners: set[tuple[str, QueryKey]]) -> None:
        stale: list[_LiveQuery] = []
        for kind, key in owners:
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
        except Exception as exc:  # noqa: BLE001 - an executor bug must not break the commit that triggered us
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


class Subscription(LiveHandle):
    """A live query result: ``.value``, ``.error``, iteration over new values, ``unsubscribe()``.

    ``for value in sub`` yields the current value, then each new one (blocking; values that
    arrive faster than the loop consumes them are coalesced to the latest). ``async for``
    does the same without blocking the event loop. Either raises the query's error if it
    fails. Callbacks (``on_update(value)``, ``on_error(exc)``) run on the dispatcher thread.
    Its results are the hub's :class:`Execution` objects (values frozen).
    """

    def __init__(
        self,
        hub: SubscriptionHub,
        key: QueryKey,
        path: str,
        on_update: Callable[[Any], Any] | None,
        on_error: Callable[[BaseException], Any] | None,
    ) -> None:
        super().__init__(path, hub.dispatcher, on_update, on_error)
        self._hub = hub
        self.key = key

    def _decode(self, result: Execution) -> Any:
        assert result.frozen is not None  # only good results are decoded
        return thaw(result.frozen)

    def _is_good(self, result: Execution) -> bool:
        return result.frozen is not None

    def _release(self) -> None:
        self._hub._unsubscribe(self)

    def _advance(self, execution: Execution) -> None:
        """Same result at a newer snapshot (called by the hub): move the timestamp, notify nobody."""
        with self._cond:
            if self._result is not None and self._result.frozen == execution.frozen:
                if self._good is self._result:
                    self._good = execution  # same frozen value: the decoded copy stays valid
                self._result = execution
