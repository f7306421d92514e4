"""The admin half of the deployment contract, written once over the deployment's own system
functions (``backend/system.py``).

Both sides inherit :class:`SystemCalls`: a ``Backend`` runs the system functions in process, the
remote client over ``/api/function`` with its admin key, so paging a table, clearing, editing
documents or listing scheduled functions is one implementation that behaves the same on both.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["SystemCalls"]

_ORDERS = ("asc", "desc")


class SystemCalls:
    """Contract members implemented by calling ``_system/`` functions through ``run``."""

    def run(self, target: Any, args: dict | None = None) -> Any:  # provided by the deployment
        raise NotImplementedError

    def _system_read(self, path: str, args: dict | None = None) -> Any:
        """A system query's answer (a remote client skips waiting for its subscriptions)."""
        return self.run(path, args or {})

    def table_page(self, table: str, *, cursor: str | None = None, num_items: int = 25, order: str = "asc") -> dict:
        """A ``paginate`` result of ``table`` in ``_creationTime`` order, at the latest snapshot
        (``{"page", "isDone", "continueCursor"}``); a table that does not exist is one empty page."""
        if order not in _ORDERS:
            raise ValueError(f"order is 'asc' or 'desc', got {order!r}")
        if isinstance(num_items, bool) or not isinstance(num_items, int) or num_items < 1:
            raise ValueError(f"num_items must be a positive integer, got {num_items!r}")
        return dict(self._system_read("_system/cli/tableData", {
            "table": table, "order": order, "paginationOpts": {"numItems": num_items, "cursor": cursor},
        }))

    def clear_tables(self) -> int:
        """Delete every document of every table in one exclusive transaction (functions and
        schema stay); returns how many."""
        return int(self.run("_system/cli/clearTables"))

    def clear_table(self, table: str) -> int:
        """Delete every document of ``table`` in one exclusive transaction; returns how many."""
        return int(self.run("_system/cli/clearTable", {"table": table}))

    def delete_documents(self, ids: Sequence[str]) -> int:
        """Delete documents by id, all in one transaction; returns how many existed."""
        return int(self.run("_system/frontend/deleteDocuments", {"ids": list(ids)}))

    def replace_document(self, doc_id: str, fields: dict) -> None:
        """Replace a document's fields (its id and creation time stay), validated by the schema."""
        self.run("_system/frontend/replaceDocument", {"id": doc_id, "document": fields})

    def cancel_scheduled(self, job_id: str) -> None:
        """Cancel a pending scheduled function."""
        self.run("_system/frontend/cancelJob", {"id": job_id})

    def scheduled_functions(self, limit: int = 50) -> list[dict]:
        """The newest documents of ``_scheduled_functions``, newest first."""
        return list(self._system_read("_system/frontend/scheduledJobs", {"limit": limit}))

    def stored_files(self, limit: int = 50) -> list[dict]:
        """The newest documents of ``_storage``, newest first."""
        return list(self._system_read("_system/frontend/storedFiles", {"limit": limit}))

    def cron_jobs(self) -> list[dict]:
        """The cron jobs: ``{"name", "schedule", "function", "nextRun" (ms or None), "runs"}``."""
        return list(self._system_read("_system/frontend/cronJobs"))
