"""The deployment contract: what a deployment offers, embedded or remote.

``cn.Backend`` (this package) implements it natively; the remote client
(``convex_notebook.server.client.DeploymentClient``) implements it over Convex's wire protocol
and the deployment's admin API. Everything above (magics, widgets, the dashboard, DataFrames,
the command line) is written once against :class:`Deployment` and never asks which one it has.

    def document_count(app: Deployment) -> int:
        return sum(app.count(table) for table in app.table_names())

Admin members (tables, documents, logs, env, deploys...) need a remote deployment's admin key:
without it they raise ``PermissionError`` naming it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from ..engine.handles import LiveHandle
    from ..values.validators import Validator
    from .app import Invocation
    from .logs import LogBook, LogEntry

__all__ = ["DeployedModule", "Deployment", "FunctionInfo", "TableBatch", "Unsubscribe"]

Unsubscribe = Callable[[], None]  # returned by on_log / on_commit: stop listening


class FunctionInfo(Protocol):
    """A function of a deployment, as ``functions()`` lists it."""

    @property
    def path(self) -> str: ...
    @property
    def kind(self) -> str: ...  # "query" | "mutation" | "action"
    @property
    def visibility(self) -> str: ...  # "public" | "internal"
    @property
    def args(self) -> Validator | None: ...  # None: unvalidated


@dataclass
class DeployedModule:
    """What ``deploy_module`` did: the module's functions as ``(path, kind)``, the paths a
    previous deploy of the module had and this one lacks (removed), and how many live queries
    re-ran because of it."""

    name: str
    functions: list[tuple[str, str]] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    reruns: int = 0


@dataclass
class TableBatch:
    """Documents of a table as ``read_table`` yields them, in ``_creationTime`` order.

    Either decoded ``documents``, or (an embedded deployment's fast path, read joined by
    SQLite) ``json``: the documents as one JSON array's items, ``plain``: per document "1"
    when that JSON is the value as is ("0": Convex's encoded JSON, ``$integer``...),
    ``ids``: comma-separated ids and ``times``: 8 bytes of ``_creationTime`` order key each.
    """

    documents: list[dict] | None = None
    json: str = ""
    plain: str = ""
    ids: str = ""
    times: bytes = b""


@runtime_checkable
class Deployment(Protocol):
    """A Convex deployment: calling and subscribing (API.md §3), plus the data and admin
    primitives the notebook layer and the command line use."""

    # -- where -----------------------------------------------------------------------------
    @property
    def location(self) -> str:
        """``memory://``, ``sqlite:///path`` or the served URL."""
        ...

    # -- calling (the official clients' names) ---------------------------------------------
    def query(self, target: Any, args: dict | None = None, *, at: Any = None) -> Any: ...
    def mutation(self, target: Any, args: dict | None = None) -> Any: ...
    def action(self, target: Any, args: dict | None = None) -> Any: ...
    def run(self, target: Any, args: dict | None = None) -> Any:
        """Admin call: any function, internal and ``_system/`` ones too."""
        ...

    def invoke(self, target: Any, args: Any = None, *, kind: str | None = None, admin: bool = False,
               at: int | None = None) -> Invocation:
        """Run a function and report (value or error, log lines, timestamp) instead of raising."""
        ...

    async def query_async(self, target: Any, args: dict | None = None) -> Any: ...
    async def mutation_async(self, target: Any, args: dict | None = None) -> Any: ...
    async def action_async(self, target: Any, args: dict | None = None) -> Any: ...
    async def run_async(self, target: Any, args: dict | None = None) -> Any: ...

    def subscribe(
        self, target: Any, args: dict | None = None, *,
        on_update: Callable[[Any], Any] | None = None, on_error: Callable[[BaseException], Any] | None = None,
    ) -> LiveHandle: ...

    def with_identity(self, identity: dict | None) -> Deployment:
        """The same deployment, calling as this signed-in user (None: anonymous)."""
        ...

    def wait_for_callbacks(self, timeout: float | None = 10.0) -> bool: ...
    @property
    def subscription_count(self) -> int:
        """How many live subscriptions this deployment object holds."""
        ...
    def close(self) -> None: ...

    # -- tables and documents --------------------------------------------------------------
    def table_names(self) -> list[str]: ...
    def count(self, table: str) -> int: ...
    def table_page(self, table: str, *, cursor: str | None = None, num_items: int = 25, order: str = "asc") -> dict:
        """One ``paginate`` result of ``table`` in ``_creationTime`` order, latest snapshot."""
        ...

    def documents(self, table: str, *, at: Any = None) -> list[dict]:
        """Every document of ``table``, one snapshot (``at``: the one then)."""
        ...

    def read_table(self, table: str, *, at: Any = None) -> Iterator[TableBatch]:
        """Every document of ``table`` in batches, one snapshot (what ``df`` reads)."""
        ...

    def latest_ts(self) -> int: ...
    def timestamp(self, at: Any) -> int:
        """A commit timestamp from ``at``: an int, a datetime, or a timedelta ago."""
        ...

    # -- writes an admin makes -------------------------------------------------------------
    def clear_tables(self) -> int:
        """Delete every document of every table in one transaction; returns how many."""
        ...

    def clear_table(self, table: str) -> int: ...
    def delete_documents(self, ids: Sequence[str]) -> int: ...
    def replace_document(self, doc_id: str, fields: dict) -> None: ...
    def import_columns(
        self, table: str, names: Sequence[str], columns: Sequence[list[Any]], n: int, *, mode: str = "insert",
        keep_ids: bool = False, atomic: bool = True, batch_size: int = 50_000,
        progress: Callable[[int], Any] | None = None,
    ) -> int:
        """Insert ``n`` rows given as columns (``MISSING``: a field the row lacks)."""
        ...

    def import_table(self, table: str, path: Any, **options: Any) -> int: ...
    def export_table(self, table: str, path: Any, **options: Any) -> int: ...
    def import_snapshot(self, path: Any, **options: Any) -> dict[str, int]: ...
    def export_snapshot(self, path: Any, **options: Any) -> str: ...

    # -- functions, scheduling, storage -----------------------------------------------------
    def functions(self) -> Sequence[FunctionInfo]: ...
    def deploy_module(self, name: str, source: str, *, namespace: dict | None = None,
                      replace: bool = True) -> DeployedModule:
        """Deploy Python source as module ``name`` (``%%convex_module``), replacing what an
        earlier deploy of it defined. ``namespace``: extra globals, for an embedded
        deployment only (a remote one runs the source on the server)."""
        ...

    def deploy_folder(self, path: str, *, force: bool = False) -> Any:
        """Deploy a functions folder (``convex/``: modules, schema, crons, HTTP routes, auth) or
        one ``.py`` file into this process (``%convex deploy``); a later call deploys only
        what changed. Returns the ``project.DeployReport``. A remote deployment raises
        ``NotImplementedError`` (its server deploys folders: ``convex-notebook dev``)."""
        ...

    def remove_functions(self, paths: Sequence[str]) -> list[str]: ...
    def scheduled_functions(self, limit: int = 50) -> list[dict]: ...
    def cancel_scheduled(self, job_id: str) -> None: ...
    def cron_jobs(self) -> list[dict]: ...
    def stored_files(self, limit: int = 50) -> list[dict]: ...

    # -- logs, commits, environment ----------------------------------------------------------
    @property
    def logs(self) -> LogBook: ...
    def on_log(self, listener: Callable[[LogEntry], Any]) -> Unsubscribe:
        """Call ``listener(entry)`` for each new function execution (on a background thread)."""
        ...

    def on_commit(self, listener: Callable[[int], Any], *, poll_interval: float = 1.0) -> Unsubscribe:
        """Call ``listener(ts)`` after commits (a remote deployment is asked every
        ``poll_interval`` seconds; an embedded one tells at once)."""
        ...

    @property
    def env(self) -> MutableMapping[str, str]: ...

    # -- attached by the notebook layer (pandas, widgets) ------------------------------------
    def df(self, source: Any, args: dict | None = None, *, index: str | None = None, at: Any = None) -> Any: ...
    def import_dataframe(self, table: str, df: Any, mode: str = "insert", **options: Any) -> int: ...
    def live(self, target: Any, args: dict | None = None, **options: Any) -> Any: ...
