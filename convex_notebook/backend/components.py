"""Components (API.md §10): reusable pieces of backend with their own tables and functions.

    counter = cn.Component("counter", schema=cn.define_schema({"counts": cn.define_table(...)}))
    public = counter.module("public")

    @public.mutation(args={"name": v.string()})
    def add(ctx, name): ...                    # ctx.db sees only this mount's tables

    app.use(counter)                           # mounted as "counter"; app.use(counter, name="likes") again
    app.components.counter.public.add          # a reference: ctx.run_mutation(ref, ...), app.mutation(ref, ...)

How it is kept apart, as in Convex:

* **Tables**: a mount's table ``counts`` is the table ``counter/counts`` of the database (a name
  no app code can make: ``/`` is not allowed in a table name). Inside the component ``ctx.db``
  maps names to its own tables and refuses ids of any other; the app's ``ctx.db`` refuses the
  component's tables and ids. The component's schema is merged into the database's (its tables
  and ``v.id`` validators renamed), so its documents are validated and its indexes exist.
  ``app.table_names()``, ``app.df("counter/counts")`` and snapshot exports show them by that name.
* **Functions**: mounted as ``counter:public:add`` (two colons: no app path looks like that),
  listed by ``app.functions()``. They are never reachable by clients: only a reference object
  (from Python), the deployment's own functions, or an admin (the admin key) can call them.
* **Calls**: the caller's identity does not cross into a component (``get_user_identity()`` is
  None there; a direct call from a cell keeps the cell's identity, as in convex-test); a
  ``ConvexError`` crosses back with its data; a failed component mutation called with
  ``ctx.run_mutation`` rolls back only its own writes (a sub-transaction). Inside a component,
  string paths (``"public:add"``) name the component's own functions.
* Components have no environment variables (``ctx.env`` is empty) and no system tables of their
  own yet (``ctx.db.system`` is refused inside them).
"""

from __future__ import annotations

import re
import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..engine.query import Query
from ..engine.transaction import DatabaseError, Transaction
from ..values import decode_id
from ..values.schema import SchemaDefinition, TableDefinition
from .context import ActionCtx, MutationCtx, QueryCtx, TableReader, TableWriter
from .limits import TimedQuery, db_time
from .registry import FunctionDef, FunctionNotFound, canonical_path, make_definition

if TYPE_CHECKING:
    from .app import Backend

__all__ = ["Component", "ComponentRef", "Components", "Mount"]

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_NO_ARG = object()


# -- definition ---------------------------------------------------------------------------------
class Component:
    """A component: a schema and functions, defined once, mounted with ``app.use(...)``."""

    def __init__(self, name: str, schema: SchemaDefinition | None = None) -> None:
        if not isinstance(name, str) or not _NAME.match(name):
            raise ValueError(f"A component name is an identifier (letters, digits, underscores), got {name!r}")
        if schema is not None and not isinstance(schema, SchemaDefinition):
            raise TypeError(f"Component(schema=) takes cn.define_schema(...), got {type(schema).__name__}")
        self.name = name
        self.schema = schema
        self.functions: dict[str, FunctionDef] = {}  # "module:fn" → definition
        self._mounts: list[Mount] = []

    def module(self, name: str) -> ComponentModule:
        """``counter.module("public")``: functions decorated there are ``public:<fn>``."""
        if not isinstance(name, str) or not name or ":" in name:
            raise ValueError(f"A module name is a path like 'public' or 'lib/util', got {name!r}")
        return ComponentModule(self, name)

    def _register(self, definition: FunctionDef) -> FunctionDef:
        self.functions[definition.path] = definition
        for mount in list(self._mounts):
            mount.changed(definition.path)
        return definition

    def __repr__(self) -> str:
        tables = len(self.schema.tables) if self.schema else 0
        return f"<Component {self.name}: {tables} tables, {len(self.functions)} functions>"


class ComponentModule:
    """The decorators of one module of a component (``@public.query``, ``@public.mutation`` ...)."""

    def __init__(self, component: Component, name: str) -> None:
        self._component = component
        self._module = name

    def _decorator(self, kind: str, internal: bool, target: Any, args: Any, name: str | None, returns: Any) -> Any:
        def decorate(fn: Callable[..., Any]) -> ComponentFunction:
            definition = make_definition(
                kind, fn, internal=internal, name=name, module=self._module, args=args, returns=returns
            )
            self._component._register(definition)
            return ComponentFunction(self._component, definition)

        if target is None:
            return decorate
        if callable(target):
            return decorate(target)
        raise TypeError(
            f"@{self._module}.{kind} decorates a function; call a component's functions through "
            f"app.components.<mount>.{self._module}.<function>"
        )

    def query(self, target: Any = None, *, args: Any = None, name: str | None = None, returns: Any = None) -> Any:
        return self._decorator("query", False, target, args, name, returns)

    def mutation(self, target: Any = None, *, args: Any = None, name: str | None = None, returns: Any = None) -> Any:
        return self._decorator("mutation", False, target, args, name, returns)

    def action(self, target: Any = None, *, args: Any = None, name: str | None = None, returns: Any = None) -> Any:
        return self._decorator("action", False, target, args, name, returns)

    def internal_query(self, target: Any = None, *, args: Any = None, name: str | None = None, returns: Any = None) -> Any:
        return self._decorator("query", True, target, args, name, returns)

    def internal_mutation(self, target: Any = None, *, args: Any = None, name: str | None = None, returns: Any = None) -> Any:
        return self._decorator("mutation", True, target, args, name, returns)

    def internal_action(self, target: Any = None, *, args: Any = None, name: str | None = None, returns: Any = None) -> Any:
        return self._decorator("action", True, target, args, name, returns)

    def __repr__(self) -> str:
        return f"<ComponentModule {self._component.name}:{self._module}>"


class ComponentFunction:
    """What a component's decorators return: the plain function, still callable, and its path."""

    def __init__(self, component: Component, definition: FunctionDef) -> None:
        self.component = component
        self.definition = definition
        self.__wrapped__ = definition.handler
        self.__name__ = getattr(definition.handler, "__name__", definition.path)

    @property
    def path(self) -> str:
        return self.definition.path

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.definition.handler(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<{self.definition.kind} {self.component.name}/{self.path}>"


# -- mounting -------------------------------------------------------------------------------------
@dataclass
class MountedFunctionDef(FunctionDef):
    """A component's function as mounted: its path is ``mount:module:fn``."""

    mount: Mount | None = None
    local_path: str = ""


@dataclass(frozen=True)
class ComponentRef:
    """``app.components.counter.public.add``: a reference to a mounted function."""

    mount: str
    local_path: str

    @property
    def path(self) -> str:
        return f"{self.mount}:{self.local_path}"

    def __repr__(self) -> str:
        return f"<component function {self.path}>"


class Mount:
    """One mount of a component in a backend: its name, its tables' prefix, its functions."""

    def __init__(self, backend: Backend, component: Component, name: str) -> None:
        self.backend = backend
        self.component = component
        self.name = name
        self.prefix = f"{name}/"
        self._defs: dict[str, MountedFunctionDef] = {}

    def physical(self, table: Any, op: str) -> str:
        """The database table of the component's ``table``."""
        if not isinstance(table, str) or not _NAME.match(table):
            raise DatabaseError(f"db.{op}: {table!r} is not a table name of component {self.name}")
        return self.prefix + table

    def owns_id(self, txn: Transaction, doc_id: Any) -> bool:
        name = txn.db.table_name_for_id(doc_id) if isinstance(doc_id, str) else None
        return name is not None and name.startswith(self.prefix)

    def lookup(self, local: str) -> MountedFunctionDef | None:
        definition = self.component.functions.get(local)
        if definition is None and ":" not in local:
            definition = self.component.functions.get(f"{local}:default")
        if definition is None:
            return None
        mounted = self._defs.get(definition.path)
        if mounted is None or mounted.handler is not definition.handler or mounted.args is not definition.args:
            fields = {f: getattr(definition, f) for f in ("kind", "internal", "handler", "args", "returns", "pass_args_dict")}
            mounted = MountedFunctionDef(path=f"{self.name}:{definition.path}", mount=self, local_path=definition.path, **fields)
            self._defs[definition.path] = mounted
        return mounted

    def functions(self) -> list[MountedFunctionDef]:
        return [d for d in (self.lookup(p) for p in sorted(self.component.functions)) if d is not None]

    def changed(self, local: str) -> None:
        """A function was (re)defined: live queries using it re-run."""
        self.backend.registry_changed(f"{self.name}:{local}")


class Components:
    """``app.components``: the mounts, by name (``app.components.counter.public.add``)."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend
        self.mounts: dict[str, Mount] = {}

    def use(self, component: Component, name: str | None = None) -> Mount:
        if not isinstance(component, Component):
            raise TypeError(f"app.use() takes a cn.Component(...), got {type(component).__name__}")
        name = component.name if name is None else name
        if not isinstance(name, str) or not _NAME.match(name):
            raise ValueError(f"A mount name is an identifier (letters, digits, underscores), got {name!r}")
        existing = self.mounts.get(name)
        if existing is not None and existing.component is not component:
            raise ValueError(f"{name!r} is already mounted ({existing.component!r}): choose another name=")
        if existing is not None:
            return existing
        mount = Mount(self._backend, component, name)
        self.mounts[name] = mount
        component._mounts.append(mount)
        try:
            self._backend._apply_schema()
        except BaseException:
            del self.mounts[name]
            component._mounts.remove(mount)
            raise
        return mount

    def resolve(self, ref: Any) -> MountedFunctionDef | None:
        """The mounted function ``ref`` names: a reference, a mounted definition, or an admin's
        path ``"mount:module:fn"``; None if ``ref`` is no component path."""
        if isinstance(ref, MountedFunctionDef):
            return ref
        if isinstance(ref, ComponentRef):
            mount = self.mounts.get(ref.mount)
            found = mount.lookup(ref.local_path) if mount is not None else None
            if found is None:
                raise FunctionNotFound(f"Could not find function for '{ref.path}' (is the component mounted?)")
            return found
        if isinstance(ref, str) and ref.count(":") == 2:
            mount_name, _, local = ref.partition(":")
            mount = self.mounts.get(mount_name)
            if mount is not None:
                return mount.lookup(canonical_path(local))
        return None

    def functions(self) -> list[MountedFunctionDef]:
        return [d for m in self.mounts.values() for d in m.functions()]

    def merged_schema(self, schema: SchemaDefinition | None) -> SchemaDefinition | None:
        """The app's schema with every mount's tables (renamed ``mount/table``)."""
        extra: dict[str, TableDefinition] = {}
        for mount in self.mounts.values():
            if mount.component.schema is None:
                continue
            for table, definition in mount.component.schema.tables.items():
                extra[mount.prefix + table] = _renamed(definition, mount)
        if not extra:
            return schema
        merged = SchemaDefinition(dict(schema.tables) if schema else {},
                                  schema_validation=schema.schema_validation if schema else True)
        merged.tables.update(extra)
        return merged

    def __getattr__(self, name: str) -> _MountView:
        mount = self.__dict__.get("mounts", {}).get(name)
        if mount is None:
            raise AttributeError(f"No component mounted as {name!r} (mounted: {', '.join(self.mounts) or 'none'})")
        return _MountView(mount.name, "")

    def __dir__(self) -> list[str]:
        return list(self.mounts)

    def __repr__(self) -> str:
        return f"<app.components: {', '.join(f'{n} ({m.component.name})' for n, m in self.mounts.items()) or 'none'}>"


class _MountView:
    """``app.components.counter.public`` → ``.add`` is a :class:`ComponentRef`."""

    def __init__(self, mount: str, module: str) -> None:
        self._mount = mount
        self._module = module

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        if not self._module:
            return _MountView(self._mount, name)
        return ComponentRef(self._mount, f"{self._module}:{name}")

    def __repr__(self) -> str:
        return f"<{self._mount}{'.' + self._module if self._module else ''}>"


def _renamed(definition: TableDefinition, mount: Mount) -> TableDefinition:
    """A component table's definition with ``v.id("t")`` → ``v.id("mount/t")``."""
    data = definition.to_json()

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            out = {k: walk(val) for k, val in node.items()}
            if out.get("type") == "id" and isinstance(out.get("tableName"), str) and not out["tableName"].startswith("_"):
                out["tableName"] = mount.prefix + out["tableName"]
            return out
        if isinstance(node, list):
            return [walk(x) for x in node]
        return node

    renamed = TableDefinition.from_json(walk(data))
    renamed.name = None
    return renamed


# -- inside a component ---------------------------------------------------------------------------
class ComponentDatabaseReader:
    """``ctx.db`` inside a component: its own tables only (see module docstring)."""

    def __init__(self, txn: Transaction, mount: Mount) -> None:
        self._txn = txn
        self._mount = mount

    def _own(self, doc_id: Any, op: str) -> Any:
        if not self._mount.owns_id(self._txn, doc_id):
            raise DatabaseError(f"db.{op}: {doc_id!r} is not an id of a table of component {self._mount.name}")
        return doc_id

    def get(self, table_or_id: Any, doc_id: Any = _NO_ARG) -> dict | None:
        with db_time():
            if doc_id is _NO_ARG:
                return self._txn.get(self._own(table_or_id, "get"), only="user")
            return self._txn.get(doc_id, table=self._mount.physical(table_or_id, "get"), only="user")

    def query(self, table: str) -> Query:
        return TimedQuery(Query(self._txn, self._mount.physical(table, "query")))  # type: ignore[return-value]

    def normalize_id(self, table: str, id_string: Any) -> str | None:
        if not isinstance(id_string, str) or decode_id(id_string) is None:
            return None
        name = self._txn.db.table_name_for_id(id_string)
        return id_string if name == self._mount.physical(table, "normalize_id") else None

    def table(self, name: str) -> TableReader:
        self._mount.physical(name, "table")
        return (TableWriter if isinstance(self, ComponentDatabaseWriter) else TableReader)(self, name)  # type: ignore[arg-type]

    @property
    def system(self) -> Any:
        raise DatabaseError(f"ctx.db.system is not available inside component {self._mount.name}")

    def __repr__(self) -> str:
        return f"<ctx.db of component {self._mount.name}>"


class ComponentDatabaseWriter(ComponentDatabaseReader):
    """``ctx.db`` in a component's mutations: writes to its own (schema-declared) tables."""

    def insert(self, table: str, document: dict) -> str:
        physical = self._mount.physical(table, "insert")
        if self._txn.db.table(physical) is None:
            raise DatabaseError(
                f"db.insert: component {self._mount.name} has no table {table!r} "
                "(a component's tables are declared in its schema)"
            )
        with db_time():
            return self._txn.insert(physical, document)

    def _split(self, op: str, args: tuple) -> tuple[str | None, Any, Any]:
        if len(args) == 2:
            return None, self._own(args[0], op), args[1]
        if len(args) == 3:
            return self._mount.physical(args[0], op), args[1], args[2]
        raise DatabaseError(f"db.{op}() takes (id, value) or (table, id, value), got {len(args)} arguments")

    def patch(self, *args: Any) -> None:
        table, doc_id, value = self._split("patch", args)
        with db_time():
            self._txn.patch(doc_id, value, table=table, only="user")

    def replace(self, *args: Any) -> None:
        table, doc_id, value = self._split("replace", args)
        with db_time():
            self._txn.replace(doc_id, value, table=table, only="user")

    def delete(self, table_or_id: Any, doc_id: Any = _NO_ARG) -> None:
        with db_time():
            if doc_id is _NO_ARG:
                self._txn.delete(self._own(table_or_id, "delete"), only="user")
            else:
                self._txn.delete(doc_id, table=self._mount.physical(table_or_id, "delete"), only="user")


_NO_ENV: Any = types.MappingProxyType({})


class _InComponent:
    """What every component ctx shares: string paths name the component's own functions."""

    _mount: Mount

    def _local(self, ref: Any) -> Any:
        if isinstance(ref, str) and ref.count(":") < 2:
            found = self._mount.lookup(canonical_path(ref))
            if found is None:
                raise FunctionNotFound(f"Could not find function for '{ref}' in component {self._mount.name}")
            return found
        return ref

    @property
    def env(self) -> Any:
        """Components have no environment variables (Convex's components see none)."""
        return _NO_ENV


class ComponentQueryCtx(_InComponent, QueryCtx):
    def __init__(self, backend: Backend, txn: Transaction, identity: dict | None, mount: Mount) -> None:
        self._mount = mount
        super().__init__(backend, txn, identity)
        self.db = self._db_for(txn)

    def _db_for(self, txn: Transaction) -> Any:
        return ComponentDatabaseReader(txn, self._mount)

    def run_query(self, ref: Any, args: dict | None = None) -> Any:
        return super().run_query(self._local(ref), args)


class ComponentMutationCtx(ComponentQueryCtx, MutationCtx):
    def _db_for(self, txn: Transaction) -> Any:
        return ComponentDatabaseWriter(txn, self._mount)

    def run_mutation(self, ref: Any, args: dict | None = None) -> Any:
        return MutationCtx.run_mutation(self, self._local(ref), args)

    @property
    def scheduler(self) -> Any:
        return _LocalScheduler(MutationCtx.scheduler.fget(self), self)  # type: ignore[attr-defined]


class ComponentActionCtx(_InComponent, ActionCtx):
    def __init__(self, backend: Backend, identity: dict | None, *, is_async: bool, now_ms: float, mount: Mount) -> None:
        self._mount = mount
        super().__init__(backend, identity, is_async=is_async, now_ms=now_ms)

    def _run(self, kind: str, ref: Any, args: dict | None) -> Any:
        return super()._run(kind, self._local(ref), args)

    @property
    def scheduler(self) -> Any:
        return _LocalScheduler(ActionCtx.scheduler.fget(self), self)  # type: ignore[attr-defined]


class _LocalScheduler:
    """``ctx.scheduler`` in a component: string paths name the component's functions."""

    def __init__(self, inner: Any, ctx: _InComponent) -> None:
        self._inner = inner
        self._ctx = ctx

    def run_after(self, delay_ms: float, ref: Any, args: dict | None = None) -> Any:
        return self._inner.run_after(delay_ms, self._ctx._local(ref), args)

    def run_at(self, when: Any, ref: Any, args: dict | None = None) -> Any:
        return self._inner.run_at(when, self._ctx._local(ref), args)

    def cancel(self, job_id: str) -> Any:
        return self._inner.cancel(job_id)


def make_ctx(backend: Backend, definition: FunctionDef, kind: str, txn: Transaction | None, identity: dict | None,
             **action: Any) -> Any:
    """The ``ctx`` for running ``definition`` (a component's for a mounted function)."""
    mount = getattr(definition, "mount", None)
    if kind == "action":
        if mount is None:
            return ActionCtx(backend, identity, **action)
        return ComponentActionCtx(backend, identity, mount=mount, **action)
    cls: Any
    if mount is None:
        cls = MutationCtx if kind == "mutation" else QueryCtx
        return cls(backend, txn, identity)
    cls = ComponentMutationCtx if kind == "mutation" else ComponentQueryCtx
    return cls(backend, txn, identity, mount)

