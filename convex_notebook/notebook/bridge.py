"""``KernelBridge``: the one way subscription updates reach widgets.

Subscription callbacks run on the engine's dispatcher thread; widget state (traits, comms)
must only be touched on the kernel's main thread, between or around cell executions. The
bridge sits in between:

* **thread-safe**: any thread may call :meth:`KernelBridge.post` (it only takes a lock,
  records the target and maybe wakes the kernel loop with ``call_soon_threadsafe``);
* **coalesced**: a target posted many times before the next flush is applied once, and it
  pulls its *latest* state when applied (latest wins);
* **throttled**: flushes are at least ``1 / throttle_hz`` seconds apart, so a write per
  millisecond produces a steady ~``throttle_hz`` widget updates per second, not thousands.

Inside a Jupyter kernel the flush runs on the kernel's IO loop (``kernel.io_loop``), so
updates render while the kernel is idle or while a cell ``await``\\ s; a cell that blocks
(``time.sleep``) delays them until it yields. Outside a kernel (scripts, tests) nothing runs
by itself: call :meth:`flush` (``LiveQuery.wait_for`` does).

A target is anything with an ``_apply_update()`` method (called on the loop's thread) and
hashable identity; widgets apply their state inside ``hold_sync()`` so each flush sends one
comm message per widget.
"""

from __future__ import annotations

import asyncio
import threading
import time
import weakref
from typing import Any, Protocol

__all__ = ["BridgeStats", "KernelBridge", "get_bridge", "set_bridge"]


class BridgeTarget(Protocol):
    def _apply_update(self) -> None: ...


class BridgeStats:
    """Counters for tests and benchmarks."""

    def __init__(self) -> None:
        self.posts = 0  # post() calls (one per subscription callback)
        self.flushes = 0  # flushes that applied at least one target
        self.applied = 0  # target applications (<= posts: the rest were coalesced)

    def snapshot(self) -> dict[str, int]:
        return {"posts": self.posts, "flushes": self.flushes, "applied": self.applied}

    def __repr__(self) -> str:
        return f"BridgeStats({self.snapshot()})"


def _kernel_loop() -> asyncio.AbstractEventLoop | None:
    """The running kernel's main (IO) loop, when we are inside ipykernel."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython is a dependency
        return None
    shell = get_ipython()
    kernel = getattr(shell, "kernel", None) if shell is not None else None
    io_loop = getattr(kernel, "io_loop", None)
    loop = getattr(io_loop, "asyncio_loop", None)
    if isinstance(loop, asyncio.AbstractEventLoop) and not loop.is_closed():
        return loop
    return None


class KernelBridge:
    """Marshals widget updates from any thread into one event loop (see module docstring).

    ``loop=None`` means manual mode: updates wait for :meth:`flush`.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None, *, throttle_hz: float = 20.0) -> None:
        self.loop = loop
        self.throttle_hz = throttle_hz
        self.stats = BridgeStats()
        self._lock = threading.Lock()
        self._pending: dict[int, weakref.ReferenceType[Any] | Any] = {}
        self._scheduled = False
        self._last_flush = 0.0
        self._closed = False

    def __repr__(self) -> str:
        mode = "kernel loop" if self.loop is not None else "manual"
        return f"<KernelBridge {mode}, {self.throttle_hz:g} Hz, {len(self._pending)} pending>"

    @property
    def interval(self) -> float:
        return 1.0 / self.throttle_hz if self.throttle_hz and self.throttle_hz > 0 else 0.0

    # -- any thread -------------------------------------------------------------------------
    def post(self, target: BridgeTarget) -> None:
        """Mark ``target`` dirty; it will be applied (once) at the next flush."""
        with self._lock:
            self.stats.posts += 1
            if self._closed:
                return
            try:
                ref: Any = weakref.ref(target)
            except TypeError:
                ref = target
            self._pending[id(target)] = ref
            if self._scheduled or self.loop is None:
                return
            self._scheduled = True
            loop = self.loop
        try:
            loop.call_soon_threadsafe(self._arm)
        except RuntimeError:  # the loop is closed (kernel shutting down)
            with self._lock:
                self._scheduled = False

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._pending)

    # -- the loop's thread ------------------------------------------------------------------
    def _arm(self) -> None:
        """Runs on the loop: flush now, or when the throttle interval has passed."""
        delay = self._last_flush + self.interval - time.monotonic()
        if delay <= 0:
            self._flush_scheduled()
        else:
            assert self.loop is not None
            self.loop.call_later(delay, self._flush_scheduled)

    def _flush_scheduled(self) -> None:
        with self._lock:
            self._scheduled = False
        self.flush()

    def flush(self) -> int:
        """Apply every pending target now (on the calling thread); returns how many."""
        with self._lock:
            pending, self._pending = self._pending, {}
        applied = 0
        for ref in pending.values():
            target = ref() if isinstance(ref, weakref.ReferenceType) else ref
            if target is None:
                continue
            try:
                target._apply_update()
            except Exception:  # noqa: BLE001 - one broken widget must not stop the others
                import traceback

                traceback.print_exc()
            applied += 1
        if applied:
            self._last_flush = time.monotonic()
            with self._lock:
                self.stats.flushes += 1
                self.stats.applied += applied
        return applied

    def discard(self, target: Any) -> None:
        """Forget a pending update of ``target`` (it is being closed)."""
        with self._lock:
            self._pending.pop(id(target), None)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._pending.clear()


_bridge: KernelBridge | None = None
_bridge_lock = threading.Lock()


def get_bridge() -> KernelBridge:
    """The process's bridge: bound to the kernel loop inside Jupyter, manual elsewhere.

    A manual bridge is upgraded in place once a kernel loop becomes visible (for example when
    the first widget is made from a cell rather than at import time).
    """
    global _bridge
    with _bridge_lock:
        if _bridge is None:
            _bridge = KernelBridge(_kernel_loop())
        elif _bridge.loop is None or _bridge.loop.is_closed():
            loop = _kernel_loop()
            if loop is not None:
                _bridge.loop = loop
        return _bridge


def set_bridge(bridge: KernelBridge | None) -> KernelBridge | None:
    """Install another bridge (tests, benchmarks); returns the previous one."""
    global _bridge
    with _bridge_lock:
        previous, _bridge = _bridge, bridge
        return previous
