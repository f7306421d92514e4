"""Running a mutation optimistically: re-run it when its commit conflicts (Convex's OCC).

A mutation reads a snapshot and buffers its writes; its commit fails with
:class:`~convex_notebook.engine.database.OccConflict` when a commit since its snapshot wrote
something it read. It is then re-run from the start on a fresh snapshot (mutations are
deterministic, so this is safe), after a short jittered pause that lets contenders spread
out, up to :data:`MAX_RETRIES` times; then the caller gets Convex's error naming the table.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

from ..engine.database import Database, OccConflict
from ..engine.transaction import Transaction
from ..errors import ConvexFunctionError

__all__ = ["MAX_RETRIES", "OccError", "run_optimistic"]

# Re-runs after the first attempt before giving up. Convex retries "a few times" with pauses
# from 100 ms; in a notebook, threads hammering one document are the common case, so the
# pauses start at a millisecond and double (jittered) up to 64 ms: contenders spread out and
# each gets through, and only a mutation that keeps losing for about a second fails.
MAX_RETRIES = 16
_BASE_PAUSE_S = 0.001
_MAX_PAUSE_S = 0.064


class OccError(ConvexFunctionError):
    """A mutation kept conflicting with other commits: Convex's
    ``OptimisticConcurrencyControlFailure``."""

    def __init__(self, message: str, table: str | None, retries: int = 0) -> None:
        super().__init__(message)
        self.table = table
        self.retries = retries  # how many times the mutation was re-run before giving up


def occ_message(conflict: OccConflict, path: str | None) -> str:
    """Convex's wording for a mutation that lost every retry."""
    info = conflict.conflict
    if info.table is None:
        return (
            "This mutation's snapshot is too old to validate (it ran for too long) on every retry"
            + (f" ({path})" if path else "")
        )
    text = (
        f'Documents read from or written to the table "{info.table}" changed while this mutation was '
        "being run and on every subsequent retry."
    )
    if info.document_id:
        text += f' Another call changed the document with ID "{info.document_id}".'
    return text


def run_optimistic(
    db: Database,
    body: Callable[[Transaction], Any],
    *,
    path: str | None = None,
    on_retry: Callable[[int], None] | None = None,
) -> tuple[Any, Transaction, int]:
    """``body(txn)`` in an optimistic transaction, committed; re-run on conflicts. Returns the
    result, the committed transaction and how many re-runs it took. ``on_retry(n)`` runs
    before the n-th re-run (e.g. to drop the failed attempt's log lines)."""
    retries = 0
    while True:
        try:
            with db.write() as txn:
                result = body(txn)
            return result, txn, retries
        except OccConflict as conflict:
            if retries >= MAX_RETRIES:
                raise OccError(occ_message(conflict, path), conflict.conflict.table, retries) from None
            retries += 1
            if on_retry is not None:
                on_retry(retries)
            time.sleep(random.uniform(0, min(_MAX_PAUSE_S, _BASE_PAUSE_S * 2 ** min(retries, 10))))
