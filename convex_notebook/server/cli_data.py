"""``convex-notebook run / data / import / export / env``: ``npx convex run / data / import / export / env``
against a deployment, served (``--url``, with its admin key) or a SQLite file (``--db``).

    convex-notebook run tasks:add '{"text": "hi"}' --url http://127.0.0.1:3210 --admin-key KEY
    convex-notebook data tasks --limit 10 --db data/app.sqlite3
    convex-notebook import --table tasks tasks.jsonl --append --url ...
    convex-notebook export --path backups/ --db data/app.sqlite3
    convex-notebook env set OPENAI_API_KEY sk-... --db data/app.sqlite3

Both kinds of deployment are driven through the same methods (``run``, the ``_system/cli``
functions, ``import_table``, ``import_snapshot``, ``export_snapshot``), so the commands behave
alike on either. Output follows the npm CLI: values as Convex JSON, documents as a table or
JSON lines; errors go to stderr with exit status 1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from typing import Any

__all__ = ["COMMANDS", "add_commands"]

FORMATS = {".csv": "csv", ".jsonl": "jsonLines", ".ndjson": "jsonLines", ".json": "jsonArray", ".zip": "zip"}
IO_FORMATS = {"csv": "csv", "jsonLines": "jsonl", "jsonArray": "json"}


class CommandError(Exception):
    """A usage or deployment error, reported on one line."""


NEEDS_ADMIN_KEY = (
    "this needs the deployment's admin key: pass --admin-key KEY or set $CONVEX_NOTEBOOK_ADMIN_KEY "
    "(`convex-notebook serve` prints the key when it starts; app.serve() returns it as handle.admin_key)"
)


def _not_found(app: Any, exc: Exception, args: argparse.Namespace) -> str:
    """A missing function, said with what exists (and the admin key when that is the cause)."""
    message = str(exc)
    if args.url and not getattr(app, "admin_key", None):
        if "_system/" in message:
            return NEEDS_ADMIN_KEY
        return f"{message} (without the admin key only public functions are reachable: --admin-key KEY)"
    if "Did you mean" in message:
        return message
    try:
        names = [f.path for f in app.functions()]
    except Exception:  # noqa: BLE001 - listing is a courtesy (a remote one needs the admin key)
        return message
    shown = ", ".join(names[:20]) + (f" and {len(names) - 20} more" if len(names) > 20 else "")
    return f"{message} Functions: {shown}" if names else f"{message} This deployment has no functions yet."


def _target_options(parser: argparse.ArgumentParser) -> None:
    where = parser.add_argument_group("deployment (one of)")
    where.add_argument("--url", default=os.environ.get("CONVEX_NOTEBOOK_URL"),
                       help="a served deployment, e.g. http://127.0.0.1:3210 (default: $CONVEX_NOTEBOOK_URL)")
    where.add_argument("--db", help="a SQLite file of an embedded deployment")
    parser.add_argument("--admin-key", default=None,
                        help="the served deployment's admin key (default: $CONVEX_NOTEBOOK_ADMIN_KEY)")
    parser.add_argument("--functions", action="append", metavar="FILE.py",
                        help="with --db: a functions file to load first (repeatable), for `run`")


def _open(args: argparse.Namespace) -> Any:
    import convex_notebook as cn

    if args.url and args.db:
        raise CommandError("give --url or --db, not both")
    if args.url:
        if args.functions:
            raise CommandError("--functions goes with --db: a served deployment has its own functions")
        try:
            client = cn.connect(args.url, admin_key=args.admin_key)
        except (ConnectionError, OSError, ValueError) as exc:
            raise CommandError(f"cannot reach {args.url}: {exc}") from None
        if not client.admin_key and args.command != "run":
            client.close()
            raise CommandError(NEEDS_ADMIN_KEY)
        return client
    if args.db:
        from ..backend.project import DeployError, FunctionsFolder

        if args.command in ("data", "export") and not os.path.exists(args.db):
            raise CommandError(f"no database at {args.db} (serve, dev or import creates one)")
        folder = os.path.dirname(os.path.abspath(args.db))
        if not os.path.isdir(folder):
            raise CommandError(f"the folder {os.path.dirname(args.db)}/ does not exist: create it (mkdir -p) first")
        from .cli_support import open_database

        try:
            app = open_database(args.db, echo_logs=False)  # a call's log lines go to stderr (see _run)
        except DeployError as exc:
            raise CommandError(str(exc)) from None
        try:
            if args.functions:
                FunctionsFolder(app).deploy(args.functions)
        except DeployError as exc:
            app.close()
            raise CommandError(str(exc)) from None
        return app
    raise CommandError("which deployment? give --url http://host:port (served) or --db PATH (a SQLite file)")


def _json_text(value: Any) -> str:
    from ..values import to_json

    return json.dumps(to_json(value), ensure_ascii=False)


# -- run ------------------------------------------------------------------------------------------
def _run(app: Any, args: argparse.Namespace) -> int:
    from ..values import from_json

    try:
        raw = json.loads(args.args) if args.args else {}
    except ValueError as exc:
        raise CommandError(f"ARGS must be a JSON object, e.g. '{{\"text\": \"hi\"}}': {exc}") from None
    if not isinstance(raw, dict):
        raise CommandError("ARGS must be a JSON object, e.g. '{\"text\": \"hi\"}'")
    value = app.run(args.function, from_json(raw))
    from ..backend.registry import canonical_path

    try:
        latest = app.logs.tail(1)  # the call's log lines, apart from its value
    except PermissionError:  # a remote deployment without the admin key shows no logs
        latest = []
    for entry in latest:
        if entry.path == canonical_path(args.function):
            for line in entry.lines:
                print(line, file=sys.stderr)
    if value is not None:
        from ..values import to_json

        print(json.dumps(to_json(value), indent=2, ensure_ascii=False))
    return 0


# -- data -----------------------------------------------------------------------------------------
def _data(app: Any, args: argparse.Namespace) -> int:
    if args.table is None:
        names = [t["name"] for t in app.run("_system/cli/tables", {})["page"]]
        if not names:
            print("There are no tables in this deployment.", file=sys.stderr)
        for name in sorted(names):
            print(name)
        return 0
    names = [t["name"] for t in app.run("_system/cli/tables", {})["page"]]
    if args.table not in names:
        listed = ", ".join(sorted(names)) if names else "none yet"
        raise CommandError(f"no table named {args.table!r}. Tables: {listed}")
    docs: list[dict] = []
    cursor = None
    while len(docs) < args.limit + 1:
        page = app.run("_system/cli/tableData", {
            "table": args.table, "order": args.order,
            "paginationOpts": {"numItems": min(8192, args.limit + 1 - len(docs)), "cursor": cursor},
        })
        docs += page["page"]
        if page["isDone"]:
            break
        cursor = page["continueCursor"]
    if not docs:
        print("There are no documents in this table.", file=sys.stderr)
        return 0
    shown = docs[: args.limit]
    if args.format in ("jsonl", "jsonLines"):
        for doc in shown:
            print(_json_text(doc))
    elif args.format in ("json", "jsonArray"):
        print("[\n" + ",\n".join(_json_text(d) for d in shown) + "\n]")
    else:
        _print_table(shown)
    if len(docs) > args.limit:
        which = "most recently" if args.order == "desc" else "oldest"
        print(f"Showing the {args.limit} {which} created documents. Use --limit to see more.", file=sys.stderr)
    return 0


def _print_table(docs: list[dict]) -> None:
    fields = ["_id", "_creationTime"] + sorted({k for d in docs for k in d} - {"_id", "_creationTime"})
    rows = [[_json_text(d[f]) if f in d else "" for f in fields] for d in docs]
    widths = [max(len(f), *(len(r[i]) for r in rows)) for i, f in enumerate(fields)]
    print(" | ".join(f.ljust(w) for f, w in zip(fields, widths)))
    print("-|-".join("-" * w for w in widths))
    for row in rows:
        print(" | ".join(c.ljust(w) for c, w in zip(row, widths)))


# -- import / export ------------------------------------------------------------------------------
def _import(app: Any, args: argparse.Namespace) -> int:
    fmt = args.format or FORMATS.get(os.path.splitext(args.path)[1].lower())
    if fmt is None:
        raise CommandError(f"cannot tell the format of {args.path}: give --format csv|jsonLines|jsonArray|zip")
    if not os.path.exists(args.path):
        raise CommandError(f"{args.path} does not exist")
    chosen = [name for name in ("append", "replace", "replace_all") if getattr(args, name)]
    if len(chosen) > 1:
        raise CommandError("give at most one of --append, --replace, --replace-all")
    mode = {"append": "append", "replace": "replace", "replace_all": "replace"}.get(chosen[0] if chosen else "", "insert")
    if fmt == "zip":
        if args.table:
            raise CommandError("a zip snapshot names its own tables: give no --table")
        counts = app.import_snapshot(args.path, mode=mode, clear_other_tables=bool(args.replace_all))
        total = sum(counts.values())
        print(f"Added {total} documents ({', '.join(f'{t}: {n}' for t, n in sorted(counts.items())) or 'no tables'}).")
        return 0
    if not args.table:
        raise CommandError(f"--table is required for format {fmt}")
    if args.replace_all:
        raise CommandError("--replace-all is for zip snapshots; use --replace for one table")
    written = app.import_table(args.table, args.path, format=IO_FORMATS[fmt], mode=mode)
    print(f'Added {written} documents to table "{args.table}".')
    return 0


def _export(app: Any, args: argparse.Namespace) -> int:
    path = app.export_snapshot(args.path, include_file_storage=args.include_file_storage)
    print(f"Wrote snapshot {path}")
    return 0


# -- env ------------------------------------------------------------------------------------------
def _env(app: Any, args: argparse.Namespace) -> int:
    """``env list | get NAME | set NAME VALUE | remove NAME``, as ``npx convex env``."""
    env = app.env
    action, rest = args.action, list(args.rest)
    wanted = {"list": 0, "get": 1, "set": 2, "remove": 1}[action]
    if action == "set" and len(rest) == 1 and "=" in rest[0]:
        rest = rest[0].split("=", 1)  # NAME=value, as npx convex env set accepts
    if len(rest) != wanted:
        usage = {"list": "env list", "get": "env get NAME", "set": "env set NAME VALUE", "remove": "env remove NAME"}
        raise CommandError(f"usage: convex-notebook {usage[action]}")
    if action == "list":
        variables = env.to_dict()
        if not variables:
            print("No environment variables set", file=sys.stderr)
        for name, value in variables.items():
            print(f"{name}={value}")
    elif action == "get":
        try:
            print(env[rest[0]])
        except KeyError:
            raise CommandError(f'Environment variable "{rest[0]}" not found') from None
    elif action == "set":
        env[rest[0]] = rest[1]
        print(f"Successfully set {rest[0]}", file=sys.stderr)  # never the value
    else:
        env.set(rest[0], None)
        print(f"Successfully unset {rest[0]}", file=sys.stderr)
    return 0


COMMANDS: dict[str, Callable[[Any, argparse.Namespace], int]] = {
    "run": _run, "data": _data, "import": _import, "export": _export, "env": _env,
}


def add_commands(commands: Any) -> None:
    """Add run, data, import and export to the ``convex-notebook`` parser's subcommands."""
    run = commands.add_parser("run", help="run a function (as npx convex run)",
                              description="Run a query, mutation or action (internal ones too) and print its result.")
    run.add_argument("function", help='a function path, e.g. "tasks:add"')
    run.add_argument("args", nargs="?", help="its arguments as a JSON object (Convex JSON: {\"$integer\": ...})")
    _target_options(run)
    data = commands.add_parser("data", help="list tables, or a table's documents (as npx convex data)")
    data.add_argument("table", nargs="?", help="a table (omit to list the tables)")
    data.add_argument("--limit", type=int, default=100, help="how many documents (default 100)")
    data.add_argument("--order", choices=("asc", "desc"), default="desc", help="by creation time (default desc)")
    data.add_argument("--format", choices=("pretty", "json", "jsonArray", "jsonl", "jsonLines"), default="pretty")
    _target_options(data)
    imp = commands.add_parser("import", help="import a table's file or a snapshot ZIP (as npx convex import)")
    imp.add_argument("path", help="a .jsonl, .json, .csv file (with --table) or a snapshot .zip")
    imp.add_argument("--table", help="the table to import into (not for a zip)")
    imp.add_argument("--format", choices=("csv", "jsonLines", "jsonArray", "zip"), help="default: from the extension")
    imp.add_argument("--append", action="store_true", help="add to existing documents")
    imp.add_argument("--replace", action="store_true", help="replace the documents of the imported tables")
    imp.add_argument("--replace-all", action="store_true", help="zip: replace everything, emptying tables it lacks")
    _target_options(imp)
    exp = commands.add_parser("export", help="write every table to a snapshot ZIP (as npx convex export)")
    exp.add_argument("--path", required=True, help="the ZIP to write, or a directory for snapshot_<ts>.zip")
    exp.add_argument("--include-file-storage", action="store_true", help="add the stored files (_storage)")
    _target_options(exp)
    env = commands.add_parser("env", help="list, get, set or remove environment variables (as npx convex env)",
                              description="The deployment's environment variables (ctx.env in functions).")
    env.add_argument("action", choices=("list", "get", "set", "remove"))
    env.add_argument("rest", nargs="*", metavar="NAME [VALUE]", help="get/remove: NAME; set: NAME VALUE (or NAME=VALUE)")
    _target_options(env)


def run_command(args: argparse.Namespace) -> int:
    """Open the deployment, run the command, close it; errors on one line (exit 1)."""
    from ..backend.registry import FunctionNotFound
    from ..engine.transaction import DatabaseError
    from ..errors import ConvexError, ConvexFunctionError, InvalidValueError

    try:
        app = _open(args)
    except CommandError as exc:
        print(f"convex-notebook {args.command}: {exc}", file=sys.stderr)
        return 1
    try:
        if args.command == "data" and args.limit < 1:
            raise CommandError("--limit must be at least 1")
        return COMMANDS[args.command](app, args)
    except FunctionNotFound as exc:
        print(f"convex-notebook {args.command}: {_not_found(app, exc, args)}", file=sys.stderr)
        return 1
    except (CommandError, ConvexError, ConvexFunctionError, DatabaseError, InvalidValueError, PermissionError,
            ValueError, OSError) as exc:
        message = str(exc) if isinstance(exc, (CommandError, OSError)) else f"{type(exc).__name__}: {exc}"
        print(f"convex-notebook {args.command}: {message}", file=sys.stderr)
        return 1
    finally:
        app.close()
