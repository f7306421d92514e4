"""IPython magics: ``%load_ext convex_notebook``.

Every magic is sugar for one Python call (shown in its ``--help``):

=============================================  ==============================================
``%convex connect [URL|VAR] [-o VAR]``          ``app = cn.connect(URL)``
``%convex status`` / ``tables`` / ``functions``  ``app.table_names()``, ``app.functions()``
``%convex run NAME [ARGS] [-o VAR]``             ``app.run(NAME, ARGS)``
``%convex live NAME [ARGS] [-o VAR]``            ``app.live(NAME, ARGS)``
``%convex data [TABLE] [--limit N] [-o VAR]``    documents of a table, newest first
``%convex import TABLE SOURCE [--mode M]``       ``app.import_dataframe`` / ``app.import_table``
``%convex export [TABLE] [PATH] [-o VAR]``       ``app.export_table`` / ``app.df`` / snapshots
``%convex logs [-n N] [--function F]``           ``app.logs``
``%convex reset [--yes]``                        delete every document, close live tables
``%convex deploy [PATH]``                        a functions folder or file, as ``convex-notebook dev``
``%convex debug [on|off]``                       ``cn.show_full_tracebacks(...)``
``%%convex_schema``                              ``app.set_schema(cn.define_schema({...}))``
``%%convex_module NAME``                         ``m = app.module(NAME)``; ``@m.query`` ...
``%%convex_query [--live]``                      an ad-hoc query with ``ctx`` in scope
=============================================  ==============================================

ARGS is a JSON object (``{"text": "hi"}``) or ``key=value`` pairs (values parsed as JSON when
they can be: ``done=true n=3 text=hi``). Settings: ``%config ConvexMagics.max_rows = 50`` etc.
Errors are one line, and a function's error shows your own frames only (``%convex debug on``
or ``%config ConvexMagics.short_errors = False`` for full tracebacks).
"""

from __future__ import annotations

import argparse
import ast
import difflib
import hashlib
import json
import re
import shlex
import types
from typing import Any, Self

from IPython.core.error import UsageError
from IPython.core.magic import (
    Magics,
    cell_magic,
    line_magic,
    magics_class,
    needs_local_scope,
    no_var_expand,
)
from traitlets import Bool, Float, Int, Unicode, observe
from traitlets.config.configurable import Configurable

from ..backend.contract import Deployment
from ..backend.project import SourceError
from ..backend.registry import FunctionNotFound
from ..errors import ConvexError, ConvexFunctionError, InvalidValueError
from . import admin, admin_writes
from .display import QueryResult, plural, to_frame

__all__ = ["ConvexMagics", "load_ipython_extension", "unload_ipython_extension"]

SUBCOMMANDS = ("connect", "status", "tables", "functions", "run", "live", "data", "import", "export", "logs", "env", "reset",
               "deploy", "debug")
SHORT_ERROR_TYPES = (ConvexError, ConvexFunctionError, InvalidValueError, admin.NotSupported, PermissionError)



_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*(ms|s|m|min|h|d)(?:\s+ago)?$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}


def _when(text: str) -> Any:
    """``--at``: "5m" / "90s ago" / "2h" (a timedelta ago), an ISO time, or a timestamp."""
    import datetime as _dt

    text = text.strip()
    match = _DURATION.match(text)
    if match:
        return _dt.timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])
    if text.isdigit():
        return int(text)
    try:
        return _dt.datetime.fromisoformat(text)  # (Python 3.11 reads a "Z" suffix itself)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: give a time ago (5m, 90s, 2h), an ISO time (2026-12-06T10:00) or a timestamp"
        ) from None


def _count(text: str) -> int:
    """``--limit``, ``-n``, ``--max-rows``: a whole number, 0 or more (0: all, as ``max_rows``);
    a negative one would slice from the end."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: give a whole number, 0 or more (0: all)")
    return value


class _HelpShown(Exception):
    """--help was printed: the magic returns nothing."""


class _Parser(argparse.ArgumentParser):
    """argparse whose errors are one-line ``UsageError``\\ s and whose --help just prints."""

    def error(self, message: str) -> Any:  # type: ignore[override]
        usage = " ".join(self.format_usage().split())[len("usage: "):]
        raise UsageError(f"{self.prog}: {message}. Usage: {usage}")

    def exit(self, status: int = 0, message: str | None = None) -> Any:  # type: ignore[override]
        if message:
            raise UsageError(message.strip())
        raise _HelpShown()


def _parser(prog: str, description: str, equivalent: str | None = None) -> _Parser:
    epilog = f"Python: {equivalent}" if equivalent else None
    return _Parser(prog=prog, description=description, epilog=epilog, add_help=True,
                   formatter_class=argparse.RawDescriptionHelpFormatter)


def _split_json(line: str) -> tuple[str, str | None, str]:
    """Cut the first top-level ``{...}`` (a JSON object) out of a magic line."""
    start = line.find("{")
    if start < 0:
        return line, None, ""
    depth = 0
    quote: str | None = None
    escaped = False
    for i in range(start, len(line)):
        ch = line[i]
        if quote:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == quote:
                quote = None
            continue
        if ch in "\"'":
            quote = ch
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return line[:start], line[start : i + 1], line[i + 1 :]
    raise UsageError("the arguments' JSON object is not closed: check the braces and quotes")


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _tokens(text: str) -> list[str]:
    try:
        return shlex.split(text)
    except ValueError as exc:
        raise UsageError(f"could not parse the line: {exc}") from None


def _args_from(json_text: str | None, pairs: list[str], local_ns: dict) -> dict:
    """Function arguments from a JSON object and/or ``key=value`` pairs."""
    args: dict[str, Any] = {}
    if json_text is not None:
        try:
            parsed = json.loads(json_text)
        except ValueError as exc:
            raise UsageError(f"the arguments are not a JSON object: {exc.args[0]} in {json_text}") from None
        if not isinstance(parsed, dict):
            raise UsageError("the arguments must be a JSON object like {\"text\": \"hi\"}")
        args.update(parsed)
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"unexpected {pair!r}: pass arguments as a JSON object or key=value pairs")
        args[key] = _parse_value(raw)
    return args


@magics_class
class ConvexMagics(Magics, Configurable):
    """``%convex``, ``%%convex_schema``, ``%%convex_module``, ``%%convex_query`` (see module doc)."""

    max_rows = Int(20, config=True, help="Rows shown by result tables and new live tables (0: all).")
    throttle_hz = Float(20.0, config=True, help="Most widget repaints per second (live tables, dashboard).")
    short_errors = Bool(True, config=True, help="Show function errors raised by magics as one line (False: full traceback).")
    show_system_fields = Bool(True, config=True, help="Show _id and _creationTime columns in tables.")
    default_url = Unicode("memory://", config=True, help="Deployment the magics use before %convex connect.")

    def __init__(self, shell: Any) -> None:
        Configurable.__init__(self, config=shell.config)
        Magics.__init__(self, shell=shell)
        shell.configurables.append(self)
        self.app: Any = None
        self.url: str | None = None
        self._parsers = self._build_parsers()

    # -- settings -------------------------------------------------------------------------
    @observe("throttle_hz")
    def _throttle_changed(self, change: Any) -> None:
        from .bridge import get_bridge

        get_bridge().throttle_hz = float(change["new"])

    # -- the current deployment -------------------------------------------------------------
    def current_app(self) -> Any:
        if self.app is None:
            self._connect_url(self.default_url, announce=True)
        return self.app

    def _connect_url(self, url: str, announce: bool, admin_key: str | None = None) -> None:
        import os
        import sqlite3

        from ..backend.app import connect

        if url.startswith("sqlite:///"):
            folder = os.path.dirname(os.path.abspath(url[len("sqlite:///"):]))
            if not os.path.isdir(folder):
                raise UsageError(f"%convex connect: the folder {folder} does not exist: create it first (or use memory://)")
        try:
            app = connect(url, admin_key=admin_key) if admin_key else connect(url)
        except (ValueError, NotImplementedError, ImportError, OSError, sqlite3.Error) as exc:
            raise UsageError(f"%convex connect: cannot open {url}: {exc}") from None
        self.app, self.url = app, url
        if announce:
            print(f"Connected to {url} (use %convex connect to change)")

    @property
    def _user_ns(self) -> dict[str, Any]:
        """The notebook's namespace (these magics always belong to a shell)."""
        assert self.shell is not None
        return self.shell.user_ns

    # -- %convex -------------------------------------------------------------------------
    @no_var_expand
    @needs_local_scope
    @line_magic("convex")  # type: ignore[arg-type]  # (IPython types a magic as (self, line) only)
    def convex(self, line: str = "", local_ns: dict | None = None) -> Any:
        """%convex SUBCOMMAND ...: connect, status, tables, functions, run, live, data,
        import, export, logs, env, reset. `%convex SUBCOMMAND --help` for each."""
        local_ns = local_ns if local_ns is not None else self._user_ns
        stripped = line.strip()
        if not stripped or stripped in ("-h", "--help", "help"):
            print(self._overview())
            return None
        sub, _, rest = stripped.partition(" ")
        if sub not in SUBCOMMANDS:
            close = difflib.get_close_matches(sub, SUBCOMMANDS, n=1)
            hint = f" Did you mean %convex {close[0]}?" if close else ""
            raise UsageError(f"%convex: unknown subcommand {sub!r}.{hint} Subcommands: {', '.join(SUBCOMMANDS)}")
        try:
            return getattr(self, f"_cmd_{sub}")(rest, local_ns)
        except _HelpShown:
            return None
        except FunctionNotFound as exc:
            raise UsageError(f"%convex {sub}: {self._not_found(exc)}") from None
        except SHORT_ERROR_TYPES as exc:
            self._mark_short(exc)
            raise
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError, FileExistsError) as exc:
            raise UsageError(f"%convex {sub}: {exc}") from None

    def _not_found(self, exc: BaseException) -> str:
        """A missing function, said with the functions that exist."""
        message = str(exc)
        if "Did you mean" in message or " is a " in message:
            return message
        try:
            names = [fn.path for fn in admin.visible_functions(self.current_app())]
        except admin.NotSupported:
            return message
        if not names:
            return f"{message} No functions yet: define some with @app.query or %%convex_module NAME"
        shown = ", ".join(names[:20]) + (f" and {len(names) - 20} more" if len(names) > 20 else "")
        return f"{message} Functions: {shown}"

    def _overview(self) -> str:
        lines = ["%convex SUBCOMMAND [options]   (%convex SUBCOMMAND --help for details)", ""]
        for name in SUBCOMMANDS:
            lines.append(f"  {name:<10} {self._parsers[name].description}")
        lines += [
            "",
            "%%convex_schema            the cell (Python) defines the schema",
            "%%convex_module NAME       the cell's decorated functions become NAME:<function>",
            "%%convex_query [--live]    the cell is a query body with ctx in scope",
            "Settings: %config ConvexMagics",
        ]
        return "\n".join(lines)

    def _build_parsers(self) -> dict[str, _Parser]:
        p: dict[str, _Parser] = {}
        c = p["connect"] = _parser("%convex connect", "connect the magics to a deployment",
                                   "app = cn.connect(URL)")
        c.add_argument("target", nargs="?", help="memory://, sqlite:///path.sqlite3, http://host:port, or a variable holding a Backend")
        c.add_argument("-o", "--out", metavar="VAR", help="also store the deployment in VAR")
        c.add_argument("--admin-key", metavar="KEY", default=None,
                       help="a remote deployment's admin key (default: $CONVEX_NOTEBOOK_ADMIN_KEY): "
                            "tables, data, import, logs and internal functions need it")
        s = p["status"] = _parser("%convex status", "what the magics are connected to")
        s.add_argument("-o", "--out", metavar="VAR", help="store the status (a dict) in VAR")
        t = p["tables"] = _parser("%convex tables", "tables and their document counts", "app.table_names(), app.count(t)")
        t.add_argument("-o", "--out", metavar="VAR", help="store {table: count} in VAR")
        f = p["functions"] = _parser("%convex functions", "registered functions and their arguments", "app.functions()")
        f.add_argument("-o", "--out", metavar="VAR", help="store the list in VAR")
        r = p["run"] = _parser("%convex run", "run a function (internal ones too) and show its result",
                               "app.run(NAME, ARGS)")
        r.add_argument("name", metavar="NAME", help="module:function")
        r.add_argument("pairs", nargs="*", metavar="key=value", help="arguments (or one JSON object)")
        r.add_argument("-o", "--out", metavar="VAR", help="store the result in VAR instead of showing it")
        lv = p["live"] = _parser("%convex live", "a live table of a query's result", "app.live(NAME, ARGS)")
        lv.add_argument("name", metavar="NAME", help="module:function (a public query)")
        lv.add_argument("pairs", nargs="*", metavar="key=value", help="arguments (or one JSON object)")
        lv.add_argument("-o", "--out", metavar="VAR", help="also store the LiveQuery in VAR")
        lv.add_argument("--max-rows", type=_count, metavar="N", help="rows shown (default: ConvexMagics.max_rows)")
        d = p["data"] = _parser("%convex data", "documents of a table, newest first (no TABLE: list tables)")
        d.add_argument("table", nargs="?", metavar="TABLE")
        d.add_argument("--limit", type=_count, metavar="N", help="documents to show (0: all; default: ConvexMagics.max_rows)")
        d.add_argument("--order", choices=("asc", "desc"), default="desc")
        d.add_argument("--df", action="store_true", help="a pandas DataFrame (app.df) instead of a list")
        d.add_argument("--at", metavar="WHEN", type=_when,
                       help="the table as it was then: 5m / 90s / 2h ago, an ISO time, or a timestamp (app.latest_ts())")
        d.add_argument("-o", "--out", metavar="VAR", help="store the documents in VAR")
        i = p["import"] = _parser("%convex import", "import documents into a table",
                                  "app.import_dataframe(TABLE, df, mode=...) / app.import_table(TABLE, PATH) / app.import_snapshot(PATH)")
        i.add_argument("table", nargs="?", metavar="TABLE")
        i.add_argument("source", nargs="?", metavar="SOURCE", help="a variable (DataFrame or list of dicts) or a file (.csv, .jsonl, .json)")
        i.add_argument("--mode", choices=("insert", "replace", "append"), default="insert",
                       help="insert: the table must be empty; replace: delete what is there first; append")
        i.add_argument("--format", choices=("csv", "jsonl", "json"), help="file format (default: from the extension)")
        i.add_argument("--snapshot", metavar="PATH", help="import a snapshot ZIP (all tables) instead")
        e = p["export"] = _parser("%convex export", "export a table (to a file or a DataFrame) or a snapshot",
                                  "app.export_table(TABLE, PATH) / app.df(TABLE) / app.export_snapshot(PATH)")
        e.add_argument("table", nargs="?", metavar="TABLE")
        e.add_argument("path", nargs="?", metavar="PATH", help="file to write (.csv, .jsonl, .json)")
        e.add_argument("--format", choices=("csv", "jsonl", "json"))
        e.add_argument("--snapshot", metavar="PATH", help="write a snapshot ZIP of every table instead")
        e.add_argument("-o", "--out", metavar="VAR", help="store the table as a DataFrame in VAR")
        lg = p["logs"] = _parser("%convex logs", "recent function executions and their log lines", "app.logs.tail(n)")
        lg.add_argument("-n", type=_count, default=10, metavar="N", help="how many (default 10)")
        lg.add_argument("--function", metavar="NAME", help="only this function")
        lg.add_argument("--errors", action="store_true", help="only failed executions")
        lg.add_argument("-o", "--out", metavar="VAR", help="store the entries in VAR")
        dp = p["deploy"] = _parser("%convex deploy", "deploy a functions folder or file (as npx convex dev pushes convex/)",
                                   "FunctionsFolder(app, PATH).deploy()")
        dp.add_argument("path", nargs="?", default="convex", metavar="PATH",
                        help="a folder (each file a module named from its path; schema.py, crons.py, http.py) "
                             "or one .py file (default: convex/)")
        dp.add_argument("--force", action="store_true", help="redeploy every file, changed or not")
        db = p["debug"] = _parser("%convex debug", "full tracebacks for convex_notebook's errors (on), or short ones (off)",
                                  "cn.show_full_tracebacks(True|False)")
        db.add_argument("state", nargs="?", choices=("on", "off"), help="default: show the current setting")
        ev = p["env"] = _parser("%convex env", "environment variables: list, get NAME, set NAME VALUE, remove NAME",
                                "app.env (ctx.env in functions)")
        ev.add_argument("action", nargs="?", choices=("list", "get", "set", "remove"), default="list")
        ev.add_argument("rest", nargs="*", metavar="NAME [VALUE]")
        ev.add_argument("--values", action="store_true", help="list: show the values (hidden by default)")
        ev.add_argument("-o", "--out", metavar="VAR", help="list: store {name: value} in VAR; get: the value")
        rs = p["reset"] = _parser("%convex reset", "delete every document and close live tables (functions and schema stay)")
        rs.add_argument("--yes", action="store_true", help="confirm (needed for a persisted database)")
        return p

    def _parse(self, sub: str, rest: str, *, json_args: bool = False) -> tuple[argparse.Namespace, str | None]:
        json_text = None
        if json_args:
            before, json_text, after = _split_json(rest)
            rest = before + " " + after
        parser = self._parsers[sub]
        ns, extra = parser.parse_known_args(_tokens(rest))
        if extra:
            # key=value arguments may also come after options (argparse stops at the first)
            pairs = [t for t in extra if "=" in t and not t.startswith("-")]
            unknown = [t for t in extra if t not in pairs]
            if unknown or not hasattr(ns, "pairs"):
                parser.error(f"unrecognized arguments: {' '.join(unknown or extra)}")
            ns.pairs = list(ns.pairs) + pairs
        return ns, json_text

    def _store(self, local_ns: dict, var: str | None, value: Any) -> bool:
        if not var:
            return False
        if not var.isidentifier():
            raise UsageError(f"-o needs a Python variable name, got {var!r}")
        self._user_ns[var] = value
        if local_ns is not self._user_ns:
            local_ns[var] = value
        return True

    def _result(self, value: Any, name: str | None = None) -> QueryResult:
        return QueryResult(value, name=name, max_rows=self.max_rows, system_fields=self.show_system_fields)

    # -- subcommands ------------------------------------------------------------------------
    def _cmd_connect(self, rest: str, local_ns: dict) -> Any:
        ns, _ = self._parse("connect", rest)
        target = ns.target
        if target is None:
            if self.app is None:
                print("Not connected (the first %convex command connects to memory://)")
            else:
                print(f"Connected to {self.url}")
            return None
        if target.isidentifier() and target in local_ns:
            app = local_ns[target]
            if not isinstance(app, Deployment):
                raise UsageError(f"%convex connect: {target} is a {type(app).__name__}, not a Backend or deployment")
            self.app = app
            self.url = admin.deployment_name(app)
            print(f"Connected to {target} ({self.url})")
        else:
            url = target
            if "://" not in url and url.endswith((".sqlite3", ".sqlite", ".db")):
                url = f"sqlite:///{url}"
            if "://" not in url and not url.endswith(":"):
                raise UsageError(
                    f"%convex connect: {target!r} is neither a URL (memory://, sqlite:///path, http://host:port) "
                    "nor a variable holding a Backend"
                )
            self._connect_url(url, announce=False, admin_key=ns.admin_key)
            print(f"Connected to {url}")
        self._store(local_ns, ns.out, self.app)
        return None

    def _cmd_status(self, rest: str, local_ns: dict) -> Any:
        ns, _ = self._parse("status", rest)
        app = self.current_app()
        info: dict[str, Any] = {"deployment": self.url}
        try:
            counts = admin.table_counts(app)
            info["tables"] = len(counts)
            info["documents"] = sum(n for _, n in counts)
        except admin.NotSupported:
            pass
        try:
            functions = admin.visible_functions(app)
            kinds: dict[str, int] = {}
            for fn in functions:
                kinds[fn.kind] = kinds.get(fn.kind, 0) + 1
            info["functions"] = len(functions)
            info["by kind"] = ", ".join(plural(n, k) for k, n in sorted(kinds.items())) or "none"
        except admin.NotSupported:
            pass
        info["live subscriptions"] = app.subscription_count
        if self._store(local_ns, ns.out, info):
            return None
        width = max(len(k) for k in info)
        print("\n".join(f"{k + ':':<{width + 1}} {v}" for k, v in info.items()))
        return None

    def _cmd_tables(self, rest: str, local_ns: dict) -> Any:
        ns, _ = self._parse("tables", rest)
        counts = admin.table_counts(self.current_app())
        if self._store(local_ns, ns.out, dict(counts)):
            return None
        if not counts:
            print("No tables yet")
            return None
        return self._result([{"table": name, "documents": n} for name, n in counts])

    def _cmd_functions(self, rest: str, local_ns: dict) -> Any:
        ns, _ = self._parse("functions", rest)
        rows = []
        for fn in admin.visible_functions(self.current_app()):
            fields = admin.describe_args(fn)
            args = ", ".join(f"{f['name']}{'?' if f['optional'] else ''}: {f['type']}" for f in fields)
            if fn.args is None:
                args = "(unvalidated)"
            rows.append({"function": fn.path, "kind": fn.kind, "visibility": fn.visibility, "args": args})
        if self._store(local_ns, ns.out, rows):
            return None
        if not rows:
            print("No functions yet")
            return None
        return self._result(rows)

    def _cmd_run(self, rest: str, local_ns: dict) -> Any:
        ns, json_text = self._parse("run", rest, json_args=True)
        args = _args_from(json_text, ns.pairs, local_ns)
        app = self.current_app()
        value = app.run(ns.name, args)
        if self._store(local_ns, ns.out, value):
            return None
        if value is None:
            return None
        return self._result(value, name=ns.name)

    def _cmd_live(self, rest: str, local_ns: dict) -> Any:
        ns, json_text = self._parse("live", rest, json_args=True)
        args = _args_from(json_text, ns.pairs, local_ns)
        widget = self._live(ns.name, args, max_rows=ns.max_rows)
        self._store(local_ns, ns.out, widget)
        return widget

    def _live(self, name: str, args: dict, max_rows: int | None = None, title: str | None = None) -> Any:
        from .widgets import live

        return live(
            self.current_app(), name, args,
            max_rows=self.max_rows if max_rows is None else max_rows,
            system_fields=self.show_system_fields, title=title,
        )

    def _cmd_data(self, rest: str, local_ns: dict) -> Any:
        ns, _ = self._parse("data", rest)
        app = self.current_app()
        if ns.table is None:
            return self._cmd_tables("", local_ns) if not ns.out else self._cmd_tables(f"-o {ns.out}", local_ns)
        limit = (ns.limit or None) if ns.limit is not None else (self.max_rows or None)
        self._require_table(app, ns.table, "data")
        if ns.at is not None:
            return self._data_at(app, ns, limit, local_ns)
        if ns.df:
            frame = self._dataframe(app, ns.table, limit=limit, order=ns.order)
            if self._store(local_ns, ns.out, frame):
                return None
            return frame
        docs = admin.read_documents(app, ns.table, limit=limit, order=ns.order)
        if self._store(local_ns, ns.out, docs):
            return None
        if not docs:
            print(f"{ns.table}: no documents")
            return None
        result = self._result(docs, name=ns.table)
        result.max_rows = 0  # already limited; the caption should say "of N" for the table
        total = app.count(ns.table)
        if total > len(docs):
            print(f"{ns.table}: the {len(docs)} {'newest' if ns.order == 'desc' else 'oldest'} of {total:,} documents")
        return result

    def _data_at(self, app: Any, ns: Any, limit: int | None, local_ns: dict) -> Any:
        """``%convex data T --at WHEN``: the table as it was then."""
        try:
            if ns.df:
                frame = app.df(ns.table, at=ns.at)
                if limit is not None:
                    frame = frame.iloc[::-1].head(limit) if ns.order == "desc" else frame.head(limit)
                return None if self._store(local_ns, ns.out, frame) else frame
            docs = admin.read_documents(app, ns.table, limit=limit, order=ns.order, at=ns.at)
        except ValueError as exc:  # (a HistoryError: outside the history kept)
            raise UsageError(f"%convex data --at: {str(exc).splitlines()[0]}") from None
        if self._store(local_ns, ns.out, docs):
            return None
        if not docs:
            print(f"{ns.table}: no documents then")
            return None
        result = self._result(docs, name=ns.table)
        result.max_rows = 0
        return result

    @staticmethod
    def _require_table(app: Any, table: str, sub: str) -> None:
        try:
            names = [name for name, _ in admin.table_counts(app)]
        except admin.NotSupported:
            return
        if table not in names:
            close = difflib.get_close_matches(table, names, n=1)
            hint = f" Did you mean {close[0]}?" if close else ""
            listed = ", ".join(names) if names else "none yet"
            raise UsageError(f"%convex {sub}: no table named {table!r}.{hint} Tables: {listed}")

    def _dataframe(self, app: Any, table: str, *, limit: int | None = None, order: str = "desc") -> Any:
        if limit is None:
            return app.df(table)
        return to_frame(admin.read_documents(app, table, limit=limit, order=order))

    def _cmd_import(self, rest: str, local_ns: dict) -> Any:
        ns, _ = self._parse("import", rest)
        app = self.current_app()
        if ns.snapshot:
            if ns.table or ns.source:
                raise UsageError("%convex import --snapshot PATH imports every table: give no TABLE or SOURCE")
            result = app.import_snapshot(ns.snapshot, mode=ns.mode)
            counts = ", ".join(f"{t} ({n:,})" for t, n in sorted(result.items())) or "no tables"
            print(f"Imported {ns.snapshot}: {counts}")
            return None
        if not ns.table or not ns.source:
            raise UsageError("%convex import: give TABLE and SOURCE (a variable or a file). Usage: %convex import TABLE SOURCE [--mode insert|replace|append]")
        before = app.count(ns.table)
        if ns.source.isidentifier() and ns.source in local_ns:
            app.import_dataframe(ns.table, _documents_frame(ns.source, local_ns[ns.source]), mode=ns.mode)
        else:
            import os

            if not os.path.exists(ns.source):
                raise UsageError(f"%convex import: {ns.source!r} is neither a variable nor an existing file")
            kwargs = {"mode": ns.mode, "format": _file_format("import", ns.source, ns.format)}
            app.import_table(ns.table, ns.source, **kwargs)
        after = app.count(ns.table)
        change = f" ({after - before:+,})" if ns.mode == "append" else ""
        print(f"{ns.table}: {after:,} document{'s' if after != 1 else ''}{change}")
        return None

    def _cmd_export(self, rest: str, local_ns: dict) -> Any:
        ns, _ = self._parse("export", rest)
        app = self.current_app()
        if ns.snapshot:
            app.export_snapshot(ns.snapshot)
            print(f"Wrote snapshot {ns.snapshot}")
            return None
        if not ns.table:
            raise UsageError("%convex export: give a TABLE (and a PATH or -o VAR), or --snapshot PATH. Usage: %convex export TABLE [PATH] [-o VAR]")
        self._require_table(app, ns.table, "export")
        if ns.path:
            app.export_table(ns.table, ns.path, format=_file_format("export", ns.path, ns.format))
            print(f"Wrote {ns.table} to {ns.path}")
        frame = None
        if ns.out or not ns.path:
            frame = self._dataframe(app, ns.table)
            if self._store(local_ns, ns.out, frame):
                return None
        return frame

    def _cmd_logs(self, rest: str, local_ns: dict) -> Any:
        ns, _ = self._parse("logs", rest)
        app = self.current_app()
        book = admin.log_book(app)
        if book is None:
            raise admin.NotSupported("this deployment shows no logs here (a remote one needs its admin key)")
        entries = list(book)
        if ns.function:
            from ..backend.registry import canonical_path

            wanted = canonical_path(ns.function)
            entries = [e for e in entries if e.path == wanted or e.path == ns.function]
        if ns.errors:
            entries = [e for e in entries if e.error is not None]
        entries = entries[-ns.n:] if ns.n > 0 else entries
        if self._store(local_ns, ns.out, entries):
            return None
        if not entries:
            print("No log entries")
            return None
        from .display import log_rows

        return self._result(log_rows(entries))

    def _cmd_deploy(self, rest: str, local_ns: dict) -> Any:
        import os

        from ..backend.project import DeployError

        ns, _ = self._parse("deploy", rest)
        app = self.current_app()
        if not os.path.exists(ns.path):
            raise UsageError(f"%convex deploy: nothing at {ns.path}: give a functions folder (convex/) or a .py file")
        try:
            report = app.deploy_folder(ns.path, force=ns.force)
        except (DeployError, NotImplementedError) as exc:
            raise UsageError(f"%convex deploy: {exc}") from None
        again = report.reruns
        tail = f"; re-ran {again} live quer{'y' if again == 1 else 'ies'}" if again else ""
        print(f"Deployed {report.summary()}{tail}" if report.changed else f"{ns.path}: nothing changed since the last deploy")
        return None

    def _cmd_debug(self, rest: str, local_ns: dict) -> Any:
        from .tracebacks import full_tracebacks, show_full_tracebacks

        ns, _ = self._parse("debug", rest)
        if ns.state is not None:
            show_full_tracebacks(ns.state == "on")
        state = "on: errors show full tracebacks" if full_tracebacks() else "off: errors show your own frames only"
        print(f"%convex debug {state}")

    def _cmd_env(self, rest: str, local_ns: dict) -> Any:
        ns, _ = self._parse("env", rest)
        env = admin_writes.env_mapping(self.current_app())
        if env is None:
            raise admin.NotSupported("this deployment's environment variables need its admin key "
                                     "(%convex connect URL --admin-key KEY)")
        args = list(ns.rest)
        if ns.action == "set" and len(args) == 1 and "=" in args[0]:
            args = args[0].split("=", 1)
        wanted = {"list": 0, "get": 1, "set": 2, "remove": 1}[ns.action]
        if len(args) != wanted:
            raise UsageError("usage: %convex env [list] | get NAME | set NAME VALUE | remove NAME")
        if ns.action == "list":
            variables = dict(env)
            if self._store(local_ns, ns.out, variables):
                return None
            if not variables:
                print("No environment variables set")
            for name, value in variables.items():
                print(f"{name}={value}" if ns.values else f"{name}=********")
            return None
        if ns.action == "get":
            try:
                value = env[args[0]]
            except KeyError:
                raise UsageError(f"Environment variable {args[0]!r} not found") from None
            return None if self._store(local_ns, ns.out, value) else value
        if ns.action == "set":
            env[args[0]] = args[1]
            print(f"Set {args[0]}")
        else:
            env.pop(args[0], None)
            print(f"Removed {args[0]}")
        return None

    def _cmd_reset(self, rest: str, local_ns: dict) -> Any:
        ns, _ = self._parse("reset", rest)
        app = self.current_app()
        if app.location != "memory://" and not ns.yes:
            raise UsageError(f"%convex reset deletes every document of {self.url}: add --yes to confirm")
        from .widgets import close_all

        closed = close_all(app)
        deleted = admin.clear_tables(app)
        print(f"Deleted {deleted:,} documents; closed {closed} live table{'s' if closed != 1 else ''}")
        return None

    # -- %%convex_schema ------------------------------------------------------------------
    @no_var_expand
    @needs_local_scope
    @cell_magic("convex_schema")  # type: ignore[arg-type]  # (IPython types a magic as (self, line) only)
    def convex_schema(self, line: str, cell: str, local_ns: dict | None = None) -> Any:
        """%%convex_schema [-o VAR]: the cell is Python whose last expression is the schema:
        cn.define_schema({...}) or a dict of tables ({"tasks": define_table({...})}).
        `v`, `define_table` and `define_schema` are in scope. Python: app.set_schema(schema)."""
        parser = _parser("%%convex_schema", "apply the schema the cell defines", "app.set_schema(cn.define_schema({...}))")
        parser.add_argument("-o", "--out", metavar="VAR", help="store the schema in VAR")
        try:
            ns = parser.parse_args(_tokens(line))
        except _HelpShown:
            return None
        from ..values.schema import (
            SchemaDefinition,
            TableDefinition,
            define_schema,
            define_table,
        )
        from ..values.validators import v

        local_ns = local_ns if local_ns is not None else self._user_ns
        scope = {**self._user_ns, "v": v, "define_table": define_table, "define_schema": define_schema}
        try:
            import convex_notebook as cn

            scope.setdefault("cn", cn)
            value = _exec_last_expression(cell, scope, "<convex_schema>", "%%convex_schema")
            if isinstance(value, dict) and all(isinstance(t, TableDefinition) for t in value.values()) and value:
                value = define_schema(value)
            if not isinstance(value, SchemaDefinition):
                raise UsageError(
                    "%%convex_schema: end the cell with the schema: define_schema({...}) or a dict "
                    f"of define_table(...) (got {type(value).__name__})"
                )
            app = self.current_app()
            app.set_schema(value)
        except (*SHORT_ERROR_TYPES, UsageError) as exc:
            if not isinstance(exc, UsageError):
                self._mark_short(exc)
            raise
        except Exception as exc:
            from ..engine import SchemaError

            if isinstance(exc, SchemaError):
                self._mark_short(exc)
                raise
            raise UsageError(_cell_error("%%convex_schema", exc, "<convex_schema>")) from None
        self._store(local_ns, ns.out, value)
        tables = getattr(value, "tables", {}) or {}
        parts = []
        for name in sorted(tables):
            indexes = _index_names(tables[name])
            parts.append(f"{name} ({', '.join(indexes)})" if indexes else name)
        print(f"Schema applied: {len(tables)} table{'s' if len(tables) != 1 else ''}: {'; '.join(parts)}")
        return None

    # -- %%convex_module ------------------------------------------------------------------
    @no_var_expand
    @needs_local_scope
    @cell_magic("convex_module")  # type: ignore[arg-type]  # (IPython types a magic as (self, line) only)
    def convex_module(self, line: str, cell: str, local_ns: dict | None = None) -> Any:
        """%%convex_module NAME [-o VAR]: run the cell as Python; functions decorated with
        @query, @mutation, @action (and internal_*) become NAME:<function>. Re-running the cell
        redeploys them (live queries re-run) and removes functions it no longer defines.
        Python: m = app.module(NAME); @m.query ..."""
        parser = _parser("%%convex_module", "deploy the cell's functions as module NAME", "m = app.module(NAME)")
        parser.add_argument("name", metavar="NAME", help="module name, e.g. tasks or chat/messages")
        parser.add_argument("-o", "--out", metavar="VAR", help="store the module's functions (a namespace) in VAR")
        try:
            ns = parser.parse_args(_tokens(line))
        except _HelpShown:
            return None
        local_ns = local_ns if local_ns is not None else self._user_ns
        app = self.current_app()
        try:
            # Embedded, the cell sees the notebook's names; remote, it runs on the server.
            report = app.deploy_module(ns.name, cell, namespace=self._user_ns)
        except SHORT_ERROR_TYPES as exc:
            self._mark_short(exc)
            raise
        except SourceError as exc:  # the cell's own code failed while defining the module
            raise UsageError(_source_error("%%convex_module", exc)) from None
        except ValueError as exc:  # a bad module name
            raise UsageError(f"%%convex_module: {exc}") from None
        self._store(local_ns, ns.out, types.SimpleNamespace(**{
            path.split(":", 1)[1]: _FunctionRef(path, kind) for path, kind in report.functions}))
        listed = ", ".join(f"{path.split(':', 1)[1]} ({kind})" for path, kind in report.functions)
        message = f"Deployed {report.name}: {listed or 'no functions'}"
        if report.removed:
            message += f"; removed {', '.join(report.removed)}"
        if report.reruns:
            message += f"; re-ran {report.reruns} live quer{'ies' if report.reruns != 1 else 'y'}"
        print(message)
        return None

    # -- %%convex_query ---------------------------------------------------------------------
    @no_var_expand
    @needs_local_scope
    @cell_magic("convex_query")  # type: ignore[arg-type]  # (IPython types a magic as (self, line) only)
    def convex_query(self, line: str, cell: str, local_ns: dict | None = None) -> Any:
        """%%convex_query [--live] [-o VAR]: the cell is the body of a query handler with `ctx`
        in scope; its last expression (or `return`) is the result, shown as a table.
        --live keeps it updating (a LiveQuery)."""
        parser = _parser("%%convex_query", "run the cell as an ad-hoc query (ctx in scope)")
        parser.add_argument("--live", action="store_true", help="show a live table that follows every change")
        parser.add_argument("-o", "--out", metavar="VAR", help="store the result (or the LiveQuery) in VAR")
        parser.add_argument("--max-rows", type=_count, metavar="N", help="rows shown (default: ConvexMagics.max_rows)")
        try:
            ns = parser.parse_args(_tokens(line))
        except _HelpShown:
            return None
        local_ns = local_ns if local_ns is not None else self._user_ns
        app = self.current_app()
        digest = hashlib.sha1(cell.encode()).hexdigest()[:10]
        name = f"q{digest}"
        path = f"{admin.ADHOC_MODULE}:{name}"
        try:
            app.deploy_module(admin.ADHOC_MODULE, _adhoc_source(cell, name), namespace=self._user_ns,
                              replace=False)
        except SourceError as exc:
            raise UsageError(_source_error("%%convex_query", exc)) from None
        try:
            if ns.live:
                widget = self._live(path, {}, max_rows=ns.max_rows, title="%%convex_query")

                def unregister(path: str = path) -> None:
                    still_used = any(
                        not w.closed and w.name == path for w in _live_widgets() if w is not widget
                    )
                    if not still_used:
                        app.remove_functions([path])

                widget.on_close_callbacks.append(unregister)
                self._store(local_ns, ns.out, widget)
                return widget
            try:
                value = app.query(path, {})
            finally:
                if not any(not w.closed and w.name == path for w in _live_widgets()):
                    app.remove_functions([path])
        except SHORT_ERROR_TYPES as exc:
            self._mark_short(exc)
            raise
        if self._store(local_ns, ns.out, value):
            return None
        return QueryResult(value, name=None, max_rows=ns.max_rows if ns.max_rows is not None else self.max_rows,
                           system_fields=self.show_system_fields)

    # -- errors -------------------------------------------------------------------------------
    def _mark_short(self, exc: BaseException) -> None:
        if self.short_errors:
            try:
                exc._convex_short = True  # type: ignore[attr-defined]
            except AttributeError:
                pass


def _documents_frame(name: str, data: Any) -> Any:
    """``%convex import TABLE VAR``: a list must hold documents (other values would become
    ``{"value": x}`` documents); anything else goes to ``app.import_dataframe`` as it is."""
    if not isinstance(data, list):
        return data
    others = sorted({type(d).__name__ for d in data if not isinstance(d, dict)})
    if others:
        raise UsageError(f"%convex import: {name} is a list of {', '.join(others)}, not of documents (dicts)")
    return to_frame(data)


def _file_format(sub: str, path: str, fmt: str | None) -> str:
    """A table file's format: ``--format``, else from the file's name (a usage error when
    the name does not tell)."""
    from ..io.tables import table_format

    try:
        return table_format(path, fmt)
    except ValueError:
        raise UsageError(
            f"%convex {sub}: cannot tell the format of {path!r} from its name: add --format csv, jsonl or json"
        ) from None


def _live_widgets() -> list[Any]:
    from .widgets import _all_live

    return list(_all_live)


def _index_names(table: Any) -> list[str]:
    names: list[str] = []
    for attr in ("indexes", "search_indexes", "vector_indexes"):
        found = getattr(table, attr, None)
        if isinstance(found, dict):
            names.extend(found.keys())
        elif isinstance(found, (list, tuple)):
            for index in found:
                name = getattr(index, "name", None) or (
                    index.get("indexDescriptor") if isinstance(index, dict) else str(index)
                )
                if name:
                    names.append(str(name))
    return names


def _cell_error(magic: str, exc: BaseException, filename: str) -> str:
    """One line for an error raised by a magic cell's own code: where, what, and the message."""
    import traceback

    line = None
    for frame, lineno in traceback.walk_tb(exc.__traceback__):
        if frame.f_code.co_filename == filename:
            line = lineno
    where = f"{magic}, line {line}" if line else magic
    return f"{where}: {type(exc).__name__}: {exc}"


def _exec_last_expression(source: str, scope: dict, filename: str, magic: str, want_value: bool = True) -> Any:
    """Run ``source`` in ``scope``; the value of its last expression statement (or None).
    A syntax error is a usage error of ``magic``."""
    try:
        tree = ast.parse(source, filename=filename)
    except SyntaxError as exc:
        raise UsageError(f"{magic}: syntax error on line {exc.lineno}: {exc.msg}") from None
    last = None
    final = tree.body[-1] if tree.body else None
    if want_value and isinstance(final, ast.Expr):
        tree.body.pop()
        last = ast.Expression(final.value)
    exec(compile(tree, filename, "exec"), scope)  # noqa: S102 - a notebook cell, run as the user asked
    if last is not None:
        return eval(compile(last, filename, "eval"), scope)
    return None


class _FunctionRef(str):
    """A deployed function in ``%%convex_module -o VAR``: its path (a string any call takes),
    with its ``.path`` and ``.kind``."""

    kind: str

    def __new__(cls, path: str, kind: str) -> Self:
        ref = super().__new__(cls, path)
        ref.kind = kind
        return ref

    @property
    def path(self) -> str:
        return str(self)


def _source_error(magic: str, exc: SourceError) -> str:
    """One line for an error of a magic cell's own code: where, what, and the message."""
    return f"{magic}, {exc}" if exc.line is not None and str(exc).startswith("line ") else f"{magic}: {exc}"


def _adhoc_source(cell: str, name: str) -> str:
    """``@query def NAME(ctx): <cell>``, returning the cell's last expression, as source text
    (deployed like a module cell: embedded or on a remote deployment)."""
    filename = "<convex_query>"
    try:
        tree = ast.parse(cell, filename=filename)
    except SyntaxError as exc:
        raise UsageError(f"%%convex_query: syntax error on line {exc.lineno}: {exc.msg}") from None
    if not tree.body:
        raise UsageError("%%convex_query: the cell is empty; write a query body, e.g. ctx.db.query(\"tasks\").collect()")
    if isinstance(tree.body[-1], ast.Expr):
        last = tree.body[-1]
        tree.body[-1] = ast.copy_location(ast.Return(value=last.value), last)
    fn = ast.FunctionDef(
        name=name,
        args=ast.arguments(posonlyargs=[], args=[ast.arg(arg="ctx")], vararg=None, kwonlyargs=[], kw_defaults=[],
                           kwarg=None, defaults=[]),
        body=tree.body,
        decorator_list=[ast.Name(id="query", ctx=ast.Load())],
        returns=None,
        type_params=[],  # type: ignore[call-arg]  # (Python 3.12's ast needs it; 3.11's stubs lack it)
    )
    module = ast.Module(body=[fn], type_ignores=[])
    ast.fix_missing_locations(module)
    return ast.unparse(module)


_loaded: dict[int, ConvexMagics] = {}


def load_ipython_extension(shell: Any) -> None:
    """``%load_ext convex_notebook``."""
    from .widgets import install_cell_hooks

    magics = ConvexMagics(shell)
    shell.register_magics(magics)
    _loaded[id(shell)] = magics
    from ..engine import SchemaError
    from .tracebacks import register_short_errors, show_error

    shell.set_custom_exc(SHORT_ERROR_TYPES + (SchemaError,), show_error)
    register_short_errors(shell, lambda: bool(magics.short_errors))
    install_cell_hooks(shell)


def unload_ipython_extension(shell: Any) -> None:
    from .tracebacks import register_short_errors

    register_short_errors(shell, None)
    magics = _loaded.pop(id(shell), None)
    if magics is not None and magics in shell.configurables:
        shell.configurables.remove(magics)
    shell.set_custom_exc((), None)


def current_magics(shell: Any = None) -> ConvexMagics | None:
    """The loaded ``ConvexMagics`` of a shell (the current one by default)."""
    if shell is None:
        from IPython import get_ipython

        shell = get_ipython()
    return _loaded.get(id(shell)) if shell is not None else None
