"""A functions folder deployed the way ``npx convex dev`` pushes ``convex/``.

    project = FunctionsFolder(app, "convex")
    report = project.deploy()          # every file; again later: only the files that changed
    print(report.summary())            # "tasks: add, list; schema: 2 tables; crons: 1"

Each ``.py`` file is a module named from its path (``convex/tasks.py`` → ``tasks:*``,
``convex/lib/util.py`` → ``lib/util:*``). Inside a file, ``@cn.query`` / ``@cn.mutation`` /
``@cn.action`` and the ``cn.internal_*`` twins (Convex's ``_generated/server`` imports), or
``@app.query`` on the injected ``app``, define that module's functions. The special files are
Convex's: ``schema.py`` (a top-level ``schema``), ``crons.py`` (``crons = cn.CronJobs()``),
``http.py`` (``http = cn.HttpRouter()`` or ``@app.http.route``) and ``auth.config.py``
(``providers = [...]`` or ``config = {"providers": [...]}``).

A deploy runs every changed file first and changes nothing unless all of them ran: then the
schema is applied, functions registered (live queries using them re-run) and the functions a
file no longer defines removed. A file's error is one line naming the file and line.
"""

from __future__ import annotations

import contextvars
import hashlib
import os
import runpy
import sys
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .crons import CronJobs
from .http_actions import HttpRouter
from .registry import FunctionDef, RegisteredFunction, make_definition

if TYPE_CHECKING:
    from .app import Backend

__all__ = [
    "DeployError",
    "DeployReport",
    "FunctionsFolder",
    "action",
    "internal_action",
    "internal_mutation",
    "internal_query",
    "module_name",
    "mutation",
    "query",
]

SPECIAL_FILES = ("schema.py", "crons.py", "http.py", "auth.config.py")


class DeployError(Exception):
    """A functions file that could not be deployed (one line: file, line, error)."""


# -- module names ---------------------------------------------------------------------------------
def module_name(file: str | os.PathLike[str], root: str | os.PathLike[str] | None = None) -> str:
    """The Convex module a file stands for: its path relative to ``root`` (default: the nearest
    enclosing ``convex/`` folder, else the file's own folder) without ``.py``."""
    path = Path(file).resolve()
    if root is None:
        root_path = next((p for p in path.parents if p.name == "convex"), path.parent)
    else:
        root_path = Path(root).resolve()
    try:
        relative = path.relative_to(root_path)
    except ValueError:
        raise DeployError(f"{path} is not inside the functions folder {root_path}") from None
    name = relative.as_posix()
    if not name.endswith(".py"):
        raise DeployError(f"{path}: a functions file is a .py file")
    return name[: -len(".py")]


# -- decorators of a file being deployed ----------------------------------------------------------
@dataclass
class _Loading:
    """What one file defines while it runs."""

    module: str
    functions: dict[str, FunctionDef] = field(default_factory=dict)

    def define(self, kind: str, internal: bool, fn: Callable[..., Any], args: Any, returns: Any,
               name: str | None, module: str | None = None) -> RegisteredFunction:
        definition = make_definition(kind, fn, internal=internal, name=name, module=module or self.module,
                                     args=args, returns=returns)
        self.functions[definition.path] = definition
        return RegisteredFunction(definition)


_loading: contextvars.ContextVar[_Loading | None] = contextvars.ContextVar("convex_functions_file", default=None)


def _file_decorator(kind: str, internal: bool) -> Callable[..., Any]:
    prefix = "internal_" if internal else ""

    def decorator(target: Any = None, *, args: Any = None, returns: Any = None, name: str | None = None) -> Any:
        loading = _loading.get()
        if loading is None:
            raise RuntimeError(
                f"@cn.{prefix}{kind} defines a function of a functions file being deployed "
                "(convex-notebook dev, serve --functions, %convex deploy); in a notebook use "
                f"@app.{prefix}{kind}"
            )
        if target is None:
            return lambda fn: loading.define(kind, internal, fn, args, returns, name)
        if callable(target) and not isinstance(target, (str, RegisteredFunction)):
            return loading.define(kind, internal, target, args, returns, name)
        raise TypeError(f"@cn.{prefix}{kind} decorates a function, got {type(target).__name__}")

    decorator.__name__ = f"{prefix}{kind}"
    decorator.__doc__ = f"``@cn.{prefix}{kind}`` in a functions file: a {kind} of the file's module."
    return decorator


query = _file_decorator("query", False)
mutation = _file_decorator("mutation", False)
action = _file_decorator("action", False)
internal_query = _file_decorator("query", True)
internal_mutation = _file_decorator("mutation", True)
internal_action = _file_decorator("action", True)


class _ModuleDefiner:
    """``app.module(NAME)`` inside a functions file: defines ``NAME:<fn>`` with the file."""

    def __init__(self, app: Backend, loading: _Loading, module: str) -> None:
        self._app, self._loading, self._module = app, loading, module

    def _kind(self, kind: str, internal: bool) -> Callable[..., Any]:
        real = getattr(self._app.module(self._module) if self._module else self._app,
                       f"{'internal_' if internal else ''}{kind}")

        def decorator(target: Any = None, args: Any = None, *, returns: Any = None, name: str | None = None) -> Any:
            if isinstance(target, (str, RegisteredFunction)):
                return real(target, args)  # a call by name: app.query("m:f", args)
            if target is None:
                return lambda fn: self._loading.define(kind, internal, fn, args, returns, name, self._module)
            return self._loading.define(kind, internal, target, args, returns, name, self._module)

        return decorator

    def __getattr__(self, name: str) -> Any:
        kinds = {"query": ("query", False), "mutation": ("mutation", False), "action": ("action", False),
                 "internal_query": ("query", True), "internal_mutation": ("mutation", True),
                 "internal_action": ("action", True)}
        if name in kinds:
            return self._kind(*kinds[name])
        return getattr(self._app, name)


class _AppFacade(_ModuleDefiner):
    """The ``app`` global of a functions file: its decorators define the file's module."""

    def __init__(self, app: Backend, loading: _Loading, http: HttpRouter) -> None:
        super().__init__(app, loading, loading.module)
        self.http = http

    def module(self, name: str) -> _ModuleDefiner:
        self._app.module(name)  # checks the name
        return _ModuleDefiner(self._app, self._loading, name.removesuffix(".js"))

    def __repr__(self) -> str:
        return f"<app of module {self._module}>"


# -- running one file ---------------------------------------------------------------------------
@dataclass
class _FileResult:
    path: Path
    module: str
    digest: str
    functions: dict[str, FunctionDef]
    namespace: dict[str, Any]
    http: HttpRouter | None


def _one_line(exc: BaseException, file: Path, shown: str) -> str:
    if isinstance(exc, SyntaxError) and exc.filename == str(file):
        return f"{shown}, line {exc.lineno}: SyntaxError: {exc.msg}"
    line = None
    for frame, lineno in traceback.walk_tb(exc.__traceback__):
        if frame.f_code.co_filename == str(file):
            line = lineno
    where = f"{shown}, line {line}" if line else shown
    return f"{where}: {type(exc).__name__}: {exc}"


def _run_file(app: Backend, file: Path, module: str, shown: str, import_root: Path | None = None) -> _FileResult:
    from ..values.validators import v

    cn = sys.modules[__name__.split(".")[0]]  # the package (imported already: it holds this module)

    source = file.read_bytes()
    loading = _Loading(module)
    http = HttpRouter() if file.name == "http.py" else app.http
    facade = _AppFacade(app, loading, http)
    folder = str(import_root or file.parent)
    if folder not in sys.path:
        # A file may import its neighbours (`from lib import util`). Appended, never first:
        # convex/http.py must not hide the standard library's http.
        sys.path.append(folder)
    token = _loading.set(loading)
    try:
        namespace = runpy.run_path(
            str(file), init_globals={"app": facade, "cn": cn, "v": v},
            run_name=f"convex_functions_{module.replace('/', '_').replace('.', '_')}",
        )
    except BaseException as exc:
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        raise DeployError(_one_line(exc, file, shown)) from exc
    finally:
        _loading.reset(token)
    router = None
    if file.name == "http.py":
        found = namespace.get("http", namespace.get("default"))
        router = found if isinstance(found, HttpRouter) else http
    return _FileResult(file, module, hashlib.sha256(source).hexdigest(), loading.functions, namespace, router)


# -- a deploy -------------------------------------------------------------------------------------
@dataclass
class DeployReport:
    """What one deploy changed."""

    deployed: dict[str, list[str]] = field(default_factory=dict)  # module -> function names
    removed: list[str] = field(default_factory=list)  # function paths
    schema_tables: int | None = None
    crons: int | None = None
    http_routes: int | None = None
    auth_providers: int | None = None
    unchanged: int = 0
    reruns: int = 0  # live queries re-run by the deploy (set by Backend.deploy_folder)

    @property
    def changed(self) -> bool:
        return bool(self.deployed or self.removed) or any(
            x is not None for x in (self.schema_tables, self.crons, self.http_routes, self.auth_providers))

    @property
    def function_count(self) -> int:
        return sum(len(names) for names in self.deployed.values())

    def summary(self) -> str:
        parts = []
        if self.schema_tables is not None:
            parts.append(f"schema: {_count(self.schema_tables, 'table')}")
        for module in sorted(self.deployed):
            names = self.deployed[module]
            parts.append(f"{module}: {', '.join(names) if names else 'no functions'}")
        if self.removed:
            parts.append(f"removed {', '.join(self.removed)}")
        if self.crons is not None:
            parts.append(f"crons: {_count(self.crons, 'job')}")
        if self.http_routes is not None:
            parts.append(f"http: {_count(self.http_routes, 'route')}")
        if self.auth_providers is not None:
            parts.append(f"auth: {_count(self.auth_providers, 'provider')}")
        return "; ".join(parts) if parts else "nothing changed"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


class FunctionsFolder:
    """A ``convex/`` folder (or single files) deployed into a backend; redeploys what changed."""

    def __init__(self, app: Backend, root: str | os.PathLike[str] | None = None) -> None:
        self.app = app
        self.root = Path(root).resolve() if root is not None else None
        if self.root is not None and not self.root.is_dir():
            raise DeployError(f"No functions folder at {root} (create it, or name the folder: convex-notebook dev PATH)")
        self._digests: dict[Path, str] = {}
        self._paths: dict[Path, set[str]] = {}

    def files(self) -> list[Path]:
        """The folder's functions files (hidden, ``_``-prefixed and ``__pycache__`` skipped)."""
        if self.root is None:
            return sorted(self._digests)
        found = []
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith((".", "_")) and d != "node_modules")
            for name in sorted(filenames):
                if name.endswith(".py") and not name.startswith((".", "_", "#")):
                    found.append(Path(dirpath) / name)
        return found

    def _shown(self, file: Path) -> str:
        return _shown(file)

    def deploy(self, files: Iterable[str | os.PathLike[str]] | None = None, *, force: bool = False) -> DeployReport:
        """Deploy the folder (or the given files): changed files only unless ``force``.
        All or nothing: an error in any file raises :class:`DeployError` and changes nothing."""
        wanted = [Path(f).resolve() for f in files] if files is not None else self.files()
        for file in wanted:
            if file.is_dir():
                raise DeployError(f"{self._shown(file)} is a folder: serve it with `convex-notebook dev {self._shown(file)}`")
            if not file.is_file():
                raise DeployError(f"No functions file at {self._shown(file)}")
        gone = [] if files is not None else [f for f in self._digests if f not in set(wanted)]
        results: list[_FileResult] = []
        report = DeployReport()
        for file in wanted:
            digest = hashlib.sha256(file.read_bytes()).hexdigest()
            if not force and self._digests.get(file) == digest:
                report.unchanged += 1
                continue
            module = module_name(file, self.root) if self.root is not None else module_name(file)
            results.append(_run_file(self.app, file, module, self._shown(file), self.root))
        # Every file ran and every special file holds what it must: now change the deployment.
        specials = {r.path.name: r for r in results if r.path.name in SPECIAL_FILES}
        schema = _special(specials["schema.py"], "schema", _schema_type()) if "schema.py" in specials else None
        crons = _special(specials["crons.py"], "crons", CronJobs) if "crons.py" in specials else None
        for result in results:  # one-file projects (serve --functions app.py) may hold them too
            if result.path.name not in SPECIAL_FILES:
                inline_schema, inline_crons = result.namespace.get("schema"), result.namespace.get("crons")
                schema = inline_schema if isinstance(inline_schema, _schema_type()) else schema
                crons = inline_crons if isinstance(inline_crons, CronJobs) else crons
        auth = self._auth_config(specials["auth.config.py"]) if "auth.config.py" in specials else None
        if schema is not None:
            try:
                self.app.set_schema(schema)  # may refuse (existing documents): nothing changed yet
            except (ValueError, TypeError, RuntimeError) as exc:  # SchemaError and its kin
                raise DeployError(f"the schema was not applied: {exc}") from exc
            report.schema_tables = len(getattr(schema, "tables", {}) or {})
        if auth is not None:
            self.app.set_auth(auth)
            report.auth_providers = len(auth["providers"])
        if crons is not None:
            self.app.set_crons(crons)
            report.crons = len(crons.jobs)
        http = specials.get("http.py")
        if http is not None and http.http is not None:
            self.app.http = http.http
            report.http_routes = len(http.http.routes())
        for result in results:
            if result.path.name not in SPECIAL_FILES:
                self._register(result, report)
        for file in gone:
            for path in sorted(self._paths.pop(file, set())):
                self.app.registry.remove(path)
                report.removed.append(path)
            self._digests.pop(file, None)
        for result in results:
            self._digests[result.path] = result.digest
        return report

    def _register(self, result: _FileResult, report: DeployReport) -> None:
        for definition in result.functions.values():
            self.app.registry.register(definition)
        paths = set(result.functions)
        for path in sorted(self._paths.get(result.path, set()) - paths):
            self.app.registry.remove(path)
            report.removed.append(path)
        self._paths[result.path] = paths
        by_module: dict[str, list[str]] = {}
        for path in sorted(paths):
            module, _, fn = path.rpartition(":")
            by_module.setdefault(module or path, []).append(fn or path)
        if not paths:
            by_module[result.module] = []
        for module, names in by_module.items():
            report.deployed.setdefault(module, []).extend(names)

    def _auth_config(self, result: _FileResult) -> dict:
        ns = result.namespace
        config = ns.get("config", ns.get("default"))
        if config is None and "providers" in ns:
            config = {"providers": ns["providers"]}
        if not isinstance(config, dict) or not isinstance(config.get("providers"), list):
            raise DeployError(f"{self._shown(result.path)}: define providers = [...] (Convex's auth.config.ts)")
        if getattr(self.app, "set_auth", None) is None:
            raise DeployError(f"{self._shown(result.path)}: this backend has no auth configuration (app.set_auth)")
        return config


def _shown(file: Path) -> str:
    """A file as the user named it: relative to the working directory when inside it."""
    try:
        relative = os.path.relpath(file)
    except ValueError:
        return str(file)
    return str(file) if relative.startswith("..") else relative


def _schema_type() -> type:
    from ..values.schema import SchemaDefinition

    return SchemaDefinition


def _special(result: _FileResult, name: str, kind: type) -> Any:
    value = result.namespace.get(name, result.namespace.get("default"))
    if not isinstance(value, kind):
        what = {"schema": "schema = cn.define_schema({...})", "crons": "crons = cn.CronJobs()"}[name]
        raise DeployError(f"{_shown(result.path)}: define {what} at the top level")
    return value


# -- one module from source text (%%convex_module, a remote push) ---------------------------------
class SourceError(DeployError):
    """Module source that could not run: ``line`` (None for a whole-source error) and ``detail``
    (``Type: message``); the message is ``"line N: Type: message"`` or a syntax error's."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line


def run_module_source(
    app: Backend, module: str, source: str, namespace: dict[str, Any] | None = None,
    passthrough: tuple[type[BaseException], ...] = (),
) -> dict[str, FunctionDef]:
    """Run ``source`` as the functions of ``module`` and return what it defines (nothing is
    registered yet). In scope: ``namespace``, then ``query``, ``mutation``, ``action`` and the
    ``internal_*`` twins (of ``module``), ``app``, ``cn``, ``v`` and ``ConvexError``. An error in
    the source raises :class:`SourceError`; ``passthrough`` errors are raised as they are."""
    cn = sys.modules[__name__.split(".")[0]]  # the package (already imported: it holds this module)
    from ..errors import ConvexError
    from ..values.validators import v

    filename = f"<convex_module {module}>"
    try:
        code = compile(source, filename, "exec")
    except SyntaxError as exc:
        raise SourceError(f"syntax error on line {exc.lineno}: {exc.msg}", exc.lineno) from None
    loading = _Loading(module)
    facade = _AppFacade(app, loading, app.http)
    scope: dict[str, Any] = dict(namespace or {})
    kinds = ("query", "mutation", "action", "internal_query", "internal_mutation", "internal_action")
    scope.update({kind: getattr(facade, kind) for kind in kinds})
    scope.update({"app": facade, "cn": cn, "v": v, "ConvexError": ConvexError})
    scope["__name__"] = f"convex_module_{module.replace('/', '_')}"
    token = _loading.set(loading)
    try:
        exec(code, scope)  # noqa: S102 - running the project's own functions file is the point
    except passthrough:
        raise
    except Exception as exc:
        line = None
        for frame, lineno in traceback.walk_tb(exc.__traceback__):
            if frame.f_code.co_filename == filename:
                line = lineno
        detail = f"{type(exc).__name__}: {exc}"
        raise SourceError(f"line {line}: {detail}" if line else detail, line) from exc
    finally:
        _loading.reset(token)
    return loading.functions
