"""The helper process of ``pyclient_bridge``: a real ``PyConvexClient`` serving requests from
its parent over an inherited socket. Run as a script (``python _pyclient_worker.py FD URL
VERSION``) so that it imports nothing but the standard library and the ``convex`` client."""

from __future__ import annotations

import sys
from multiprocessing.connection import Connection
from typing import Any


def serve(conn: Any, url: str, version: str) -> None:
    """Serve requests ``(op, args)`` one at a time, answering ``("ok", result)`` or ``("error", text)``."""
    from _convex import PyConvexClient

    client = PyConvexClient(url, version)
    subscription = None
    while True:
        try:
            op, args = conn.recv()
        except (EOFError, OSError):
            return
        if op == "close":
            return
        try:
            if op == "subscribe":
                subscription = client.subscribe(*args)
                result: Any = str(subscription.id)  # (not picklable: its text)
            elif op == "next":
                result = subscription.next()  # type: ignore[union-attr]
            elif op == "unsubscribe":
                subscription.unsubscribe()  # type: ignore[union-attr]
                result = None
            else:  # query, mutation, action, set_auth, set_admin_auth
                result = getattr(client, op)(*args)
            conn.send(("ok", result))
        except Exception as exc:  # noqa: BLE001 - sent back and raised in the caller
            conn.send(("error", f"{exc}"))


if __name__ == "__main__":
    serve(Connection(int(sys.argv[1])), sys.argv[2], sys.argv[3])
