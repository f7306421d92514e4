"""The ``convex-notebook`` command.

    convex-notebook serve [--db data/app.sqlite3] [--port 3210] [--functions convex/tasks.py ...]
                          [--auth-config auth.config.py] [--dev-tokens]
    convex-notebook admin-key --db data/app.sqlite3     (the admin key saved with a database)
    convex-notebook run | data | import | export ... (--url URL | --db PATH)   (see cli_data)

A functions file is plain Python run with ``app`` (the Backend), ``cn`` and ``v`` already
defined, so that ``@app.query`` / ``@app.mutation`` / ``tasks = app.module("tasks")`` work
as in a notebook cell; a top-level ``schema = cn.define_schema(...)`` is applied, and a top-level
``crons = cn.CronJobs()`` deployed. A file named ``auth.config.py`` (or given to ``--auth-config``)
is the deployment's auth config, as Convex's ``convex/auth.config.ts``: its top-level
``providers = [...]`` (or ``auth = {"providers": [...]}``); a ``.json`` file holds
``{"providers": [...]}``.
"""

from __future__ import annotations

import argparse
import json
import os
import runpy
import signal
import sys
from pathlib import Path
from typing import Any, Sequence

from .cli_data import COMMANDS, add_commands, run_command

__all__ = ["load_auth_config", "load_functions", "main"]


def load_functions(app: Any, path: str | os.PathLike[str]) -> dict[str, Any]:
    """Run a functions file against ``app`` (see module docstring); returns its namespace."""
    import convex_notebook as cn
    from convex_notebook import v

    file = Path(path).resolve()
    if not file.is_file():
        raise FileNotFoundError(f"No functions file at {file}")
    folder = str(file.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)  # the file may import its neighbours
    namespace = runpy.run_path(str(file), init_globals={"app": app, "cn": cn, "v": v}, run_name=f"convex_functions_{file.stem}")
    schema = namespace.get("schema")
    if isinstance(schema, cn.SchemaDefinition):
        app.set_schema(schema)
    crons = namespace.get("crons")
    if isinstance(crons, cn.CronJobs):  # as convex/crons.ts: deployed with the functions
        app.set_crons(crons)
    return namespace


def load_auth_config(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The auth config in a file: ``auth.config.py`` (top-level ``providers`` or ``auth``) or
    JSON (``{"providers": [...]}``)."""
    file = Path(path).resolve()
    if not file.is_file():
        raise FileNotFoundError(f"No auth config file at {file}")
    if file.suffix == ".json":
        try:
            return json.loads(file.read_text())
        except ValueError as exc:
            raise ValueError(f"{file} is not valid JSON: {exc}") from None
    namespace = runpy.run_path(str(file), run_name="convex_auth_config")
    if isinstance(namespace.get("auth"), dict):
        return namespace["auth"]
    if "providers" in namespace:
        return {"providers": namespace["providers"]}
    raise ValueError(f"{file} defines neither `providers = [...]` nor `auth = {{\"providers\": [...]}}`")


def _serve(args: argparse.Namespace) -> int:
    import convex_notebook as cn

    from .auth_providers import AuthConfigError

    app = cn.Backend(args.db) if args.db else cn.Backend()
    auth_files = [p for p in args.functions or [] if Path(p).name == "auth.config.py"]
    auth_files += [args.auth_config] if args.auth_config else []
    try:
        for path in args.functions or []:
            if path not in auth_files:
                load_functions(app, path)
        for path in auth_files:
            app.set_auth(load_auth_config(path))
    except (AuthConfigError, OSError, ValueError) as exc:
        app.close()
        print(f"convex-notebook serve: {exc}", file=sys.stderr)
        return 2
    if app.auth_providers:
        print(f"convex_notebook: auth providers: {', '.join(p.describe() for p in app.auth_providers.providers)}", flush=True)
    elif not args.dev_tokens:
        print("convex_notebook: no auth providers (--auth-config): user tokens are refused", flush=True)
    names = [f"{d.path} ({'internal ' if d.internal else ''}{d.kind})" for d in app.functions()]
    print(f"convex_notebook: {len(names)} functions" + (": " + ", ".join(names) if names else ""), flush=True)

    def terminate(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt  # stop cleanly: connections closed, the database saved

    signal.signal(signal.SIGTERM, terminate)
    try:
        handle = app.serve(
            host=args.host, port=args.port, block=False, admin_key=args.admin_key, log_level=args.log_level,
            dev_tokens=args.dev_tokens, allow_admin_key_in_url=args.allow_admin_key_in_url,
        )
        env_key = os.environ.get("CONVEX_NOTEBOOK_ADMIN_KEY")
        if env_key and env_key != handle.admin_key:
            print("convex_notebook: note: $CONVEX_NOTEBOOK_ADMIN_KEY is set but is not this deployment's admin "
                  "key; it is read by clients (cn.connect, --url commands), never by the server "
                  "(serve --admin-key chooses the key)", file=sys.stderr, flush=True)
        handle.wait()
    finally:
        app.close()
    return 0


def _admin_key(args: argparse.Namespace) -> int:
    """Print the admin key saved with a database (read-only: a running server is not disturbed)."""
    import sqlite3

    file = Path(args.db)
    if not file.is_file():
        print(f"convex-notebook admin-key: no database at {file}", file=sys.stderr)
        return 1
    try:
        conn = sqlite3.connect(f"{file.resolve().as_uri()}?mode=ro", uri=True)
        try:
            row = conn.execute("SELECT value FROM meta WHERE key = 'admin_key'").fetchone()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        print(f"convex-notebook admin-key: cannot read {file}: {exc}", file=sys.stderr)
        return 1
    if not row:
        print(f"convex-notebook admin-key: {file} has no admin key yet (it gets one when first served)", file=sys.stderr)
        return 1
    print(row[0])
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="convex-notebook", description="convex_notebook: a Convex-compatible deployment in Python"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser(
        "serve", help="serve a deployment over Convex's HTTP API and WebSocket sync protocol",
        description="Serve a deployment: the official Convex clients (npm and PyPI `convex`) connect to it.",
    )
    serve.add_argument("--db", help="SQLite file holding the data (default: in memory)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=3210, help="port (default 3210; 0 picks a free one)")
    serve.add_argument(
        "--functions", action="append", metavar="FILE.py",
        help="a Python file defining functions with @app.query/@app.mutation/... (repeatable)",
    )
    serve.add_argument(
        "--admin-key", default=None,
        help="admin key (default: the one saved with the data, else a new one, printed once and saved)",
    )
    serve.add_argument(
        "--auth-config", metavar="FILE", default=None,
        help="auth providers user tokens are verified against: auth.config.py (`providers = [...]`) or "
             "a JSON file ({\"providers\": [...]}); an auth.config.py among --functions counts too",
    )
    serve.add_argument(
        "--dev-tokens", action="store_true",
        help="accept user tokens UNVERIFIED when no provider claims them (local experiments only)",
    )
    serve.add_argument(
        "--allow-admin-key-in-url", action="store_true",
        help="accept the admin key as ?adminKey= in URLs (off by default; clients send a header)",
    )
    serve.add_argument("--log-level", default="warning", help="uvicorn log level (default warning)")
    key = commands.add_parser(
        "admin-key", help="print the admin key saved with a database",
        description="Print the admin key a served deployment saved with its database (printed in full "
                    "only at its first start).",
    )
    key.add_argument("--db", required=True, help="the SQLite file of the deployment")
    add_commands(commands)
    args = parser.parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    if args.command == "admin-key":
        return _admin_key(args)
    if args.command in COMMANDS:
        return run_command(args)
    parser.error(f"unknown command {args.command}")
    return 2


if __name__ == "__main__":  # python -m convex_notebook.server.cli
    sys.exit(main())
