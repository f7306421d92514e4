"""What every subscription handle shares, local (the hub's) or remote (a server's).

A handle holds the latest *result* of a live query, whatever produced it: an object with
``error``, ``ts``, ``journal`` and ``log_lines``, whose value a subclass decodes on demand
(:meth:`LiveHandle._decode`). On top of it, one implementation of ``.value`` (the latest good
result, a private copy per version), versions, blocking and ``async`` iteration, waiting,
closing, and callbacks delivered by a :class:`Dispatcher` thread, in order and coalesced.
"""

from __future__ import annotations

import asyncio
import functools
import sys
import threading
import traceback
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, Self

__all__ = ["Dispatcher", "LiveHandle"]


class Dispatcher:
    """One thread that runs subscription callbacks in publication order, coalesced per handle:
    a handle queued once delivers its latest value when its turn comes."""

    def __init__(self, thread_name: str = "convex-subscriptions") -> None:
        self._queue: deque[LiveHandle] = deque()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._thread_name = thread_name
        self._running = 0  # callbacks in progress
        self._stopped = False

    def schedule(self, handle: LiveHandle) -> None:
        with self._cond:
            if handle._callback_pending or self._stopped:
                return  # already queued
            handle._callback_pending = True
            self._queue.append(handle)
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name=self._thread_name, daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._stopped:
                    self._cond.wait()
                if self._stopped:
                    return
                handle = self._queue.popleft()
                handle._callback_pending = False
                self._running += 1
            try:
                handle._run_callbacks()
            finally:
                with self._cond:
                    self._running -= 1
                    self._cond.notify_all()

    def drain(self, timeout: float | None) -> bool:
        """Block until every callback scheduled so far has run (True unless timed out)."""
        if self._thread is threading.current_thread():
            return not self._queue
        with self._cond:
            return self._cond.wait_for(lambda: not self._queue and not self._running, timeout)

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._queue.clear()
            self._cond.notify_all()


class LiveHandle:
    """A live query result: ``.value``, ``.error``, iteration over new values, ``unsubscribe()``.

    ``for value in sub`` yields the current value, then each new one (blocking; values that
    arrive faster than the loop consumes them are coalesced to the latest). ``async for``
    does the same without blocking the event loop. Either raises the query's error if it
    fails. Callbacks (``on_update(value)``, ``on_error(exc)``) run on the dispatcher thread.

    Subclasses say how a result's value is decoded (:meth:`_decode`), whether a result is a
    success (:meth:`_is_good`), and what unsubscribing releases (:meth:`_release`).
    """

    def __init__(
        self,
        path: str,
        dispatcher: Dispatcher,
        on_update: Callable[[Any], Any] | None,
        on_error: Callable[[BaseException], Any] | None,
    ) -> None:
        self.path = path
        self.on_update = on_update
        self.on_error = on_error
        self._dispatcher = dispatcher
        self._cond = threading.Condition()
        self._result: Any = None  # the latest result (None before the first)
        self._good: Any = None  # the latest successful one
        self._version = 0
        self._good_version = 0
        self._decoded: tuple[int, Any] | None = None  # (version, value) of the last decode
        self._delivered_version = 0
        self._callback_pending = False
        self._async_waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
        self.closed = False

    # -- what subclasses define --------------------------------------------------------------
    def _decode(self, result: Any) -> Any:
        """A fresh copy of a successful result's value."""
        raise NotImplementedError

    def _is_good(self, result: Any) -> bool:
        return result.error is None

    def _release(self) -> None:
        """Give back what the subscription holds (called once, by ``unsubscribe``)."""

    def __repr__(self) -> str:
        state = "closed" if self.closed else ("error" if self.error is not None else "live")
        return f"<{type(self).__name__} {self.path} {state} v{self._version}>"

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
            value = self._decode(good)
            self._decoded = (version, value)
            return value

    @property
    def error(self) -> BaseException | None:
        """The query's current error, or None when its latest run succeeded."""
        result = self._result
        return result.error if result is not None else None

    @property
    def ts(self) -> int:
        """The commit timestamp the current value reflects."""
        result = self._result
        return result.ts if result is not None else 0

    @property
    def version(self) -> int:
        """How many distinct results this subscription has seen (1 after subscribing)."""
        return self._version

    @property
    def journal(self) -> str | None:
        result = self._result
        return result.journal if result is not None else None

    @property
    def log_lines(self) -> list[str]:
        result = self._result
        return list(result.log_lines) if result is not None else []

    # -- publishing (by the hub or the client's loop) ------------------------------------------
    def _publish(self, result: Any, initial: bool = False) -> None:
        """A new result: wake the waiters, then schedule the callbacks (not for the first)."""
        with self._cond:
            if self.closed:
                return
            self._result = result
            self._version += 1
            if self._is_good(result):
                self._good, self._good_version = result, self._version
            if initial:
                self._delivered_version = self._version  # the caller gets it from .value
            self._cond.notify_all()
            waiters = list(self._async_waiters)
        self._wake(waiters, forget_closed=True)
        if not initial and (self.on_update is not None or self.on_error is not None):
            self._dispatcher.schedule(self)

    def _wake(self, waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]], forget_closed: bool) -> None:
        for loop, event in waiters:
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:  # that loop is closed
                if forget_closed:
                    self._async_waiters.discard((loop, event))

    def _run_callbacks(self) -> None:
        with self._cond:
            if self.closed or self._version == self._delivered_version:
                return
            self._delivered_version = self._version
            result = self._result
        try:
            if result is None:
                return
            if result.error is not None:
                if self.on_error is not None:
                    self.on_error(result.error)
            elif self.on_update is not None:
                self.on_update(self.value)
        except Exception:  # noqa: BLE001 - a failing callback must not kill the dispatcher
            print(f"Exception in a subscription callback for {self.path}:", file=sys.stderr)
            traceback.print_exc(file=sys.stderr)

    # -- waiting ----------------------------------------------------------------------------
    def _current(self) -> tuple[int, Any]:
        with self._cond:
            version, result = self._version, self._result
        if result is not None and result.error is not None:
            raise result.error
        return version, self.value

    def wait_for_update(self, after_version: int, timeout: float | None = None) -> bool:
        """Block until the version passes ``after_version`` (or the subscription closes)."""
        with self._cond:
            return self._cond.wait_for(lambda: self._version > after_version or self.closed, timeout)

    def _newer_than(self, version: int) -> bool:
        return self._version > version or self.closed

    def __iter__(self) -> Iterator[Any]:
        seen = -1
        while True:
            with self._cond:
                self._cond.wait_for(functools.partial(self._newer_than, seen))
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
        self._release()
        self._close_silently()

    def close(self) -> None:
        self.unsubscribe()

    def _close_silently(self) -> None:
        with self._cond:
            self.closed = True
            self._cond.notify_all()
            waiters = list(self._async_waiters)
        self._wake(waiters, forget_closed=False)
        self.on_update = self.on_error = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.unsubscribe()
