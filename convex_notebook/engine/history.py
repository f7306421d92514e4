"""History: reading the database as it was, and forgetting what is older than the window.

The store keeps every document's current version with the timestamp of the commit that wrote
it, and for every later write the version it replaced (``revisions``, an undo log). The state
at a retained timestamp T is therefore

* the current versions written at or before T (a ``ts <= T`` filter on the store's reads), and
* the replaced versions that were current at T: those whose ``prev_ts <= T < ts``,

which never overlap. A read at T lays the second set over the first (``engine.overlay``), so
every query, index range and pagination works unchanged in the past.

History is kept for a window (``cn.Backend(history=...)``, an hour by default): each commit
forgets a bounded number of write-log rows older than it, so the cost per write stays bounded
and the log stays about one window long. The oldest readable time is persisted (``meta``), so
a file reopened after a restart reads back exactly as far.
"""

from __future__ import annotations

import datetime as _dt
import threading
from collections import OrderedDict
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from .overlay import TableOverlay
from .stored import load_row
from .transaction import DatabaseError

if TYPE_CHECKING:
    from ..store.sqlite import StoreReads
    from .database import Database

__all__ = ["History", "HistoryError", "format_ts", "versions_at"]


class HistoryError(DatabaseError):
    """A timestamp outside the history the database keeps."""


def format_ts(ts: int) -> str:
    """A timestamp (ns) as an ISO time in UTC, for messages; one no calendar can spell (a
    client may send any integer) says so instead of failing the message that names it."""
    try:
        when = _dt.datetime.fromtimestamp(ts / 1e9, tz=_dt.UTC)
    except (OverflowError, OSError, ValueError):
        return "out of the calendar's range"
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class History:
    """The readable range of one database and its retention (see module docstring)."""

    def __init__(self, db: Database, window_ns: int) -> None:
        if window_ns < 0:
            raise ValueError("history must be a non-negative duration")
        self.db = db
        self.window_ns = int(window_ns)
        store = db.store
        saved = store.get_meta("history_from")
        if saved is None:
            # History starts now: a new file, or one written before history was kept.
            self.started = db.last_ts
            store.set_meta("history_from", str(self.started))
        else:
            self.started = int(saved)
        self._oldest = store.oldest_revision_ts()
        self._overlays: OrderedDict[tuple[int, int, int], TableOverlay] = OrderedDict()
        self._overlays_lock = threading.Lock()

    def versions_at(self, source: StoreReads, ts: int, table_number: int, snapshot_ts: int) -> TableOverlay:
        """``versions_at`` of one table, shared by the reads of the same past time from the
        same snapshot (a notebook asks the past the same question again and again). The
        overlays are read-only: time travel never writes."""
        key = (table_number, ts, snapshot_ts)
        cache = self._overlays
        with self._overlays_lock:
            overlay = cache.get(key)
            if overlay is not None:
                cache.move_to_end(key)
                return overlay
        overlay = versions_at(source, ts, table_number)
        with self._overlays_lock:
            cache[key] = overlay
            while len(cache) > 16:
                cache.popitem(last=False)
        return overlay

    def oldest_readable(self) -> int:
        """The oldest timestamp a read may ask for."""
        return max(self.started, self.db.clock_ns() - self.window_ns)

    def check_readable(self, ts: Any, latest: int) -> int | None:
        """The timestamp to read at (None: the latest snapshot), or HistoryError naming the
        readable range."""
        if isinstance(ts, bool) or not isinstance(ts, int):
            raise HistoryError(f"A timestamp must be an int (nanoseconds since the epoch), got {ts!r}")
        oldest = min(self.oldest_readable(), latest)
        # Up to the clock's now, the state is the latest commit's (nothing came since).
        now = max(latest, self.db.clock_ns())
        if ts > now:
            raise HistoryError(
                f"Timestamp {ts} ({format_ts(ts)}) is in the future: the latest commit is {latest} "
                f"({format_ts(latest)}); readable: {format_ts(oldest)} to {format_ts(now)}"
            )
        if ts < oldest:
            raise HistoryError(
                f"Timestamp {ts} ({format_ts(ts)}) is older than the history kept "
                f"(history={_dt.timedelta(microseconds=self.window_ns // 1000)}): "
                f"readable from {oldest} ({format_ts(oldest)}) to {latest} ({format_ts(latest)})"
            )
        return None if ts >= latest else ts

    def due(self, ts: int, written: int) -> bool:
        """Whether a commit at ``ts`` has history to forget (cheap: most commits do not)."""
        oldest = self._oldest
        if oldest is None:
            if written:
                self._oldest = ts
            return False
        return oldest < ts - self.window_ns and oldest < self.db.clock_ns() - self.window_ns

    def compact(self, ts: int, written: int) -> None:
        """Inside a commit at ``ts`` for which ``due`` said so: forget up to about twice as
        many expired write-log rows as the commit writes (a bounded cost per write)."""
        cutoff = min(self.db.clock_ns() - self.window_ns, ts)
        store = self.db.store
        store.compact_revisions(cutoff, 2 * written + 64)
        self._oldest = store.oldest_revision_ts() or (ts if written else None)
        # Reads may not go back past what was forgotten, even after a restart.
        if cutoff > self.started:
            self.started = cutoff
            store.set_meta("history_from", str(cutoff))


def versions_at(source: StoreReads, ts: int, table_number: int) -> TableOverlay:
    """The overlay of one table at ``ts``: the versions current then that were replaced or
    deleted since (see module docstring)."""
    overlay = TableOverlay(table_number)
    for _table, key, _prev_ts, text, plain in source.versions_replaced_after(ts, table_number):
        if text is None:  # (an insert's row: there was no version before)
            continue
        overlay.set(key, load_row(key, text, plain), text, plain)
    return overlay


def document_deltas(
    source: StoreReads, after: int, upto: int, limit: int, table_number: int | None = None
) -> tuple[list[tuple[int, int, bytes, dict | None]], int, bool]:
    """Convex's streaming export: the document revisions with ``after < ts <= upto``, oldest
    first, as ``(ts, table_number, storage key, document or None if deleted)``, with the
    cursor to continue from and whether more remain. A page never splits a commit."""
    out: list[tuple[int, int, bytes, dict | None]] = []
    cursor = after
    limit = max(1, limit)
    rows = source.revisions_between(after, upto, limit + 1, table_number)
    has_more = len(rows) > limit
    if has_more:
        boundary = rows[limit][0]  # the first commit that does not fit whole
        rows = [r for r in rows if r[0] < boundary]
        if not rows:  # one commit larger than a page: it comes whole
            rows = source.revisions_between(boundary - 1, boundary, 1 << 62, table_number)
    for ts, number, key, _prev_ts, _prev, _plain, deleted, key_hi in rows:
        if key_hi is not None:  # a bulk insert: its documents as they were written
            for doc_key, doc in _batch_versions(source, number, key, key_hi, ts):
                out.append((ts, number, doc_key, doc))
        elif deleted:
            out.append((ts, number, key, None))
        else:
            out.append((ts, number, key, _version_after(source, number, key, ts)))
        cursor = ts
    if not has_more:
        cursor = max(cursor, upto)
    return out, cursor, has_more


def _version_after(source: StoreReads, number: int, key: bytes, ts: int) -> dict | None:
    """The version of a document that a write at ``ts`` made: what the next write replaced,
    or the current version."""
    nxt = source.next_revision(number, key, ts)
    if nxt is not None:
        _next_ts, text, plain = nxt
        return load_row(key, text, plain or 0) if text is not None else None
    row = source.get_document(number, key)
    return load_row(key, *row) if row is not None else None


def _batch_versions(
    source: StoreReads, number: int, lo: bytes, hi: bytes, ts: int
) -> Iterator[tuple[bytes, dict]]:
    """The documents a bulk insert at ``ts`` wrote in ``[lo, hi]``, as written, in key order."""
    found = {key: (text, plain) for key, text, plain in source.batch_documents(number, lo, hi, ts)}
    for key, text, plain in source.batch_rewritten(number, lo, hi, ts):
        if text is not None:
            found[key] = (text, plain)
    for key in sorted(found):
        text, plain = found[key]
        yield key, load_row(key, text, plain)
