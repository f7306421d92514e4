"""The official PyPI ``convex`` client, used in the process (the kernel) that serves.

``convex.ConvexClient`` is a Rust extension whose calls block *holding the GIL* until the
server answers; when that server is ``app.serve(block=False)`` in the same process, it can
never answer (it needs the GIL), and the call hangs forever. So while this process serves,
clients of the official package pointed at one of its own URLs are redirected: their calls
run in a helper process (spawned on first use, one per client and one per subscription,
each holding a real ``PyConvexClient``) and this process waits on a pipe, without the GIL.
Values, errors (``convex.ConvexError`` with its data) and subscriptions behave as before;
clients of other deployments are untouched.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import threading
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

__all__ = ["register", "unregister"]

_served: set[tuple[str, int]] = set()
_lock = threading.Lock()
_patched = False


def _key(url: str) -> tuple[str, int] | None:
    parts = urlsplit(url)
    host = parts.hostname or ""
    if host in ("localhost", "127.0.0.1", "::1", "0.0.0.0"):
        host = "127.0.0.1"
    return (host, parts.port or 80) if parts.port or parts.scheme == "http" else None


def register(url: str) -> None:
    """A server of this process now answers at ``url``: redirect official clients of it."""
    key = _key(url)
    if key is None:
        return
    with _lock:
        _served.add(key)
    _patch()


def unregister(url: str) -> None:
    key = _key(url)
    with _lock:
        _served.discard(key)  # type: ignore[arg-type]


def _is_served_here(url: str) -> bool:
    key = _key(url)
    with _lock:
        return key in _served


def _patch() -> None:
    """Wrap ``convex.ConvexClient.__init__`` (once), if the package is installed."""
    global _patched
    if _patched:
        return
    try:
        import convex
    except ImportError:
        return
    original = convex.ConvexClient.__init__

    def __init__(self: Any, deployment_url: str) -> None:
        if _is_served_here(deployment_url):
            self.client = _BridgedClient(deployment_url, getattr(convex, "__version__", "0"))
        else:
            original(self, deployment_url)

    __init__.__doc__ = original.__doc__
    convex.ConvexClient.__init__ = __init__  # type: ignore[method-assign]  # the redirect (module doc)
    _patched = True


# -- the helper process ------------------------------------------------------------------------
WORKER = Path(__file__).with_name("_pyclient_worker.py")


class _Helper:
    """One helper process (``_pyclient_worker.py``) and its socket; requests are serialized."""

    def __init__(self, url: str, version: str, auth: list[tuple[str, Any]]) -> None:
        ours, theirs = socket.socketpair()
        self._process = subprocess.Popen(
            [sys.executable, str(WORKER), str(theirs.fileno()), url, version], pass_fds=[theirs.fileno()],
        )
        theirs.close()
        self._conn = Connection(ours.detach())
        self._lock = threading.Lock()
        for op, value in auth:
            self.call(op, (value,))

    def call(self, op: str, args: tuple = ()) -> Any:
        with self._lock:
            try:
                self._conn.send((op, args))
                status, result = self._conn.recv()  # waits without holding the GIL
            except (EOFError, OSError) as exc:
                raise Exception(f"The convex client's helper process stopped ({exc})") from None  # noqa: TRY002 - as the official client
        if status == "error":
            raise Exception(result)  # noqa: TRY002 - the official client raises plain Exception
        return result

    def close(self) -> None:
        try:
            with self._lock:
                self._conn.send(("close", ()))
                self._conn.close()
        except (OSError, EOFError):
            pass
        try:
            self._process.wait(2)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


class _BridgedSubscription:
    """What ``PyQuerySubscription`` offers ``convex.QuerySubscription``, through a helper."""

    def __init__(self, helper: _Helper, sub_id: Any) -> None:
        self._helper = helper
        self.id = sub_id
        self._alive = True

    def exists(self) -> bool:
        return self._alive

    def next(self) -> Any:
        return self._helper.call("next")

    async def anext(self) -> Any:
        return await asyncio.to_thread(self.next)

    def unsubscribe(self) -> None:
        if self._alive:
            self._alive = False
            try:
                self._helper.call("unsubscribe")
            finally:
                self._helper.close()

    def __del__(self) -> None:
        if getattr(self, "_alive", False):
            self._alive = False
            self._helper.close()


class _BridgedClient:
    """What ``PyConvexClient`` offers ``convex.ConvexClient``, through helper processes."""

    def __init__(self, url: str, version: str) -> None:
        self._url, self._version = url, version
        self._auth: list[tuple[str, Any]] = []
        self._helper: _Helper | None = None

    def _calls(self) -> _Helper:
        if self._helper is None:
            self._helper = _Helper(self._url, self._version, self._auth)
        return self._helper

    def query(self, name: str, args: Any) -> Any:
        return self._calls().call("query", (name, args))

    def mutation(self, name: str, args: Any) -> Any:
        return self._calls().call("mutation", (name, args))

    def action(self, name: str, args: Any) -> Any:
        return self._calls().call("action", (name, args))

    def _set(self, op: str, value: Any) -> None:
        self._auth = [(o, v) for o, v in self._auth if o != op] + [(op, value)]
        if self._helper is not None:
            self._helper.call(op, (value,))

    def set_auth(self, token: Any) -> None:
        self._set("set_auth", token)

    def set_admin_auth(self, admin_key: str) -> None:
        self._set("set_admin_auth", admin_key)

    def subscribe(self, name: str, args: Any) -> _BridgedSubscription:
        helper = _Helper(self._url, self._version, self._auth)  # its own: next() blocks it
        return _BridgedSubscription(helper, helper.call("subscribe", (name, args)))

    def watch_all(self) -> Any:
        raise NotImplementedError(
            "watch_all() is not available for a client of a deployment served by this same process; "
            "iterate each subscription, or use cn.connect(url).subscribe(...)"
        )

    def __del__(self) -> None:
        helper = getattr(self, "_helper", None)
        if helper is not None:
            helper.close()
