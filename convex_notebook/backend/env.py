"""Environment variables: ``app.env`` (read-write, persisted) and ``ctx.env`` (read-only).

Convex keeps a deployment's variables with the deployment and hands them to functions as
``process.env``. Here they are documents ``{"name", "value"}`` of the system table
``_environment_variables`` (index ``by_name``), written by the backend in a write transaction:
they persist with the SQLite file, commits bump the timestamp, and a function reads a variable
through its own transaction, so the read lands in its read set and a live query re-runs when a
variable it read changes. Functions cannot reach the table through ``ctx.db.system``.

A served deployment adds ``CONVEX_CLOUD_URL`` and ``CONVEX_SITE_URL`` (not stored; a variable
of the same name set by hand wins, as a dashboard override would). Values never go to logs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, MutableMapping
from typing import TYPE_CHECKING, Any

from ..engine.query import Query
from ..engine.readset import point_range
from ..engine.transaction import Transaction
from ..errors import ConvexFunctionError
from ..values import encode_value
from .occ import run_optimistic

if TYPE_CHECKING:
    from .app import Backend

__all__ = [
    "ENV_TABLE",
    "MAX_NAME_LENGTH",
    "MAX_VALUE_BYTES",
    "MAX_VARIABLES",
    "EnvError",
    "EnvReader",
    "Environment",
    "EnvironmentMapping",
    "apply_changes",
    "check_name",
    "publish_served_url",
]

ENV_TABLE = "_environment_variables"
ENV_INDEX = "by_name"
MAX_NAME_LENGTH = 40  # Convex's limits page
MAX_VALUE_BYTES = 8 * 1024  # 8 KiB
MAX_VARIABLES = 1000  # the limits page says 1000 (the environment variables page says 100)
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
SYSTEM_VARIABLES = ("CONVEX_CLOUD_URL", "CONVEX_SITE_URL")


class EnvError(ConvexFunctionError, ValueError):
    """A bad environment variable name or value (nothing was changed)."""


def check_name(name: Any) -> str:
    """``name`` if it is a valid variable name, else a clear :class:`EnvError`."""
    if not isinstance(name, str):
        raise EnvError(f"An environment variable name is a string, got {type(name).__name__}")
    if len(name) > MAX_NAME_LENGTH:
        raise EnvError(
            f"Environment variable name {name[:MAX_NAME_LENGTH]!r}... is too long "
            f"({len(name)} characters; at most {MAX_NAME_LENGTH})"
        )
    if not _NAME.match(name):
        raise EnvError(
            f"Invalid environment variable name {name!r}: it must start with a letter and contain "
            "only letters, digits and underscores"
        )
    return name


def _check_value(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise EnvError(f"Environment variable {name}: the value must be a string, got {type(value).__name__}")
    size = len(value.encode("utf-8"))
    if size > MAX_VALUE_BYTES:
        raise EnvError(
            f"Environment variable {name}: the value is too large ({size} bytes; at most {MAX_VALUE_BYTES})"
        )
    return value


def _lookup(txn: Transaction, name: str) -> dict | None:
    """The variable's document, read through ``txn`` (recorded in its read set)."""
    if txn.db.table(ENV_TABLE) is None:
        # Nothing stored yet: read the whole (empty) table so the first write invalidates us.
        return next(iter(Query(txn, ENV_TABLE, system=True)), None)
    return Query(txn, ENV_TABLE, system=True).with_index(ENV_INDEX, lambda q: q.eq("name", name)).first()


def _all(txn: Transaction) -> dict[str, str]:
    if txn.db.table(ENV_TABLE) is None:
        docs: Iterable[dict] = list(Query(txn, ENV_TABLE, system=True))
    else:
        docs = Query(txn, ENV_TABLE, system=True).with_index(ENV_INDEX).collect()
    return {d["name"]: d["value"] for d in docs}


def read_variable(txn: Transaction, name: str) -> str | None:
    found = _lookup(txn, name)
    return found["value"] if found is not None else None


def read_all(txn: Transaction) -> dict[str, str]:
    """Every stored variable, by name (sorted)."""
    return _all(txn)


def apply_changes(backend: Backend, changes: Iterable[tuple[str, str | None]]) -> None:
    """Set (value) or remove (None) variables, all checked first, then in one write transaction."""
    checked: dict[str, str | None] = {}
    for name, value in changes:
        check_name(name)
        checked[name] = None if value is None else _check_value(name, value)
    if not checked:
        return

    def write(txn: Transaction) -> None:
        current = {d["name"]: d for d in _docs(txn)}
        remaining = {n for n in current if checked.get(n, "") is not None} | {n for n, v in checked.items() if v is not None}
        if len(remaining) > MAX_VARIABLES:
            raise EnvError(f"Too many environment variables ({len(remaining)}; at most {MAX_VARIABLES})")
        for name, value in checked.items():
            doc = current.get(name)
            if value is None:
                if doc is not None:
                    txn.delete(doc["_id"], table=ENV_TABLE)
            elif doc is None:
                txn.insert_system(ENV_TABLE, {"name": name, "value": value})
            elif doc["value"] != value:
                txn.patch(doc["_id"], {"value": value}, table=ENV_TABLE)

    run_optimistic(backend.database, write)


def _docs(txn: Transaction) -> list[dict]:
    if txn.db.table(ENV_TABLE) is None:
        return []
    return Query(txn, ENV_TABLE, system=True).collect()


# Not a stored table: the (table, index) that reads and changes of the served URLs go to, so a
# live query that read CONVEX_CLOUD_URL re-runs when the deployment starts or stops serving.
_SERVED = "_served_urls"


def publish_served_url(backend: Backend, url: str | None) -> None:
    """Set (or, with None, clear) the served URL behind CONVEX_CLOUD_URL / CONVEX_SITE_URL,
    as a commit: queries that read them re-run."""
    with backend.database.write() as txn:
        backend.served_url = url
        for name in SYSTEM_VARIABLES:
            txn.writes.add(_SERVED, "by_id", encode_value(name))


def _mark_system_read(txn: Transaction | None, name: str) -> None:
    if txn is not None and name in SYSTEM_VARIABLES:
        txn.reads.add(point_range(_SERVED, "by_id", encode_value(name)))


def _system_variables(backend: Backend) -> dict[str, str]:
    url = getattr(backend, "served_url", None)
    if not url:
        return {}
    return {"CONVEX_CLOUD_URL": url, "CONVEX_SITE_URL": url}


class EnvReader(Mapping[str, str]):
    """``ctx.env``: the deployment's variables, read-only (Convex's ``process.env``).

    ``ctx.env["KEY"]`` (KeyError when unset), ``ctx.env.get("KEY", default)``, ``"KEY" in
    ctx.env``, iteration. In queries and mutations each read goes through the function's
    transaction; in actions each read is a fresh snapshot.
    """

    def __init__(self, backend: Backend, txn: Transaction | None) -> None:
        self._backend = backend
        self._txn = txn

    def _read(self, fn: Any) -> Any:
        if self._txn is not None:
            return fn(self._txn)
        with self._backend.database.read() as txn:
            return fn(txn)

    def __getitem__(self, name: str) -> str:
        if not isinstance(name, str):
            raise KeyError(name)
        value = self._read(lambda txn: read_variable(txn, name)) if _NAME.match(name) else None
        if value is None:
            _mark_system_read(self._txn, name)
            value = _system_variables(self._backend).get(name)
        if value is None:
            raise KeyError(name)
        return value

    def _snapshot(self) -> dict[str, str]:
        for name in SYSTEM_VARIABLES:
            _mark_system_read(self._txn, name)
        return {**_system_variables(self._backend), **self._read(read_all)}

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._snapshot()))

    def __len__(self) -> int:
        return len(self._snapshot())

    def __setitem__(self, name: str, value: Any) -> None:
        raise TypeError("ctx.env is read-only inside functions: set variables with app.env[name] = value")

    def __delitem__(self, name: str) -> None:
        raise TypeError("ctx.env is read-only inside functions: remove variables with del app.env[name]")

    def __repr__(self) -> str:
        return f"<ctx.env: {', '.join(self) or 'no variables'}>"  # names only: values stay private


class EnvironmentMapping(MutableMapping[str, str]):
    """A deployment's variables as a mapping, the same on both sides of the contract: a
    subclass reads them all (``_stored``) and writes a batch of changes in one commit
    (``_apply``: ``(name, value or None to remove)``, every name and value checked first)."""

    def _stored(self) -> dict[str, str]:
        raise NotImplementedError

    def _apply(self, changes: list[tuple[str, str | None]]) -> None:
        raise NotImplementedError

    def __setitem__(self, name: str, value: str) -> None:
        self._apply([(name, value)])

    def __delitem__(self, name: str) -> None:
        check_name(name)
        if name not in self:
            raise KeyError(name)
        self._apply([(name, None)])

    def __iter__(self) -> Iterator[str]:
        return iter(self._stored())

    def __len__(self) -> int:
        return len(self._stored())

    def update(self, other: Any = (), /, **kwargs: str) -> None:  # type: ignore[override]
        """Set several variables in one commit (all checked first: a bad one changes nothing)."""
        self._apply(list(other.items() if isinstance(other, Mapping) else other) + list(kwargs.items()))

    def set(self, name: str, value: str | None) -> None:
        """Set ``name`` (``None`` removes it, silently if unset)."""
        self._apply([(name, value)])

    def to_dict(self) -> dict[str, str]:
        return self._stored()


class Environment(EnvironmentMapping):
    """``app.env``: the deployment's variables, persisted with it. Setting or removing one is a
    commit (live queries that read it re-run); ``update()`` changes several in one commit.
    The served ``CONVEX_CLOUD_URL`` / ``CONVEX_SITE_URL`` show in ``ctx.env`` only."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend

    def _stored(self) -> dict[str, str]:
        with self._backend.database.read() as txn:
            return read_all(txn)

    def _apply(self, changes: list[tuple[str, str | None]]) -> None:
        apply_changes(self._backend, changes)

    def __getitem__(self, name: str) -> str:
        if not isinstance(name, str) or not _NAME.match(name):
            raise KeyError(name)
        with self._backend.database.read() as txn:
            value = read_variable(txn, name)
        if value is None:
            raise KeyError(name)
        return value

    def __repr__(self) -> str:
        names = list(self)
        return f"<app.env: {len(names)} variables ({', '.join(names)})>" if names else "<app.env: empty>"
