"""The ``convex-notebook`` command.

    convex-notebook serve [--db data/app.sqlite3] [--port 3210] [--functions convex/tasks.py ...]
    convex-notebook run | data | import | export ... (--url URL | --db PATH)   (see cli_data)

A functions file is plain Python run with ``app`` (the Backend), ``cn`` and ``v`` already
defined, so that ``@app.query`` / ``@app.mutation`` / ``tasks = app.module("tasks")`` work
as in a notebook cell; a top-level ``schema = cn.define_schema(...)`` is applied, and a top-level
``crons = cn.CronJobs()`` deployed.
"""

from __future__ import annotations

import argparse
import os
import runpy
import signal
import sys
from pathlib import Path
from typing import Any, Sequence

from .cli_data import COMMANDS, add_commands, run_command

__all__ = ["load_functions", "main"]


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


def _serve(args: argparse.Namespace) -> int:
    import convex_notebook as cn

    app = cn.Backend(args.db) if args.db else cn.Backend()
    for path in args.functions or []:
        load_functions(app, path)
    names = [f"{d.path} ({'internal ' if d.internal else ''}{d.kind})" for d in app.functions()]
    print(f"convex_notebook: {len(names)} functions" + (": " + ", ".join(names) if names else ""), flush=True)

    def terminate(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt  # stop cleanly: connections closed, the database saved

    signal.signal(signal.SIGTERM, terminate)
    try:
        app.serve(
            host=args.host, port=args.port, block=True, admin_key=args.admin_key, log_level=args.log_level,
        )
    finally:
        app.close()
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
        help="admin key (default: $CONVEX_NOTEBOOK_ADMIN_KEY, else the one saved with the data, else a new one)",
    )
    serve.add_argument("--log-level", default="warning", help="uvicorn log level (default warning)")
    add_commands(commands)
    args = parser.parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    if args.command in COMMANDS:
        return run_command(args)
    parser.error(f"unknown command {args.command}")
    return 2


if __name__ == "__main__":  # python -m convex_notebook.server.cli
    sys.exit(main())
