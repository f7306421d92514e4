"""Timestamps as users give them: ``latest_ts()`` numbers, datetimes, or "that long ago"."""

from __future__ import annotations

import datetime as _dt
import operator
from typing import Any

from ..engine.history import HistoryError

__all__ = ["to_timestamp"]


def to_timestamp(at: Any, now_ns: int) -> int:
    """A commit timestamp (ns since the epoch) from an ``int`` timestamp, a ``datetime``
    (naive: UTC) or a ``timedelta`` meaning that long before ``now_ns`` (the deployment's
    clock: ``Database.clock_ns()`` embedded, this machine's clock for a remote one)."""
    if isinstance(at, bool):
        raise HistoryError(f"at= takes a timestamp, a datetime or a timedelta, got {at!r}")
    if isinstance(at, int):
        return at
    if isinstance(at, _dt.timedelta):
        if at < _dt.timedelta(0):
            raise HistoryError(f"at= takes a timedelta into the past (non-negative), got {at!r}")
        return now_ns - int(at.total_seconds() * 1e9)
    if isinstance(at, _dt.datetime):
        if at.tzinfo is None:
            at = at.replace(tzinfo=_dt.UTC)
        return int(at.timestamp() * 1e9)
    if hasattr(type(at), "__index__"):  # another integer type: a timestamp read from a DataFrame (numpy.int64)
        try:
            return operator.index(at)
        except TypeError:  # (numpy.bool_ has __index__ only to refuse it)
            pass
    raise HistoryError(f"at= takes a timestamp (int), a datetime or a timedelta, got {type(at).__name__}")
