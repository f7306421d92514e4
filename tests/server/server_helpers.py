"""Helpers of the server tests (imported by name: the module name is unique across tests/)."""

from __future__ import annotations

import socket
from pathlib import Path

import convex_notebook as cn
from convex_notebook.server.cli import load_functions

ROOT = Path(__file__).resolve().parents[2]
INTEROP = ROOT / "tests" / "interop"
FUNCTIONS = INTEROP / "functions.py"


def make_app(path: str | None = None) -> cn.Backend:
    """A backend with the interop functions (tests/interop/functions.py)."""
    app = cn.Backend(path, echo_logs=False)
    load_functions(app, FUNCTIONS)
    return app


def messages(app: cn.Backend) -> list[tuple[str, str]]:
    return [(d["author"], d["body"]) for d in app.run(lambda ctx: ctx.db.query("messages").collect())]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
