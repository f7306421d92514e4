"""The ``ctx`` objects handed to functions: ``ctx.db``, ``ctx.auth``, ``ctx.run_*``, ``ctx.now()``."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from ..engine.query import Query
from ..engine.transaction import DatabaseError, Transaction
from ..values import decode_id
from .awaitable import AsyncFriendly
from .env import ENV_TABLE, EnvReader
from .limits import TimedQuery, db_time, held
from .scheduler import Scheduler
from .storage import ActionStorage, InlineStorage, StorageReader, StorageWriter

if TYPE_CHECKING:
    from .app import Backend

__all__ = [
    "ActionCtx", "Auth", "DatabaseReader", "DatabaseWriter", "MutationCtx", "QueryCtx", "SystemReader", "TableReader",
    "TableWriter",
]

_NO_ARG = object()


class SystemReader:
    """``ctx.db.system``: read-only access to system tables (``_scheduled_functions``)."""

    def __init__(self, txn: Transaction) -> None:
        self._txn = txn

    def get(self, table_or_id: Any, doc_id: Any = _NO_ARG) -> dict | None:
        """``get(id)`` or ``get("_scheduled_functions", id)``."""
        if doc_id is not _NO_ARG:
            table = _table_arg(table_or_id, "system.get")
            if not table.startswith("_"):
                raise DatabaseError(f"db.system.get({table!r}, ...): not a system table (use ctx.db.get)")
            _check_readable(table)
            with db_time():
                found = self._txn.get(doc_id, table=table, only="system")
        else:
            with db_time():
                found = self._txn.get(table_or_id, only="system")
        if found is not None and self._txn.db.table_name_for_id(found["_id"]) == ENV_TABLE:
            return None  # environment variables: ctx.env only
        return found

    def query(self, table: str) -> Query:
        _check_readable(table)
        return TimedQuery(Query(self._txn, table, system=True))  # type: ignore[return-value]

    def __repr__(self) -> str:
        return "<SystemReader>"


def _crosses_in(ref: Any) -> bool:
    """Whether calling ``ref`` enters a component (backend/components.py): the caller's identity
    stays behind, as in Convex."""
    return type(ref).__name__ in ("ComponentRef", "MountedFunctionDef") or (isinstance(ref, str) and ref.count(":") == 2)


def _app_table(table: Any, op: str) -> Any:
    """The app's ``ctx.db`` never reaches a component's tables (``mount/table``)."""
    if isinstance(table, str) and "/" in table:
        raise DatabaseError(f"db.{op}({table!r}): that table belongs to a component (call its functions instead)")
    return table


def _app_id(txn: Transaction, doc_id: Any, op: str) -> Any:
    name = txn.db.table_name_for_id(doc_id) if isinstance(doc_id, str) else None
    if name is not None and "/" in name:
        raise DatabaseError(f"db.{op}: {doc_id!r} is an id of a component's table ({name})")
    return doc_id


def _check_readable(table: Any) -> None:
    if table == ENV_TABLE:
        raise DatabaseError(f"{ENV_TABLE} is not readable through ctx.db.system: read variables with ctx.env")


class DatabaseReader:
    """``ctx.db`` in queries: ``get``, ``query``, ``normalize_id``, ``system``, ``table``."""

    def __init__(self, txn: Transaction) -> None:
        self._txn = txn

    def get(self, table_or_id: Any, doc_id: Any = _NO_ARG) -> dict | None:
        """``get(id)`` or ``get(table, id)``: the document, or None if it doesn't exist."""
        with db_time():
            if doc_id is _NO_ARG:
                return self._txn.get(_app_id(self._txn, table_or_id, "get"), only="user")
            return self._txn.get(doc_id, table=_app_table(_table_arg(table_or_id, "get"), "get"), only="user")

    def table(self, name: str) -> TableReader:
        """A reader scoped to one table (Convex's ``ctx.db.table(name)``): ``get(id)`` and
        ``query()``; in mutations also ``insert``, ``patch``, ``replace``, ``delete``. An id of
        another table is refused."""
        if not isinstance(name, str) or not name or name.startswith("_"):
            raise DatabaseError(f"db.table() takes a user table name, got {name!r}")
        return (TableWriter if isinstance(self, DatabaseWriter) else TableReader)(self, name)

    @property
    def system(self) -> SystemReader:
        """System tables, read-only: ``ctx.db.system.query("_scheduled_functions")``."""
        return SystemReader(self._txn)

    def query(self, table: str) -> Query:
        return TimedQuery(Query(self._txn, _app_table(table, "query")))  # type: ignore[return-value]

    def normalize_id(self, table: str, id_string: Any) -> str | None:
        """``id_string`` if it is a valid id of ``table``, else None (existence isn't checked)."""
        if not isinstance(id_string, str):
            return None
        decoded = decode_id(id_string)
        if decoded is None:
            return None
        info = self._txn.db.table_by_number(decoded[0])
        return id_string if info is not None and info.name == table else None

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"


class DatabaseWriter(DatabaseReader):
    """``ctx.db`` in mutations: adds ``insert``, ``patch``, ``replace``, ``delete``."""

    def insert(self, table: str, document: dict) -> str:
        with db_time():
            return self._txn.insert(_app_table(table, "insert"), document)

    def patch(self, *args: Any) -> None:
        """``patch(id, fields)`` or ``patch(table, id, fields)``: shallow merge; MISSING removes."""
        table, doc_id, value = _split_write_args("patch", args)
        _app_id(self._txn, doc_id, "patch")
        with db_time():
            self._txn.patch(doc_id, value, table=table, only="user")

    def replace(self, *args: Any) -> None:
        """``replace(id, doc)`` or ``replace(table, id, doc)``: swap all user fields."""
        table, doc_id, value = _split_write_args("replace", args)
        _app_id(self._txn, doc_id, "replace")
        with db_time():
            self._txn.replace(doc_id, value, table=table, only="user")

    def delete(self, table_or_id: Any, doc_id: Any = _NO_ARG) -> None:
        _app_id(self._txn, table_or_id if doc_id is _NO_ARG else doc_id, "delete")
        with db_time():
            if doc_id is _NO_ARG:
                self._txn.delete(table_or_id, only="user")
            else:
                self._txn.delete(doc_id, table=_table_arg(table_or_id, "delete"), only="user")


class TableReader:
    """``ctx.db.table("tasks")``: ``get(id)``, ``query()`` on one table."""

    def __init__(self, db: DatabaseReader, name: str) -> None:
        self._db = db
        self.name = name

    def get(self, doc_id: Any) -> dict | None:
        return self._db.get(self.name, doc_id)

    def query(self) -> Query:
        return self._db.query(self.name)

    def normalize_id(self, id_string: Any) -> str | None:
        return self._db.normalize_id(self.name, id_string)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


class TableWriter(TableReader):
    """``ctx.db.table("tasks")`` in mutations: adds ``insert``, ``patch``, ``replace``, ``delete``."""

    _db: DatabaseWriter

    def insert(self, document: dict) -> str:
        return self._db.insert(self.name, document)

    def patch(self, doc_id: Any, fields: dict) -> None:
        self._db.patch(self.name, doc_id, fields)

    def replace(self, doc_id: Any, document: dict) -> None:
        self._db.replace(self.name, doc_id, document)

    def delete(self, doc_id: Any) -> None:
        self._db.delete(self.name, doc_id)


def _table_arg(table: Any, op: str) -> str:
    if not isinstance(table, str):
        raise DatabaseError(f"db.{op}(table, id): the table must be a string, got {table!r}")
    return table


def _split_write_args(op: str, args: tuple) -> tuple[str | None, Any, Any]:
    if len(args) == 2:
        return None, args[0], args[1]
    if len(args) == 3:
        return _table_arg(args[0], op), args[1], args[2]
    raise DatabaseError(f"db.{op}() takes (id, value) or (table, id, value), got {len(args)} arguments")


class Auth:
    """``ctx.auth``: the caller's identity (a dict with ``subject``, ``issuer``, ``tokenIdentifier``...)."""

    def __init__(self, identity: dict | None, on_read: Any = None) -> None:
        self._identity = identity
        self._on_read = on_read

    def get_user_identity(self) -> dict | None:
        if self._on_read is not None:
            self._on_read()
        return dict(self._identity) if self._identity is not None else None


class QueryCtx:
    """The ``ctx`` of a query: read-only ``db``, ``auth``, ``run_query``, ``now()``."""

    _db_class: type[DatabaseReader] = DatabaseReader
    _storage_class: type[StorageReader] = StorageReader

    def __init__(self, backend: Backend, txn: Transaction, identity: dict | None) -> None:
        self._backend = backend
        self._txn = txn
        self._identity = identity
        self.db = self._db_class(txn)
        self._auth: Auth | None = None

    @property
    def auth(self) -> Auth:
        """The caller's identity (made on first use: most functions never look)."""
        auth = self._auth
        if auth is None:
            auth = self._auth = Auth(self._identity, on_read=self._mark_identity_read)
        return auth

    def _mark_identity_read(self) -> None:
        self._txn.reads.read_identity = True

    @property
    def env(self) -> EnvReader:
        """The deployment's environment variables, read-only (Convex's ``process.env``): a read
        is part of this transaction, so a live query re-runs when a variable it read changes."""
        return EnvReader(self._backend, self._txn)

    def now(self) -> float:
        """The transaction's frozen time in ms since the epoch (Convex's ``Date.now()``)."""
        self._txn.read_time = True  # a cached result that read the clock expires eventually
        return self._txn.now_ms

    def run_query(self, ref: Any, args: dict | None = None) -> Any:
        """Run a query in this same transaction (with its argument and return validation)."""
        identity = None if _crosses_in(ref) else self._identity
        return self._backend._run_in_transaction(ref, args, self._txn, identity, kind="query")

    @property
    def storage(self) -> StorageReader:
        """File storage: ``get_url(id)`` (mutations add ``generate_upload_url``, ``delete``)."""
        return self._storage_class(self._backend, self._txn)

    def vector_search(self, *args: Any, **kwargs: Any) -> Any:
        raise DatabaseError(
            "ctx.vector_search is available in actions only (as in Convex): search in an action, "
            "then read the documents with ctx.run_query"
        )


class MutationCtx(QueryCtx):
    """The ``ctx`` of a mutation: adds writes and ``run_mutation`` (a sub-transaction)."""

    db: DatabaseWriter
    _db_class = DatabaseWriter
    _storage_class = StorageWriter

    def run_mutation(self, ref: Any, args: dict | None = None) -> Any:
        """Run a mutation as a sub-transaction: if it raises, only its own writes roll back."""
        identity = None if _crosses_in(ref) else self._identity
        return self._backend._run_in_transaction(ref, args, self._txn, identity, kind="mutation")

    @property
    def scheduler(self) -> Scheduler:
        """``run_after(ms, ref, args)``, ``run_at(when, ref, args)``, ``cancel(id)``: part of
        this mutation's transaction (nothing is scheduled if it fails)."""
        return Scheduler(self._backend, self._txn)


class InlineMutationCtx(MutationCtx):
    """The ``ctx`` of ``app.run(lambda ctx: ...)``: a mutation's, whose ``ctx.storage`` can also
    ``store`` and ``get`` files in its transaction (as convex-test's ``t.run``)."""

    _storage_class = InlineStorage


class ActionCtx:
    """The ``ctx`` of an action: no ``db``; each ``run_*`` call is its own transaction.

    In an ``async def`` action the ``run_*`` methods return awaitables; in a plain ``def``
    action they return the result directly.
    """

    def __init__(self, backend: Backend, identity: dict | None, *, is_async: bool, now_ms: float) -> None:
        self._backend = backend
        self._identity = identity
        self._is_async = is_async
        self._now = now_ms
        self.auth = Auth(identity)

    def now(self) -> float:
        return self._now

    @property
    def env(self) -> EnvReader:
        """The deployment's environment variables, read-only (each read: the latest values)."""
        return EnvReader(self._backend, None)

    def _run(self, kind: str, ref: Any, args: dict | None) -> Any:
        identity = None if _crosses_in(ref) else self._identity
        call = lambda: self._backend._call(ref, args, kind=kind, identity=identity, admin=True, top=False)
        if self._is_async:
            return asyncio.to_thread(call)
        with held():  # the action's clock runs on, but it is never interrupted inside the call
            return call()

    def run_query(self, ref: Any, args: dict | None = None) -> Any:
        return self._run("query", ref, args)

    def run_mutation(self, ref: Any, args: dict | None = None) -> Any:
        return self._run("mutation", ref, args)

    def run_action(self, ref: Any, args: dict | None = None) -> Any:
        return self._run("action", ref, args)

    @property
    def db(self) -> Any:
        raise AttributeError("Actions have no ctx.db: use ctx.run_query / ctx.run_mutation")

    @property
    def scheduler(self) -> Scheduler:
        """``run_after / run_at / cancel``; each call commits at once (an action is no transaction).
        In an ``async def`` action each call can also be awaited (``await ctx.scheduler.run_after(...)``)."""
        scheduler = Scheduler(self._backend, None)
        return AsyncFriendly(scheduler) if self._is_async else scheduler  # type: ignore[return-value]

    @property
    def storage(self) -> ActionStorage:
        """File storage: ``store``, ``get``, ``get_url``, ``delete``, ``generate_upload_url``,
        ``get_metadata`` (each its own transaction); awaitable in an ``async def`` action."""
        storage = ActionStorage(self._backend)
        return AsyncFriendly(storage) if self._is_async else storage  # type: ignore[return-value]

    def vector_search(self, table: str, index: str, query: dict | None = None, **options: Any) -> Any:
        """``[{"_id", "_score"}]``, best first: ``vector_search("foods", "by_embedding",
        {"vector": [...], "limit": 16, "filter": lambda q: q.eq("cuisine", "French")})``
        (see ``backend/vector_search.py``). In an ``async def`` action, await it."""
        search = lambda: self._backend._vectors.search(table, index, query, **options)
        return asyncio.to_thread(search) if self._is_async else search()
