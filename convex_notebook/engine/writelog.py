"""The recent commits' write sets, in timestamp order: what validates optimistic commits.

A mutation reads a snapshot at ``ts`` and records its read set; at commit, every write set
committed after ``ts`` is checked against it (Convex's OCC). The same write sets drive
reactivity (``SubscriptionHub.on_commit``) and the freshness check of cached query results.
The log is bounded: a snapshot older than what it still holds cannot be validated, and its
transaction is retried on a fresh one.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

from .readset import ReadSet, WriteSet

__all__ = ["Conflict", "WriteLog"]


@dataclass(frozen=True)
class Conflict:
    """Why a snapshot's reads are stale: the commit that wrote into them (None: the snapshot
    is older than the log remembers) and the table it wrote."""

    ts: int | None
    table: str | None
    document_id: str | None = None  # a document of ``table`` that commit wrote


class WriteLog:
    """``(ts, WriteSet)`` of recent commits (appended by the committer, read by anyone)."""

    def __init__(self, max_entries: int = 50_000, max_age_ns: int = 300 * 10**9) -> None:
        self._entries: deque[tuple[int, WriteSet]] = deque()
        self._lock = threading.Lock()
        self.max_entries = max_entries
        self.max_age_ns = max_age_ns
        self.horizon = 0  # snapshots older than this can no longer be validated

    def append(self, ts: int, writes: WriteSet) -> None:
        with self._lock:
            entries = self._entries
            entries.append((ts, writes))
            if len(entries) > self.max_entries or entries[0][0] < ts - self.max_age_ns:
                while entries and (len(entries) > self.max_entries or entries[0][0] < ts - self.max_age_ns):
                    self.horizon = entries.popleft()[0]

    def after(self, ts: int) -> Iterator[tuple[int, WriteSet]]:
        """The commits after ``ts``, oldest first."""
        with self._lock:
            found = []
            for entry in reversed(self._entries):
                if entry[0] <= ts:
                    break
                found.append(entry)
        return reversed(found)

    def conflict(self, ts: int, reads: ReadSet) -> Conflict | None:
        """The first commit after ``ts`` that wrote something ``reads`` read, if any."""
        if ts < self.horizon:
            return Conflict(None, None)
        for commit_ts, writes in self.after(ts):
            if writes.everything:
                return Conflict(commit_ts, None)
            table = reads.first_intersection(writes)
            if table is not None:
                ids = writes.keys.get((table, "by_id"))
                doc_id = ids[0][1:-1].decode("ascii", "replace") if ids else None
                return Conflict(commit_ts, table, doc_id)
        return None
