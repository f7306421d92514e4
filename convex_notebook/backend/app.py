"""``Backend``: the embedded deployment. Registers functions, calls them, owns the database.

    app = cn.Backend()                       # in memory
    @app.mutation(args={"text": v.string()})
    def add(ctx, text): return ctx.db.insert("tasks", {"text": text, "done": False})
    app.mutation("add", {"text": "hi"})
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import copy
import datetime
import difflib
import inspect
import json as _json
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Self

from ..engine.clock import Clock, VirtualClock
from ..engine.database import DEFAULT_HISTORY_NS, Database
from ..engine.subscriptions import (
    Execution,
    HubStats,
    Subscription,
    SubscriptionHub,
    freeze,
)
from ..engine.transaction import DatabaseError, Transaction
from ..errors import (
    ConvexError,
    ConvexFunctionError,
    InvalidValueError,
    ValidationError,
)
from ..values import MISSING, convex_value
from ..values._check import canonical_copy
from ..values.schema import SchemaDefinition
from . import logs, optional
from .admin_calls import SystemCalls
from .components import Component, ComponentRef, Components, make_ctx
from .context import InlineMutationCtx
from .contract import DeployedModule, TableBatch
from .env import Environment
from .http_actions import HttpRequest, HttpResponse, HttpRouter, run_http_action
from .limits import LimitError, Limits, check_size, near_limit_warnings, user_code
from .occ import OccError, run_optimistic
from .registry import (
    FunctionDef,
    FunctionNotFound,
    RegisteredFunction,
    Registry,
    make_definition,
)
from .scheduler import SchedulerRunner
from .system import is_system_path, lookup_system
from .timestamps import to_timestamp
from .vector_search import VectorSearch

__all__ = ["Backend", "Invocation", "Module", "connect"]

# Set while a query/mutation handler runs on this context: calling the public sync API from
# there would nest transactions, so it raises instead (use ctx.run_*).
_inside_transaction: contextvars.ContextVar[bool] = contextvars.ContextVar("convex_inside_txn", default=False)

# Per call: the timestamp a query reads at (``app.query(..., at=)``), what the call read and
# wrote (its log entry's usage), and the timestamp it saw (``invoke``).
_read_at: contextvars.ContextVar[int | None] = contextvars.ContextVar("convex_read_at", default=None)
_call_usage: contextvars.ContextVar[dict[str, int] | None] = contextvars.ContextVar("convex_usage", default=None)
_observed_ts: contextvars.ContextVar[int | None] = contextvars.ContextVar("convex_observed_ts", default=None)
_NO_USAGE = {
    "documents_read": 0, "bytes_read": 0, "index_ranges": 0,
    "documents_written": 0, "bytes_written": 0, "occ_retries": 0,
}


def _report(usage: dict[str, int], retries: int, ts: int | None) -> None:
    """Record a transaction's usage for the top-level call's log entry, and its timestamp."""
    total = _call_usage.get()
    if total is not None:
        if not total:
            total.update(usage)  # (the usual case: a call's only transaction)
        else:
            for key, n in usage.items():
                total[key] = total.get(key, 0) + n
        if retries:
            total["occ_retries"] = total.get("occ_retries", 0) + retries
    if ts is not None:
        _observed_ts.set(ts)


def _history_ns(history: Any) -> int:
    """``Backend(history=)`` in nanoseconds: a timedelta or seconds; None: the default."""
    if history is None:
        return DEFAULT_HISTORY_NS
    if isinstance(history, datetime.timedelta):
        seconds = history.total_seconds()
    elif isinstance(history, (int, float)) and not isinstance(history, bool):
        seconds = float(history)
    else:
        raise TypeError(f"history= takes a timedelta (or seconds), got {history!r}")
    if seconds < 0:
        raise ValueError(f"history= must not be negative, got {history!r}")
    return int(seconds * 1e9)


DEFAULT_ISSUER = "https://convex-notebook.local"
_UNSET: Any = object()


@dataclass
class Invocation:
    """What ``Backend.invoke`` reports about one call: made for servers, which must answer
    with the value or the error, the call's log lines and the commit timestamp."""

    path: str
    kind: str | None  # "query" | "mutation" | "action"; None when the function wasn't found
    value: Any = None
    error: BaseException | None = None
    log_lines: list[str] = field(default_factory=list)
    # Queries: the snapshot read; mutations: the commit (the previous one if nothing was
    # written); actions: the latest commit when it finished. Nanoseconds, never decreasing.
    ts: int = 0


_ASYNC_INLINE = (
    "app.run(fn) runs fn as an inline mutation: a plain `def` (a transaction is synchronous); "
    "for async work define an action and call app.action(...)"
)


class _Definer:
    """Shared decorator-or-call logic of ``Backend`` and ``Module``."""

    _module: str | None = None

    def _backend(self) -> Backend:
        raise NotImplementedError

    def _define_or_call(
        self, kind: str, internal: bool, target: Any, args: Any, name: str | None, returns: Any
    ) -> Any:
        backend = self._backend()
        if isinstance(target, (str, RegisteredFunction, ComponentRef)):
            if internal:
                raise TypeError(f"internal_{kind} is a decorator; call internal functions with app.run(...)")
            if isinstance(target, str) and self._module and ":" not in target:
                target = f"{self._module}:{target}"
            return backend._call(target, args, kind=kind, identity=backend._identity, admin=False, top=True)

        def decorate(fn: Callable[..., Any]) -> RegisteredFunction:
            definition = make_definition(
                kind, fn, internal=internal, name=name, module=self._module, args=args, returns=returns
            )
            return backend.registry.register(definition)

        if target is None:
            return decorate
        if callable(target):
            return decorate(target)
        raise TypeError(
            f"app.{kind}() takes a function path to call (app.{kind}('module:fn', args)) "
            f"or decorates a function (@app.{kind}), got {type(target).__name__}"
        )

    def query(self, target: Any = None, args: Any = None, *, name: str | None = None, returns: Any = None) -> Any:
        """Decorate a query (``@app.query(args=...)``) or call one (``app.query("m:f", args)``)."""
        return self._define_or_call("query", False, target, args, name, returns)

    def mutation(self, target: Any = None, args: Any = None, *, name: str | None = None, returns: Any = None) -> Any:
        """Decorate a mutation or call one; a call returns after the commit."""
        return self._define_or_call("mutation", False, target, args, name, returns)

    def action(self, target: Any = None, args: Any = None, *, name: str | None = None, returns: Any = None) -> Any:
        """Decorate an action (``def`` or ``async def``) or call one."""
        return self._define_or_call("action", False, target, args, name, returns)

    def internal_query(self, target: Any = None, *, args: Any = None, name: str | None = None, returns: Any = None) -> Any:
        return self._define_or_call("query", True, target, args, name, returns)

    def internal_mutation(self, target: Any = None, *, args: Any = None, name: str | None = None, returns: Any = None) -> Any:
        return self._define_or_call("mutation", True, target, args, name, returns)

    def internal_action(self, target: Any = None, *, args: Any = None, name: str | None = None, returns: Any = None) -> Any:
        return self._define_or_call("action", True, target, args, name, returns)


def module_name_of(name: Any) -> str:
    """A module's name as given (``tasks``, ``chat/messages``; a ``.js`` suffix dropped), checked."""
    if not isinstance(name, str) or not name or ":" in name:
        raise ValueError(f"A module name is a path like 'tasks' or 'chat/messages', got {name!r}")
    return name.removesuffix(".js")


class Module(_Definer):
    """``app.module("tasks")``: functions decorated here are named ``tasks:<function>``."""

    def __init__(self, backend: Backend, name: str) -> None:
        self._owner = backend
        self._module = module_name_of(name)

    def _backend(self) -> Backend:
        return self._owner

    def __repr__(self) -> str:
        return f"<Module {self._module}>"


class Backend(_Definer, SystemCalls, optional.NotebookMethods):
    """An embedded Convex deployment: SQLite storage, functions, calls (see module docstring)."""

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        schema: SchemaDefinition | None = None,
        clock: Clock | None = None,
        limits: Any = None,
        echo_logs: bool = True,
        query_cache_size: int = 1024,
        history: Any = None,
        auth: Any = None,
        env: dict[str, str] | None = None,
    ) -> None:
        """``query_cache_size``: how many one-shot query results to keep (0 turns the cache off;
        live subscriptions always share their results). ``limits``: a ``cn.Limits`` (time,
        argument, return and transaction limits; see backend/limits.py), a ``TransactionLimits``
        or a dict of ``cn.Limits`` fields. ``history``: how long past versions are kept for
        reads at an earlier time (a ``timedelta``, or seconds; an hour by default). ``auth``:
        the auth providers of a served deployment (see :meth:`set_auth`). ``env``: environment
        variables to set (``app.env``)."""
        self.path = os.fspath(path) if path is not None else None
        if self.path is not None:
            _create_private(self.path)
        self.auth_providers: Any = None  # server.auth_providers.AuthProviders, set by set_auth
        if auth is not None:
            self.set_auth(auth)
        self.limits = Limits.coerce(limits)
        self._db = Database(
            self.path, clock=clock, limits=self.limits.transaction, history_ns=_history_ns(history)
        )
        self.registry = Registry()
        self.logs = logs.LogBook()
        self._deployed_modules: dict[str, set[str]] = {}  # deploy_module: module -> its paths
        self._folders: dict[str, Any] = {}  # deploy_folder: path -> its project.FunctionsFolder
        # Deployment state shown by system queries (latest export, imports): see backend/system.py.
        self.system_state: dict[str, Any] = {}
        # File storage (backend/storage.py): the base of its URLs (app.serve() sets the served
        # one) and the upload URLs handed out, token → expiry.
        self.site_url = "http://127.0.0.1:3210"
        self.upload_tokens: dict[str, float] = {}
        self.http = HttpRouter()  # HTTP actions: @app.http.route(path=..., method=...)
        self.echo_logs = echo_logs
        self._identity: dict | None = None
        self._actions = _ActionLoop()  # shared with with_identity() views
        self._hub = SubscriptionHub(
            threading.RLock(), self._execute_live, now_ms=self._db.clock.now_ms, last_ts=lambda: self._db.last_ts,
            cache_size=query_cache_size, write_log=self._db.write_log,
        )
        self._hub.on_rerun = self._log_rerun
        self._db.commit_listeners.append(self._hub.on_commit)
        self.registry.listeners.append(self._hub.function_changed)
        self.components = Components(self)  # app.use(component): backend/components.py
        self._user_schema: Any = _UNSET  # the app's own schema (components' tables are merged in)
        if schema is not None:
            self.set_schema(schema)
        self._scheduler = SchedulerRunner(self)  # resumes jobs a file holds
        self._vectors = VectorSearch(self)
        self.served_url: str | None = None  # set by app.serve(): CONVEX_CLOUD_URL / CONVEX_SITE_URL
        self.env = Environment(self)  # environment variables (backend/env.py)
        if env:
            self.env.update(env)

    def _backend(self) -> Backend:
        return self

    # Calling by path is the hot path: skip the decorator logic of _Definer (same behaviour).
    def query(
        self, target: Any = None, args: Any = None, *, name: str | None = None, returns: Any = None, at: Any = None
    ) -> Any:
        """Decorate a query (``@app.query(args=...)``) or call one (``app.query("m:f", args)``);
        ``at`` reads the database as it was then: a timestamp from ``latest_ts()``, a
        ``datetime``, or a ``timedelta`` ago (within the history kept)."""
        if at is not None:
            if not isinstance(target, (str, RegisteredFunction)):
                raise TypeError("app.query(..., at=) calls a query: pass its path ('module:fn') or reference")
            when = to_timestamp(at, self._db.clock_ns())
            self._db.history.check_readable(when, self._db.latest_ts())  # (a clear error before any call)
            token = _read_at.set(when)
            try:
                return self._define_or_call("query", False, target, args, name, returns)
            finally:
                _read_at.reset(token)
        if type(target) is str:
            return self._call(target, args, kind="query", identity=self._identity, admin=False, top=True)
        return self._define_or_call("query", False, target, args, name, returns)

    def mutation(self, target: Any = None, args: Any = None, *, name: str | None = None, returns: Any = None) -> Any:
        """Decorate a mutation or call one; a call returns after the commit."""
        if type(target) is str:
            return self._call(target, args, kind="mutation", identity=self._identity, admin=False, top=True)
        return self._define_or_call("mutation", False, target, args, name, returns)

    def __repr__(self) -> str:
        where = self.path or "memory"
        tables, functions = len(self._db.table_names()), len(self.registry.all())
        return f"<Backend {where}: {tables} table{'' if tables == 1 else 's'}, {functions} function{'' if functions == 1 else 's'}>"

    # -- structure --------------------------------------------------------------------------
    @property
    def database(self) -> Database:
        return self._db

    @property
    def clock(self) -> Clock:
        return self._db.clock

    @property
    def schema(self) -> SchemaDefinition | None:
        return self._db.schema if self._user_schema is _UNSET else self._user_schema

    def set_schema(self, schema: SchemaDefinition | None) -> None:
        """Apply a schema: existing documents are checked, indexes created and backfilled."""
        if schema is not None and not isinstance(schema, SchemaDefinition):
            raise TypeError(f"set_schema() takes cn.define_schema(...), got {type(schema).__name__}")
        if schema is not None and any("/" in name for name in schema.tables):
            raise ValueError("Table names with '/' belong to components: define them in cn.Component(schema=...)")
        previous, self._user_schema = self._user_schema, schema
        try:
            self._apply_schema()
        except BaseException:
            self._user_schema = previous
            raise

    def _apply_schema(self) -> None:
        """Apply the app's schema merged with its components' (backend/components.py)."""
        own = self._db.schema if self._user_schema is _UNSET else self._user_schema
        if own is not None and self._user_schema is _UNSET:  # a file's schema: drop old component tables
            own = SchemaDefinition({k: t for k, t in own.tables.items() if "/" not in k},
                                   schema_validation=own.schema_validation)
        self._db.set_schema(self.components.merged_schema(own))

    def use(self, component: Component, name: str | None = None) -> Any:
        """Mount a ``cn.Component`` (as ``name``, by default its own): its tables are created
        (``name/table``), its functions are ``app.components.<name>.<module>.<fn>``."""
        return self.components.use(component, name)

    def registry_changed(self, path: str) -> None:
        """Tell the registry's listeners that a function was (re)defined (live queries re-run)."""
        for listener in list(self.registry.listeners):
            listener(path)

    def set_auth(self, config: Any) -> None:
        """The auth providers user tokens are verified against when served, as Convex's
        ``auth.config.ts``: ``{"providers": [{"domain": url, "applicationID": aud}, {"type":
        "customJwt", "issuer", "jwks", "algorithm", "applicationID"}]}``; ``None`` removes them
        (then every user token is refused, unless the server runs with dev tokens)."""
        self.auth_providers = optional.auth_providers(config) if config is not None else None

    def module(self, name: str) -> Module:
        return Module(self, name)

    def functions(self) -> list[FunctionDef]:
        """The app's functions, then its components' (``mount:module:fn``)."""
        return self.registry.all() + self.components.functions()

    def table_names(self) -> list[str]:
        return self._db.table_names()

    def count(self, table: str) -> int:
        """Number of documents in a table (0 if it doesn't exist)."""
        from ..engine.bulk import table_count

        with self._db.read() as txn:
            return table_count(txn, table)

    def latest_ts(self) -> int:
        """The timestamp of the latest commit (nanoseconds since the Unix epoch)."""
        return self._db.latest_ts()

    # -- what a served deployment needs beyond the contract (server/) ---------------------------
    def read_snapshot(self, at: int | None = None) -> Any:
        """``with app.read_snapshot(at) as txn``: a read-only transaction on one snapshot (the
        latest, or the one at ``at`` within the history), for reads that page through it
        (``/api/list_snapshot``, exports) or read a document with its file's bytes."""
        return self._db.read(at=at)

    def exclusive_write(self) -> Any:
        """``with app.exclusive_write() as txn``: a transaction that holds the committer while it
        runs and writes the store directly: bulk imports, all or nothing (an error inside the
        block writes nothing)."""
        return self._db.write(exclusive=True)

    def document_deltas(
        self, cursor: int, limit: int, table: str | None = None
    ) -> tuple[list[tuple[int, str, str, dict | None]], int, bool]:
        """Convex's streaming export after ``cursor`` (a timestamp within the history):
        ``([(ts, table, id, document or None if deleted)], next cursor, more?)``."""
        return self._db.document_deltas(cursor, limit, table=table)

    def table_of_id(self, doc_id: str) -> str | None:
        """The name of the table an id belongs to (None: not an id of this deployment)."""
        return self._db.table_name_for_id(doc_id)

    def observe_ts(self, ts: int) -> None:
        """A client has seen ``ts``: commits from now on get later timestamps, and live
        results hold at ``ts`` too (no commit came between)."""
        self._db.advance_ts(ts)
        self._hub.reflects(ts)

    def stored_setting(self, name: str, make: Callable[[], str]) -> tuple[str, bool]:
        """A deployment setting kept with the data (a file keeps it across restarts): its
        value, made by ``make()`` and saved the first time; and whether it was made now."""
        db = self._db
        with db.commit_lock:  # (the meta table is written on the committer's connection)
            saved = db.store.get_meta(name)
            if saved:
                return saved, False
            value = make()
            db.store.set_meta(name, value)
            return value, True

    # -- the deployment contract's data primitives (backend/contract.py) ------------------------
    @property
    def location(self) -> str:
        """Where this deployment lives: ``memory://`` or ``sqlite:///path``."""
        return f"sqlite:///{self.path}" if self.path else "memory://"

    def timestamp(self, at: Any) -> int:
        """A commit timestamp from ``at``: an ``int``, a ``datetime`` (naive: UTC) or a
        ``timedelta`` ago (counted back on this backend's clock)."""
        return to_timestamp(at, self._db.clock_ns())

    def documents(self, table: str, *, at: Any = None) -> list[dict]:
        """Every document of ``table`` in ``_creationTime`` order, one snapshot (``at``: the
        one then, as ``query(..., at=)`` takes it)."""
        from .context import QueryCtx

        when = self.timestamp(at) if at is not None else None
        with self._db.read(at=when) as txn:
            if txn.table(table) is None:
                return []
            return QueryCtx(self, txn, None).db.query(table).collect()

    def read_table(self, table: str, *, at: Any = None) -> Iterator[TableBatch]:
        """Every document of ``table`` in batches (``TableBatch``), one snapshot: the latest
        is read joined by SQLite (no Python object per row until the reader decodes it)."""
        from ..engine.stored import CT_KEY_LEN, load_rows

        when = self.timestamp(at) if at is not None else None
        with self._db.read(at=when) as txn:
            info = txn.table(table)
            if info is None:
                return
            if txn.read_ts is not None:  # the past: documents one by one
                yield TableBatch(documents=[d for rows in txn.iter_documents_ordered(info.number) for d in load_rows(rows)])
                return
            # closing(): whatever happens, the read-ahead is over before the snapshot is released.
            id_len = info.indexes["by_id"].doc_key_len - CT_KEY_LEN - 2
            with contextlib.closing(txn.json_batches(info.number, id_len)) as batches:  # type: ignore[type-var]
                for texts, plains, ids, times in batches:
                    yield TableBatch(json=texts, plain=plains, ids=ids, times=times)

    def clear_tables(self) -> int:
        """Delete every document of every table in one exclusive transaction (functions and
        schema stay); returns how many. Live queries show the empty tables when it returns."""
        from ..engine.bulk import clear_table

        with self._db.write(exclusive=True) as txn:
            return sum(clear_table(txn, name) for name in self._db.table_names())

    def clear_table(self, table: str) -> int:
        """Delete every document of ``table`` in one exclusive transaction; returns how many."""
        from ..engine.bulk import clear_table

        if self._db.table(table) is None:
            raise ValueError(f"no table named {table!r}")
        with self._db.write(exclusive=True) as txn:
            return clear_table(txn, table)

    def import_columns(
        self, table: str, names: Sequence[str], columns: Sequence[list[Any]], n: int, *, mode: str = "insert",
        keep_ids: bool = False, atomic: bool = True, batch_size: int = 50_000,
        progress: Callable[[int], Any] | None = None,
    ) -> int:
        """Insert ``n`` rows given as columns (``MISSING`` for a field a row lacks) into
        ``table`` (``import_dataframe``'s write). ``mode``: "insert" (the table must be empty),
        "append" or "replace" (always atomic). ``atomic``: one exclusive transaction, else one
        per ``batch_size`` rows. ``keep_ids``: ``_id``/``_creationTime`` columns are kept.
        ``progress(k)`` is told as each batch of ``k`` rows is written."""
        from ..engine import bulk

        if mode not in ("insert", "replace", "append"):
            raise ValueError(f"mode= takes 'insert', 'replace' or 'append', got {mode!r}")

        def check_mode(txn: Transaction) -> None:
            count = bulk.table_count(txn, table)
            if mode == "insert" and count:
                raise DatabaseError(
                    f"Table {table!r} already has {count} documents: import with mode='append' to add "
                    "to them or mode='replace' to replace them"
                )

        def insert(txn: Transaction, chunk: Sequence[list[Any]], count: int, start: int, report: Any) -> None:
            try:
                bulk.insert_columns(txn, table, names, chunk, count, keep_system_fields=keep_ids, progress=report)
            except bulk.ImportRowError as exc:
                raise DatabaseError(f"import_dataframe into {table!r}: row {start + exc.row}: {exc.reason}") from exc

        if atomic or mode == "replace":
            with self._db.write(exclusive=True) as txn:
                check_mode(txn)
                if mode == "replace":
                    bulk.clear_table(txn, table)
                if n == 0:
                    bulk.ensure_table(txn, table)
                # One call: the engine batches the rows itself (and overlaps its work with
                # SQLite's), reporting each batch.
                insert(txn, columns, n, 0, progress)
            return n
        with self._db.write(exclusive=True) as txn:
            check_mode(txn)
            if n == 0:
                bulk.ensure_table(txn, table)
        for start in range(0, n, batch_size):
            count = min(batch_size, n - start)
            with self._db.write(exclusive=True) as txn:
                insert(txn, [col[start : start + batch_size] for col in columns], count, start, None)
            if progress is not None:
                progress(count)
        return n

    def on_log(self, listener: Callable[[logs.LogEntry], Any]) -> Callable[[], None]:
        """Call ``listener(entry)`` after each function execution is logged; returns the
        function that stops it."""
        self.logs.listeners.append(listener)
        return lambda: _discard(self.logs.listeners, listener)

    def on_commit(self, listener: Callable[[int], Any], *, poll_interval: float = 1.0) -> Callable[[], None]:
        """Call ``listener(ts)`` after every commit (on the committing thread: keep it short);
        returns the function that stops it. ``poll_interval`` is for remote deployments."""

        def on_commit(_writes: Any, ts: int) -> None:
            listener(ts)

        self._db.commit_listeners.append(on_commit)
        return lambda: _discard(self._db.commit_listeners, on_commit)

    def deploy_folder(self, path: str, *, force: bool = False) -> Any:
        """Deploy a functions folder (``convex/``: modules, schema, crons, HTTP routes, auth)
        or one ``.py`` file, as ``convex-notebook serve --functions`` does (``%convex
        deploy``). A later call for the same path deploys only what changed (``force``:
        everything). Returns the ``project.DeployReport``; live queries have re-run by then
        (``report.reruns``). A broken file raises ``project.DeployError`` and changes nothing."""
        from .project import FunctionsFolder

        path = os.path.abspath(os.fspath(path))
        if not os.path.exists(path):
            raise FileNotFoundError(f"nothing at {path}: give a functions folder (convex/) or a .py file")
        folder = os.path.isdir(path)
        project = self._folders.get(path)
        if project is None:
            project = self._folders[path] = FunctionsFolder(self, path if folder else None)
        reruns = self._hub.stats.reruns
        report = project.deploy(None if folder else [path], force=force)
        self.wait_for_callbacks()
        report.reruns = self._hub.stats.reruns - reruns
        return report

    def deploy_module(self, name: str, source: str, *, namespace: dict | None = None,
                      replace: bool = True) -> DeployedModule:
        """Deploy Python source as module ``name`` (``%%convex_module``; a remote push lands
        here): the functions it decorates become ``name:<fn>``, those an earlier deploy of the
        module defined and this one lacks are removed (``replace=False`` keeps them). All or
        nothing: an error in the source raises ``project.SourceError`` and changes nothing."""
        from .project import run_module_source

        module = module_name_of(name)
        defined = run_module_source(
            self, module, source, namespace, passthrough=(ConvexError, ConvexFunctionError, InvalidValueError)
        )
        reruns = self._hub.stats.reruns
        for definition in defined.values():
            self.registry.register(definition)
        previous = self._deployed_modules.get(module, set())
        removed = sorted(previous - set(defined)) if replace else []
        for path in removed:
            self.registry.remove(path)
        self._deployed_modules[module] = set(defined) | (set() if replace else previous)
        self.wait_for_callbacks()
        return DeployedModule(
            module, [(d.path, d.kind) for d in sorted(defined.values(), key=lambda d: d.path)], removed,
            self._hub.stats.reruns - reruns,
        )

    def remove_functions(self, paths: Sequence[str]) -> list[str]:
        """Remove functions by path (those that exist); returns the removed paths."""
        removed = []
        for path in paths:
            if self.registry.lookup(path) is not None:
                self.registry.remove(path)
                removed.append(path)
            for known in self._deployed_modules.values():
                known.discard(path)
        return removed

    def history_range(self) -> tuple[int, int]:
        """``(oldest, latest)``: the timestamps reads with ``at=`` may ask for."""
        latest = self._db.latest_ts()
        return min(self._db.history.oldest_readable(), latest), latest

    def with_identity(self, identity: dict | None) -> Backend:
        """A view of this backend whose calls act as the given signed-in user."""
        view = copy.copy(self)
        view._identity = _normalize_identity(identity)
        return view

    def advance_time(self, ms: float) -> float:
        clock = self._db.clock
        if not isinstance(clock, VirtualClock):
            raise TypeError("advance_time() needs a backend made with clock=cn.VirtualClock()")
        if isinstance(ms, bool) or not isinstance(ms, (int, float)) or not ms >= 0:
            raise ValueError(f"advance_time() takes a non-negative number of milliseconds, got {ms!r}")
        # Scheduled functions and cron runs that fall due run at their own times, in order.
        self._scheduler.run_until(clock.now_ms() + ms)
        return clock.now_ms()

    @property
    def crons(self) -> Any:
        """This deployment's cron jobs: ``app.crons.interval("name", {"minutes": 5}, "m:f")``,
        ``.cron(name, "0 16 1 * *", ...)``, ``.hourly/daily/weekly/monthly``; redefining one
        replaces it, ``app.crons.remove(name)`` drops it (see ``backend/crons.py``)."""
        return self._scheduler.crons

    def set_crons(self, crons: Any) -> None:
        """Deploy a ``cn.CronJobs()`` set, replacing the current crons (a functions file's
        ``crons``, as ``convex/crons.ts`` on push)."""
        from .crons import CronJobs

        if not isinstance(crons, CronJobs):
            raise TypeError(f"set_crons() takes cn.CronJobs(), got {type(crons).__name__}")
        self._scheduler.crons.replace_all(crons)

    def fetch(
        self, path: str, method: str = "GET", *, body: bytes | str | None = None, json: Any = None,
        headers: dict[str, str] | None = None,
    ) -> HttpResponse:
        """Call an HTTP action as a client would (``app.fetch("/hello")``); ``json=`` sends a
        JSON body. Works without serving; served, the same routes answer on the server."""
        if json is not None and body is not None:
            raise TypeError("fetch() takes body= or json=, not both")
        data = _json.dumps(json).encode() if json is not None else body.encode() if isinstance(body, str) else (body or b"")
        names = {k.lower(): v for k, v in (headers or {}).items()}
        if json is not None:
            names.setdefault("content-type", "application/json")
        url = path if "://" in path else f"{self.site_url}{path if path.startswith('/') else '/' + path}"
        request = HttpRequest(method.upper(), url, names, data)
        return run_http_action(self, request, self._identity)

    def finish_scheduled_functions(self) -> int:
        """Run every pending scheduled function, and those they schedule, in time order (a
        virtual clock moves to each one's time; the system clock is waited for). Returns how
        many ran."""
        return self._scheduler.finish()

    def _record_call(
        self, path: str, kind: str, lines: list[str], started: float, error: str | None,
        usage: dict[str, int] | None = None,
    ) -> None:
        """A run that no caller logs (scheduled, cron, HTTP action) in the log book, and echoed."""
        self._add_log_entry(path, kind, list(lines), (time.perf_counter() - started) * 1000, error, usage)
        if self.echo_logs and lines:
            logs.echo(lines)

    def _add_log_entry(
        self, path: str, kind: str, lines: list[str], duration_ms: float, error: str | None,
        usage: dict[str, int] | None,
    ) -> None:
        """Every log book entry is made here: each carries all six usage counts (zeros for
        what the call did not do)."""
        full = _NO_USAGE | usage if usage else dict(_NO_USAGE)
        self.logs.add(logs.LogEntry(time.time(), path, kind, lines, duration_ms, error, full))

    @staticmethod
    @contextlib.contextmanager
    def _measured() -> Iterator[dict[str, int]]:
        """``with backend._measured() as usage``: the usage of the calls made inside (their
        transactions report to it, as a top-level call's do)."""
        usage: dict[str, int] = {}
        token = _call_usage.set(usage)
        try:
            yield usage
        finally:
            _call_usage.reset(token)

    def close(self) -> None:
        self._scheduler.stop()
        self._hub.close()
        self._db.close()
        self._actions.stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- calling ----------------------------------------------------------------------------
    def run(self, target: Any, args: dict | None = None) -> Any:
        """Admin call: any function by path (internal ones too), or an inline mutation
        ``app.run(lambda ctx: ctx.db.insert("t", {}))`` with a full mutation ctx."""
        if isinstance(target, (str, RegisteredFunction, ComponentRef)):
            return self._call(target, args, kind=None, identity=self._identity, admin=True, top=True)
        if callable(target):
            if args is not None:
                raise TypeError("app.run(fn) runs fn(ctx); pass arguments through a closure")
            if inspect.iscoroutinefunction(target):
                raise TypeError(_ASYNC_INLINE)
            logs.bind_print(target)  # its print writes the call's log lines
            return self._run_inline(target)
        raise TypeError(f"app.run() takes a function path or a callable, got {type(target).__name__}")

    def subscribe(
        self,
        target: Any,
        args: dict | None = None,
        *,
        on_update: Callable[[Any], Any] | None = None,
        on_error: Callable[[BaseException], Any] | None = None,
        journal: str | None = None,
        admin: bool = False,
    ) -> Subscription:
        """Subscribe to a public query (``admin=True``: internal and system ones too, as a
        server does for admin-authenticated clients): the handle's ``.value`` stays current.

        Every commit that changes the result updates ``.value`` before the mutation that made
        it returns; ``on_update(value)`` / ``on_error(exc)`` then run on a background thread,
        once per change, in commit order. Iterate (``for v in sub`` / ``async for``) for new
        values; ``sub.unsubscribe()`` (or ``with``) releases it.
        """
        if _inside_transaction.get():
            raise ConvexFunctionError("app.subscribe() cannot be called from inside a query or mutation")
        definition = self._resolve(target, "query", admin=admin)
        converted = self._convert_args(definition, args)
        started, misses = time.perf_counter(), self._hub.stats.cache_misses
        sub = self._hub.subscribe(
            definition.path, converted, self._identity, on_update=on_update, on_error=on_error,
            journal=journal,
        )
        if not is_system_path(definition.path):
            # Logged as app.query logs a call (a remote client's queries arrive here): the
            # first result's lines and usage when this call computed it, else none.
            first = sub._result
            fresh = first is not None and self._hub.stats.cache_misses != misses
            error = str(first.error) if first is not None and first.error is not None else None
            self._add_log_entry(definition.path, "query", list(first.log_lines) if fresh else [],
                                (time.perf_counter() - started) * 1000, error, first.usage if fresh else None)
        return sub

    def invoke(
        self, target: Any, args: Any = None, *, kind: str | None = None, admin: bool = False, at: int | None = None
    ) -> Invocation:
        """Run a function the way a server request does and report instead of raising:
        value or error, log lines, and the timestamp (see :class:`Invocation`). ``kind``
        requires that kind of function; ``admin`` allows internal functions; ``at`` runs a
        query at that timestamp (time travel). Identity: this view's
        (``app.with_identity(...).invoke(...)``)."""
        shown = target.path if isinstance(target, RegisteredFunction) else str(target)
        inv = Invocation(shown, None)
        with logs.capture() as cap:
            try:
                definition = self._resolve(target, kind, admin)
                inv.path, inv.kind = definition.path, definition.kind
                if definition.kind == "action":
                    inv.value = self._call(definition.path, args, kind=None, identity=self._identity, admin=True, top=True)
                    inv.ts = self._db.last_ts
                else:
                    # The timestamp this call saw: its snapshot, or its commit.
                    token = _observed_ts.set(None)
                    at_token = _read_at.set(at) if at is not None and definition.kind == "query" else None
                    try:
                        inv.value = self._call(
                            definition.path, args, kind=None, identity=self._identity, admin=True, top=True
                        )
                        observed = _observed_ts.get()
                    finally:
                        _observed_ts.reset(token)
                        if at_token is not None:
                            _read_at.reset(at_token)
                    inv.ts = observed if observed is not None else self._db.last_ts
            except Exception as exc:  # noqa: BLE001 - reported, not raised
                inv.error = exc
                inv.ts = self._db.last_ts
            inv.log_lines = list(cap.lines)
        return inv

    def serve(self, host: str = "127.0.0.1", port: int = 3210, *, block: bool = True, **options: Any) -> Any:
        """Serve this backend over Convex's HTTP API and WebSocket sync protocol, so that the
        official clients (and ``cn.connect("http://...")``) can use it. ``block=False`` runs
        the server on a background thread and returns a handle with ``.url`` and ``.stop()``.
        Options: ``admin_key``, ``verify_token``, ``log_level``, ... (see
        ``convex_notebook.server.serve``)."""
        return optional.serve(self, host=host, port=port, block=block, **options)

    @property
    def reactivity(self) -> HubStats:
        """Counters of the reactive engine: executions, reruns, cache hits, notifications..."""
        return self._hub.stats

    @property
    def subscription_count(self) -> int:
        """How many live subscriptions this deployment serves."""
        return self._hub.subscription_count

    @property
    def subscription_hub(self) -> SubscriptionHub:
        return self._hub

    def wait_for_callbacks(self, timeout: float | None = 10.0) -> bool:
        """Block until every subscription callback scheduled so far has run."""
        return self._hub.drain(timeout)

    async def query_async(self, target: Any, args: dict | None = None) -> Any:
        return await asyncio.to_thread(self.query, target, args)

    async def mutation_async(self, target: Any, args: dict | None = None) -> Any:
        return await asyncio.to_thread(self.mutation, target, args)

    async def action_async(self, target: Any, args: dict | None = None) -> Any:
        return await asyncio.to_thread(self.action, target, args)

    async def run_async(self, target: Any, args: dict | None = None) -> Any:
        return await asyncio.to_thread(self.run, target, args)

    # -- execution --------------------------------------------------------------------------
    def _resolve(self, ref: Any, kind: str | None, admin: bool) -> FunctionDef:
        if self.components.mounts:
            mounted = self.components.resolve(ref)
            # Components are never reachable by clients: a reference object (Python code) or admin.
            if mounted is not None and (admin or not isinstance(ref, str)):
                if kind is not None and mounted.kind != kind:
                    raise FunctionNotFound(
                        f"{mounted.path} is a {mounted.kind}, not a {kind}: call it with app.{mounted.kind}()"
                    )
                return mounted
        definition = self.registry.lookup(ref)
        if definition is None and admin:
            definition = lookup_system(ref)  # the deployment's own admin API (_system/...)
        shown = ref.path if isinstance(ref, RegisteredFunction) else ref
        if definition is None or (definition.internal and not admin):
            known = [d.path for d in self.registry.all() if admin or not d.internal]
            hint = difflib.get_close_matches(str(shown), known, n=3)
            suffix = f" Did you mean {', '.join(hint)}?" if hint else ""
            scope = "function" if admin else "public function"
            raise FunctionNotFound(f"Could not find {scope} for '{shown}'.{suffix}")
        if kind is not None and definition.kind != kind:
            raise FunctionNotFound(
                f"{definition.path} is a {definition.kind}, not a {kind}: call it with app.{definition.kind}()"
            )
        return definition

    def _convert_args(self, definition: FunctionDef, args: Any) -> dict:
        if args is None:
            args = {}
        if not isinstance(args, dict):
            raise ValidationError(
                f"Arguments of {definition.path} must be a dict of named arguments, got {type(args).__name__}"
            )
        try:
            if definition.args is not None:
                converted = definition.args.convert(args, path="", id_table=self._id_table(definition))
            else:
                converted = convex_value(args)
        except ValidationError as exc:
            raise ValidationError(f"ArgumentValidationError for {definition.path}: {exc}") from None
        except InvalidValueError as exc:
            raise ValidationError(f"ArgumentValidationError for {definition.path}: {exc}") from None
        check_size(converted, self.limits.argument_bytes, f"Arguments of {definition.path}", "argument_bytes")
        return converted

    def _convert_result(self, definition: FunctionDef, result: Any) -> Any:
        if result is MISSING:
            result = None
        try:
            if definition.returns is not None:
                converted = definition.returns.convert(result, path="", id_table=self._id_table(definition))
            else:
                converted = canonical_copy(result)  # convex_value(result), faster for documents as read
        except ValidationError as exc:
            raise ValidationError(f"Return value validation failed for {definition.path}: {exc}") from None
        except InvalidValueError as exc:
            raise ConvexFunctionError(
                f"{definition.kind} {definition.path} returned a value that is not a Convex value: {exc}"
            ) from None
        check_size(converted, self.limits.return_bytes, f"The return value of {definition.path}", "return_bytes")
        return converted

    def _id_table(self, definition: FunctionDef) -> Callable[[str], str | None]:
        """How ``v.id(table)`` validators of ``definition`` name an id's table: a component's
        functions see their own tables by their own names."""
        mount = getattr(definition, "mount", None)
        if mount is None:
            return self._db.table_name_for_id
        prefix, name_of = mount.prefix, self._db.table_name_for_id

        def own(doc_id: str) -> str | None:
            name = name_of(doc_id)
            return name[len(prefix):] if name is not None and name.startswith(prefix) else name

        return own

    def _call(
        self, ref: Any, args: Any, *, kind: str | None, identity: dict | None, admin: bool, top: bool
    ) -> Any:
        if _inside_transaction.get():
            raise ConvexFunctionError(
                "A query or mutation called the app's public API (app.query/mutation/action/run); "
                "inside a function use ctx.run_query / ctx.run_mutation instead"
            )
        definition = self._resolve(ref, kind, admin)
        converted = self._convert_args(definition, args)
        if not top:
            return self._execute_wrapped(definition, converted, identity)
        return self._execute_logged(definition, converted, identity)

    def _execute_wrapped(self, definition: FunctionDef, args: dict, identity: dict | None) -> Any:
        """``_execute``, with a handler's exception turned into what the caller sees."""
        try:
            return self._execute(definition, args, identity)
        except Exception as exc:
            error = _function_error(definition, exc)
            if error is exc:
                raise
            raise error from exc

    def _execute_logged(self, definition: FunctionDef, args: dict, identity: dict | None) -> Any:
        """A top-level call: ``_logged(..., _execute_wrapped, ...)`` in one frame (the hot path)."""
        started = time.perf_counter()
        error: str | None = None
        lines, token = logs.begin()  # token None: an outer call's capture, which echoes
        start = len(lines)
        usage_token = _call_usage.set({})
        try:
            return self._execute(definition, args, identity)
        except BaseException as exc:
            failure = _function_error(definition, exc) if isinstance(exc, Exception) else exc
            error = str(failure)
            if failure is exc:
                raise
            raise failure from exc
        finally:
            usage = _call_usage.get()
            _call_usage.reset(usage_token)
            self._log_call(definition.path, definition.kind, started, lines, start, token, error, usage)

    def _logged(self, path: str, kind: str, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)``, its log lines captured and the call recorded in the log book."""
        started = time.perf_counter()
        error: str | None = None
        lines, token = logs.begin()  # token None: an outer call's capture, which echoes
        start = len(lines)
        try:
            return fn(*args)
        except BaseException as exc:
            error = str(exc)
            raise
        finally:
            self._log_call(path, kind, started, lines, start, token, error)

    def _log_call(
        self, path: str, kind: str, started: float, lines: list[str], start: int, token: Any, error: str | None,
        usage: dict[str, int] | None = None,
    ) -> None:
        """End a call's capture (see logs.begin): record it in the log book, echo its lines."""
        try:
            if is_system_path(path):
                return  # admin reads by dashboards and remote notebooks are not the app's activity
            self._add_log_entry(path, kind, lines[start:], (time.perf_counter() - started) * 1000, error, usage)
            if self.echo_logs and token is not None and lines:
                logs.echo(lines)
        finally:
            logs.end(token)

    def _execute(self, definition: FunctionDef, args: dict, identity: dict | None) -> Any:
        kind = definition.kind
        if kind == "mutation":
            buffer = logs.current_buffer()
            mark = len(buffer) if buffer is not None else 0

            def body(txn: Transaction) -> Any:
                ctx = make_ctx(self, definition, "mutation", txn, identity)
                token = _inside_transaction.set(True)
                try:
                    with user_code(self.limits.query_seconds, "mutation", definition.path, limit_name="query_seconds"):
                        result = definition.call(ctx, args)
                finally:
                    _inside_transaction.reset(token)
                self._warn_near_limits(txn)
                return self._convert_result(definition, result)

            def forget_attempt(_retry: int) -> None:  # a re-run's log lines replace the failed attempt's
                if buffer is not None:
                    del buffer[mark:]

            try:
                value, txn, retries = run_optimistic(self._db, body, path=definition.path, on_retry=forget_attempt)
            except OccError as exc:
                _report({}, exc.retries, None)
                raise
            _report(txn.usage, retries, txn.commit_ts)
            return value
        if kind == "action":
            ctx = make_ctx(self, definition, "action", None, identity, is_async=definition.is_async,
                           now_ms=self._db.clock.now_ms())
            if definition.is_async:
                result = self._run_coroutine(
                    definition.call(ctx, args), timeout=self.limits.action_seconds, describe=f"action {definition.path}"
                )
            else:
                with user_code(self.limits.action_seconds, "action", definition.path, limit_name="action_seconds"):
                    result = definition.call(ctx, args)
            return self._convert_result(definition, result)
        return self._query_through_cache(definition, args, identity)

    def _query_through_cache(self, definition: FunctionDef, args: dict, identity: dict | None) -> Any:
        at = _read_at.get()
        if at is not None:
            return self._query_at(definition, args, identity, at)
        value, execution, fresh = self._hub.query(definition.path, args, identity)
        _report(execution.usage if fresh else {}, 0, execution.ts)
        if fresh and execution.log_lines:
            buffer = logs.current_buffer()
            if buffer is not None:  # a cached result was logged when it was computed
                buffer.extend(execution.log_lines)
        if execution.error is not None:
            raise execution.error
        return value

    def _execute_live(self, path: str, args: dict, identity: dict | None, journal: str | None) -> Execution:
        """The hub's executor: run one query at the latest snapshot, capturing everything."""
        definition = self.registry.lookup(path) or lookup_system(path)
        if definition is None and self.components.mounts:
            definition = self.components.resolve(path)
        with logs.isolated() as cap, self._db.read() as txn:
            return self._run_query(definition, path, args, identity, journal, txn, cap)

    def _query_at(self, definition: FunctionDef, args: dict, identity: dict | None, at: int) -> Any:
        """A query read at an earlier timestamp (time travel: never cached, never live)."""
        with logs.isolated() as cap, self._db.read(at=at) as txn:
            execution = self._run_query(definition, definition.path, args, identity, None, txn, cap)
        buffer = logs.current_buffer()
        if buffer is not None:
            buffer.extend(execution.log_lines)
        _report(execution.usage, 0, at)
        if execution.error is not None:
            raise execution.error
        return execution.take_value()

    def _run_query(
        self, definition: FunctionDef | None, path: str, args: dict, identity: dict | None, journal: str | None,
        txn: Transaction, cap: Any,
    ) -> Execution:
        """Run one query in ``txn``, capturing its result, error, reads and log lines."""
        value: Any = None
        frozen: bytes | None = None
        error: BaseException | None = None
        txn.journal = journal
        try:
            if definition is None or definition.kind != "query":
                raise FunctionNotFound(f"Could not find public function for '{path}'")
            token = _inside_transaction.set(True)
            try:
                with user_code(self.limits.query_seconds, "query", path, limit_name="query_seconds"):
                    result = definition.call(make_ctx(self, definition, "query", txn, identity), args)
            finally:
                _inside_transaction.reset(token)
            cap.lines.extend(near_limit_warnings(txn, self.limits))
            value = self._convert_result(definition, result)
            frozen = freeze(value)
        except Exception as exc:  # noqa: BLE001 - any failure of the query is its result
            error = _function_error(definition, exc) if definition is not None else exc
            value = None
        txn.functions.add(path)
        return Execution(
            frozen, error, txn.reads, txn.snapshot_ts, now_ms=txn.now_ms, journal=txn.journal_out,
            functions=frozenset(txn.functions), read_time=txn.read_time, log_lines=cap.lines, value=value,
            usage=txn.usage,
        )

    def _warn_near_limits(self, txn: Transaction) -> None:
        """Convex's ``[WARN]`` lines, in the call's log, for a transaction near its limits."""
        warnings = near_limit_warnings(txn, self.limits)
        buffer = logs.current_buffer()
        if warnings and buffer is not None:
            buffer.extend(warnings)

    def _log_rerun(self, key: Any, execution: Execution) -> None:
        if execution.log_lines or execution.error is not None:
            error = str(execution.error) if execution.error is not None else None
            self._add_log_entry(key.path, "query", list(execution.log_lines), 0.0, error, execution.usage)

    def _run_in_transaction(
        self, ref: Any, args: Any, txn: Transaction, identity: dict | None, *, kind: str
    ) -> Any:
        """``ctx.run_query`` / ``ctx.run_mutation`` from inside a query or mutation."""
        definition = self._resolve(ref, kind, admin=True)
        if kind == "mutation" and not txn.writable:
            raise ConvexFunctionError("ctx.run_mutation is only available in mutations")
        converted = self._convert_args(definition, args)
        txn.functions.add(definition.path)

        def run() -> Any:
            paginated, txn.paginated = txn.paginated, False
            try:
                if kind == "query":
                    return self._convert_result(
                        definition, definition.call(make_ctx(self, definition, "query", txn, identity), converted)
                    )
                savepoint = txn.savepoint()
                try:
                    result = self._convert_result(
                        definition, definition.call(make_ctx(self, definition, "mutation", txn, identity), converted)
                    )
                except BaseException:
                    txn.rollback_to(savepoint)
                    raise
                txn.release(savepoint)
                return result
            finally:
                txn.paginated = paginated

        return _wrap_errors(definition, run)

    def _run_inline(self, fn: Callable[[Any], Any]) -> Any:
        if _inside_transaction.get():
            raise ConvexFunctionError("app.run() cannot be called from inside a query or mutation")

        def body(txn: Transaction) -> Any:
            token = _inside_transaction.set(True)
            try:
                result = fn(InlineMutationCtx(self, txn, self._identity))
            finally:
                _inside_transaction.reset(token)
            if inspect.iscoroutine(result):  # e.g. a lambda calling an async function
                result.close()  # never awaited: close it rather than leak a warning
                raise TypeError(_ASYNC_INLINE)  # raised inside the transaction: nothing is written
            if result is MISSING:
                return None
            return canonical_copy(result)

        def execute() -> Any:
            value, txn, retries = run_optimistic(self._db, body, path="(inline)")
            _report(txn.usage, retries, txn.commit_ts)
            return value

        def wrapped() -> Any:
            try:
                return execute()
            except (ConvexError, ConvexFunctionError):
                raise
            except Exception as exc:
                raise ConvexFunctionError(f"Uncaught {type(exc).__name__} in inline mutation: {exc}") from exc

        return self._logged("(inline)", "mutation", wrapped)

    # -- data: import/export (convex_notebook.io), attached by backend/optional.py ---------------
    # (df, import_dataframe and live come from optional.NotebookMethods: pandas loads on use.)
    def infer_schema(self, source: Any) -> Any:
        """A ``define_table(...)`` fitting a DataFrame or a table's documents; string columns
        of this app's document ids become ``v.id(table)``."""
        frame = self.df(source) if isinstance(source, str) else source
        return optional.infer_schema(frame, id_table=self._db.table_name_for_id)

    def export_snapshot(self, path: str | os.PathLike[str], **options: Any) -> str:
        """Write every table to a ZIP in Convex's snapshot layout (``npx convex export``)."""
        return optional.export_snapshot(self, path, **options)

    def import_snapshot(self, path: str | os.PathLike[str], **options: Any) -> dict[str, int]:
        """Restore the tables of a snapshot ZIP, keeping ids (``npx convex import x.zip``)."""
        return optional.import_snapshot(self, path, **options)

    def import_table(self, table: str, path: str | os.PathLike[str], **options: Any) -> int:
        """Import a JSONL, JSON or CSV file into a table (``npx convex import --table``)."""
        return optional.import_table(self, table, path, **options)

    def export_table(self, table: str, path: str | os.PathLike[str], **options: Any) -> int:
        """Write a table's documents to a JSONL, JSON or CSV file."""
        return optional.export_table(self, table, path, **options)

    # -- async actions ----------------------------------------------------------------------
    def _ensure_action_loop(self) -> asyncio.AbstractEventLoop:
        return self._actions.get()

    def _run_coroutine(self, coro: Any, *, timeout: float | None = None, describe: str = "action") -> Any:
        """Run an async action on the backend's action loop, keeping the caller's context
        (so its log capture and identity follow it); past ``timeout`` seconds it is cancelled
        and fails with a LimitError (Convex's action time limit)."""
        loop = self._ensure_action_loop()
        context = contextvars.copy_context()
        if _running_loop() is loop:
            # A blocking app.action(...) from inside an async action: waiting on our own loop
            # would deadlock, so this one runs on a fresh loop in a helper thread.
            with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="convex-nested-action") as pool:
                return pool.submit(context.run, asyncio.run, coro).result()
        done: concurrent.futures.Future = concurrent.futures.Future()

        timed_out: list[bool] = []

        def start() -> None:
            task = loop.create_task(coro, context=context)
            timer = None
            if timeout is not None:
                def time_out() -> None:
                    timed_out.append(True)
                    task.cancel()

                timer = loop.call_later(timeout, time_out)

            def finish(t: asyncio.Task) -> None:
                if timer is not None:
                    timer.cancel()
                if t.cancelled() and timed_out:
                    done.set_exception(LimitError(
                        f"{describe} timed out: it ran more than {timeout:g} s, Convex's limit for actions "
                        "(action_seconds; raise it with cn.Backend(limits=cn.Limits(action_seconds=...)))"
                    ))
                elif t.cancelled():
                    done.set_exception(ConvexFunctionError("The action was cancelled"))
                elif t.exception() is not None:
                    done.set_exception(t.exception())  # type: ignore[arg-type]
                else:
                    done.set_result(t.result())

            task.add_done_callback(finish)

        loop.call_soon_threadsafe(start)
        return done.result()


class _ActionLoop:
    """The event loop that runs async actions, on its own thread, started on first use."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()

    def get(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name="convex-actions", daemon=True).start()
                self._loop = loop
            return self._loop

    def stop(self) -> None:
        with self._lock:
            loop, self._loop = self._loop, None
        if loop is not None:
            loop.call_soon_threadsafe(loop.stop)


def _discard(listeners: list[Any], listener: Any) -> None:
    """Remove a listener if it is still there (stopping twice is harmless)."""
    try:
        listeners.remove(listener)
    except ValueError:
        pass


def _running_loop() -> asyncio.AbstractEventLoop | None:
    """The event loop running on this thread, if any."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _wrap_errors(definition: FunctionDef, fn: Callable[[], Any]) -> Any:
    """Let ConvexError and our own errors through; anything else becomes ConvexFunctionError."""
    try:
        return fn()
    except Exception as exc:
        error = _function_error(definition, exc)
        if error is exc:
            raise
        raise error from exc


def _function_error(definition: FunctionDef, exc: BaseException) -> BaseException:
    """The error a caller sees for ``exc`` raised by ``definition``'s handler."""
    if isinstance(exc, (ConvexError, ConvexFunctionError)):
        return exc
    error = ConvexFunctionError(f"Uncaught {type(exc).__name__} in {definition.kind} {definition.path}: {exc}")
    error.__cause__ = exc
    return error


def _normalize_identity(identity: dict | None) -> dict | None:
    if identity is None:
        return None
    if not isinstance(identity, dict):
        raise TypeError(f"with_identity() takes a dict of identity fields, got {type(identity).__name__}")
    out = dict(identity)
    out.setdefault("subject", str(uuid.uuid4()))
    out.setdefault("issuer", DEFAULT_ISSUER)
    out.setdefault("tokenIdentifier", f"{out['issuer']}|{out['subject']}")
    return convex_value(out)


def _create_private(path: str) -> None:
    """Create a new database file readable by its owner only (it will hold the admin key of a
    served deployment); SQLite gives its WAL files the same mode. An existing file is left."""
    if path == ":memory:" or path.startswith("file:"):
        return
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass
    except OSError:  # e.g. a missing directory: opening the database reports it
        pass


def connect(url: str = "memory://", *, admin_key: str | None = None, **options: Any) -> Any:
    """Open a deployment by URL: ``memory://``, ``sqlite:///path/to/file.sqlite3`` (an
    embedded :class:`Backend`), or ``http://host:port`` (a remote deployment client with the
    same calling, subscribing and data API; ``admin_key`` defaults to
    ``$CONVEX_NOTEBOOK_ADMIN_KEY``). As in SQLAlchemy, ``sqlite:///data/app.sqlite3`` is
    relative to the working directory and ``sqlite:////abs/app.sqlite3`` is absolute."""
    if not isinstance(url, str):
        raise TypeError(f"connect() takes a deployment URL string, got {type(url).__name__}")
    if url in ("memory://", "memory:", ":memory:"):
        return Backend(**options)
    if url.startswith("sqlite://"):
        rest = url[len("sqlite://"):]
        path = rest.removeprefix("/")
        if not path or path.endswith("/"):
            raise ValueError(
                f"Deployment URL {url!r} has no database file: use sqlite:///data/app.sqlite3 "
                "(relative) or sqlite:////abs/path/app.sqlite3 (absolute)"
            )
        return Backend(path, **options)
    if url.startswith(("http://", "https://")):
        if admin_key is None:  # as the server, which takes its key from the same variable
            admin_key = os.environ.get("CONVEX_NOTEBOOK_ADMIN_KEY") or None
        return optional.remote_client(url, admin_key=admin_key, **options)
    raise ValueError(f"Unknown deployment URL {url!r}: use memory://, sqlite:///path or http://host:port")
