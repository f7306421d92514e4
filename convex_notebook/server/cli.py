"""The ``convex-notebook`` command.

    convex-notebook serve [--db data/app.sqlite3] [--port 3210] [--functions convex/tasks.py ...]
                          [--auth-config auth.config.py] [--dev-tokens]
    convex-notebook dev [convex/] [--db data/app.sqlite3] [--port 3210]     (see dev.py)
    convex-notebook admin-key --db data/app.sqlite3     (the admin key saved with a database)
    convex-notebook run | data | import | export ... (--url URL | --db PATH)   (see cli_data)
    convex-notebook --version

A functions file is plain Python run with ``app``, ``cn`` and ``v`` already defined; it is
the module its path names (``convex/tasks.py`` → ``tasks:*``, as Convex names modules), so
``@app.query`` or ``@cn.query`` there define ``tasks:<function>``; ``app.module("other")``
names another module. A top-level ``schema = cn.define_schema(...)`` is applied, and a
top-level ``crons = cn.CronJobs()`` deployed (see ``backend/project.py``). A file named
``auth.config.py`` (or given to ``--auth-config``) is the deployment's auth config, as Convex's
``convex/auth.config.ts``: its top-level ``providers = [...]`` (or ``auth = {"providers":
[...]}``); a ``.json`` file holds ``{"providers": [...]}``.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..backend.project import DeployError, FunctionsFolder
from .cli_data import COMMANDS, add_commands, run_command
from .cli_support import (
    load_auth_config,
    load_functions,
    open_database,
    print_auth,
    print_functions,
    stop_on_sigterm,
)

__all__ = ["load_auth_config", "load_functions", "main", "open_database"]


def serve_until_stopped(app: Any, args: argparse.Namespace) -> None:
    """Serve ``app`` with the command line's options until SIGTERM or Ctrl-C."""
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


def _serve(args: argparse.Namespace) -> int:
    import convex_notebook as cn

    from .auth_providers import AuthConfigError

    app = open_database(args.db) if args.db else cn.Backend()
    try:
        project = FunctionsFolder(app)
        if args.functions:
            project.deploy(args.functions)
        if args.auth_config:
            app.set_auth(load_auth_config(args.auth_config))
    except (AuthConfigError, ValueError) as exc:
        app.close()
        print(f"convex-notebook serve: {exc}", file=sys.stderr)
        return 2
    except BaseException:
        app.close()
        raise
    print_functions(app)
    print_auth(app, args.dev_tokens)
    stop_on_sigterm()
    try:
        serve_until_stopped(app, args)
    finally:
        app.close()
    return 0


def _admin_key(args: argparse.Namespace) -> int:
    """Print the admin key saved with a database (read-only: a running server is not disturbed)."""
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


def _add_server_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", help="SQLite file holding the data (default: in memory); its folder is created")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=3210, help="port (default 3210; 0 picks a free one)")
    parser.add_argument(
        "--admin-key", default=None,
        help="admin key (default: the one saved with the data, else a new one, printed once and saved)",
    )
    parser.add_argument("--log-level", default="warning", help="uvicorn log level (default warning)")
    parser.add_argument(
        "--auth-config", metavar="FILE", default=None,
        help="auth providers user tokens are verified against: auth.config.py (`providers = [...]`) or "
             "a JSON file ({\"providers\": [...]}); an auth.config.py in the functions folder counts too",
    )
    parser.add_argument(
        "--dev-tokens", action="store_true",
        help="accept user tokens UNVERIFIED when no provider claims them (local experiments only)",
    )
    parser.add_argument(
        "--allow-admin-key-in-url", action="store_true",
        help="accept the admin key as ?adminKey= in URLs (off by default; clients send a header)",
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="convex-notebook", description="convex_notebook: a Convex-compatible deployment in Python"
    )
    parser.add_argument("--version", action="version", version=f"convex-notebook {_version()}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser(
        "serve", help="serve a deployment over Convex's HTTP API and WebSocket sync protocol",
        description="Serve a deployment: the official Convex clients (npm and PyPI `convex`) connect to it.",
    )
    _add_server_options(serve)
    serve.add_argument(
        "--functions", action="append", metavar="FILE.py",
        help="a functions file (repeatable): convex/tasks.py defines tasks:* (@app.query, @cn.query, ...)",
    )
    dev = commands.add_parser(
        "dev", help="serve a functions folder and redeploy each saved file (as npx convex dev)",
        description="Serve the functions in DIR (each file a module named from its path; schema.py, "
                    "crons.py, http.py, auth.config.py as in Convex) and redeploy every file saved "
                    "while it runs.",
    )
    dev.add_argument("dir", nargs="?", default="convex", metavar="DIR", help="the functions folder (default convex/)")
    _add_server_options(dev)
    dev.add_argument("--once", action="store_true", help="deploy and exit (check the folder without serving)")
    key = commands.add_parser(
        "admin-key", help="print the admin key saved with a database",
        description="Print the admin key a served deployment saved with its database (printed in full "
                    "only at its first start).",
    )
    key.add_argument("--db", required=True, help="the SQLite file of the deployment")
    add_commands(commands)
    args = parser.parse_args(argv)
    if args.command == "admin-key":
        return _admin_key(args)
    try:
        if args.command == "serve":
            return _serve(args)
        if args.command == "dev":
            from .dev import run_dev

            return run_dev(args)
    except (DeployError, OSError) as exc:
        print(f"convex-notebook {args.command}: {exc}", file=sys.stderr)
        return 1
    if args.command in COMMANDS:
        return run_command(args)
    parser.error(f"unknown command {args.command}")
    return 2


def _version() -> str:
    from convex_notebook import __version__

    return __version__


if __name__ == "__main__":  # python -m convex_notebook.server.cli
    sys.exit(main())
