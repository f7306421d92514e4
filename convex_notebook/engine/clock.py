"""Clocks: wall time for real use, a virtual clock for tests and tutorials."""

from __future__ import annotations

import threading
import time

__all__ = ["Clock", "SystemClock", "VirtualClock"]


class Clock:
    """Milliseconds since the Unix epoch, as a float (Convex's ``Date.now()``)."""

    def now_ms(self) -> float:
        raise NotImplementedError


class SystemClock(Clock):
    def now_ms(self) -> float:
        return time.time_ns() / 1e6

    def __repr__(self) -> str:
        return "SystemClock()"


class VirtualClock(Clock):
    """Time that moves only when told: ``clock.advance(ms)`` or ``app.advance_time(ms)``."""

    def __init__(self, start_ms: float = 1_700_000_000_000.0) -> None:
        self._now = float(start_ms)
        self._lock = threading.Lock()

    def now_ms(self) -> float:
        return self._now

    def advance(self, ms: float) -> float:
        if ms < 0:
            raise ValueError("VirtualClock.advance() takes a non-negative number of milliseconds")
        with self._lock:
            self._now += float(ms)
            return self._now

    def set(self, now_ms: float) -> None:
        with self._lock:
            if now_ms < self._now:
                raise ValueError("VirtualClock cannot go backwards")
            self._now = float(now_ms)

    def __repr__(self) -> str:
        return f"VirtualClock(now_ms={self._now!r})"
