"""The ``convex-notebook`` command.

    convex-notebook serve [--db data/app.sqlite3] [--port 3210] [--functions convex/tasks.py ...]
    convex-notebook dev [convex/] [--db data/app.sqlite3] [--port 3210]     (see dev.py)
    convex-notebook run | data | import | export ... (--url URL | --db PATH)   (see cli_data)
    convex-notebook --version

A functions file is plain Python run with ``app``, ``cn`` and ``v`` already defined; it is
the module its path names (``convex/tasks.py`` → ``tasks:*``, as Convex names modules), so
``@app.query`` or ``@cn.query`` there define ``tasks:<function>``; ``app.module("other")``
names another module. A top-level ``schema = cn.define_schema(...)`` is applied, and a
top-level ``crons = cn.CronJobs()`` deployed (see ``backend/project.py``).
"""

from __future__ import annotations

import argparse
import os
import signal
import sqlite3
import sys
from typing import Any, Sequence

from ..backend.project import DeployError, FunctionsFolder
from .cli_data import COMMANDS, add_commands, run_command

__all__ = ["load_functions", "main", "open_database"]


def load_functions(app: Any, path: str | os.PathLike[str]) -> FunctionsFolder:
    """Deploy one functions file into ``app`` (module named from its path); returns the
    :class:`FunctionsFolder` that can redeploy it. Errors: :class:`DeployError`, one line."""
    project = FunctionsFolder(app)
    project.deploy([path])
    return project


def open_database(path: str, **options: Any) -> Any:
    """``cn.Backend(path)``, creating the file's folder when it does not exist yet."""
    import convex_notebook as cn

    folder = os.path.dirname(os.path.abspath(path))
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise DeployError(f"--db {path}: {os.path.dirname(path)} is a file, not a folder")
    os.makedirs(folder, exist_ok=True)
    if os.path.isdir(path):
        raise DeployError(f"--db {path} is a folder: name the SQLite file, e.g. {os.path.join(path, 'app.sqlite3')}")
    try:
        return cn.Backend(path, **options)
    except sqlite3.Error as exc:
        raise DeployError(f"--db {path} cannot be opened as a SQLite database ({exc})") from None


def print_functions(app: Any) -> None:
    names = [f"{d.path} ({'internal ' if d.internal else ''}{d.kind})" for d in app.functions()]
    count = f"{len(names)} function{'' if len(names) == 1 else 's'}"
    print(f"convex_notebook: {count}" + (": " + ", ".join(names) if names else ""), flush=True)


def stop_on_sigterm() -> None:
    def terminate(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt  # stop cleanly: connections closed, the database saved

    signal.signal(signal.SIGTERM, terminate)


def _serve(args: argparse.Namespace) -> int:
    import convex_notebook as cn

    app = open_database(args.db) if args.db else cn.Backend()
    try:
        project = FunctionsFolder(app)
        if args.functions:
            project.deploy(args.functions)
    except BaseException:
        app.close()
        raise
    print_functions(app)
    stop_on_sigterm()
    try:
        app.serve(
            host=args.host, port=args.port, block=True, admin_key=args.admin_key, log_level=args.log_level,
        )
    finally:
        app.close()
    return 0


def _add_server_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", help="SQLite file holding the data (default: in memory); its folder is created")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=3210, help="port (default 3210; 0 picks a free one)")
    parser.add_argument(
        "--admin-key", default=None,
        help="admin key (default: $CONVEX_NOTEBOOK_ADMIN_KEY, else the one saved with the data, else a new one)",
    )
    parser.add_argument("--log-level", default="warning", help="uvicorn log level (default warning)")


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
    add_commands(commands)
    args = parser.parse_args(argv)
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
