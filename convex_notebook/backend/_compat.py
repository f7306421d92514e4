"""Helpers that work on both sides of the engine's MVCC rewrite (see the lead's branch):
an optimistic, retried write where ``backend/occ.py`` exists (a plain write transaction before
it), and file bytes written through the transaction where it buffers them."""

from __future__ import annotations

from typing import Any, Callable

__all__ = ["delete_file", "get_file", "put_file", "run_write"]


def run_write(backend: Any, body: Callable[[Any], Any]) -> Any:
    """``body(txn)`` in a write transaction, committed (re-run on conflicts where supported)."""
    try:
        from .occ import run_optimistic  # type: ignore[import-not-found]
    except ImportError:
        with backend.database.write() as txn:
            return body(txn)
    return run_optimistic(backend.database, body)[0]


def put_file(backend: Any, txn: Any, key: str, data: bytes) -> None:
    """Store bytes beside a document, as part of ``txn``."""
    (txn.put_file if hasattr(txn, "put_file") else backend.database.store.put_file)(key, data)


def get_file(backend: Any, txn: Any, key: str) -> bytes | None:
    return (txn.get_file if hasattr(txn, "get_file") else backend.database.store.get_file)(key)


def delete_file(backend: Any, txn: Any, key: str) -> None:
    (txn.delete_file if hasattr(txn, "delete_file") else backend.database.store.delete_file)(key)
