"""Running the server: uvicorn on a background thread, so a notebook keeps working.

    handle = app.serve(port=0, block=False)   # port 0: any free port
    handle.url          # 'http://127.0.0.1:41234'
    handle.admin_key
    handle.stop()
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import fields
from typing import TYPE_CHECKING, Any, Self

from ..backend.env import publish_served_url
from . import pyclient_bridge
from .auth import TokenVerifier
from .deployment import Deployment, ServerSettings

if TYPE_CHECKING:
    from ..backend.app import Backend

__all__ = ["ServerHandle", "serve"]


class ServerHandle:
    """A running server: ``.url``, ``.admin_key``, ``.stop()`` (also a context manager)."""

    def __init__(self, server: Any, thread: threading.Thread, deployment: Deployment, host: str, port: int) -> None:
        self._server = server
        self._thread = thread
        self.deployment = deployment
        self.host = host
        self.port = port
        shown = f"[{host}]" if ":" in host else host
        self.url = f"http://{shown}:{port}"
        self.admin_key = deployment.admin_key

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout: float = 10.0) -> None:
        """Close every connection, stop the server and detach it from the backend."""
        self._server.should_exit = True
        self._thread.join(timeout)
        if self._thread.is_alive():  # connections that would not close: force it
            self._server.force_exit = True
            self._thread.join(timeout)
        self.deployment.close()
        pyclient_bridge.unregister(self.url)
        if getattr(self.deployment.backend, "served_url", None) == self.url:
            try:
                publish_served_url(self.deployment.backend, None)
            except Exception:  # noqa: BLE001 - the backend was closed first: nothing reads it any more
                self.deployment.backend.served_url = None

    def wait(self) -> None:
        """Block until the server stops (Ctrl-C stops it)."""
        try:
            while self._thread.is_alive():
                self._thread.join(0.5)
        except KeyboardInterrupt:
            self.stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<ServerHandle {self.url} {'running' if self.running else 'stopped'}>"


def _key_note(deployment: Deployment, given: str | None) -> str:
    """What the start line says about the admin key: shown in full only when just created."""
    if given:
        return "admin key: the one given"
    if deployment.admin_key_created:
        where = (
            f"saved with the database; `convex-notebook admin-key --db {deployment.backend.path}` shows it again"
            if deployment.backend.path else "in memory: a new one at every start"
        )
        return f"admin key: {deployment.admin_key} - {where}"
    return f"admin key saved with the database: `convex-notebook admin-key --db {deployment.backend.path}` shows it"


def serve(
    backend: Backend,
    host: str = "127.0.0.1",
    port: int = 3210,
    *,
    block: bool = True,
    admin_key: str | None = None,
    verify_token: TokenVerifier | None = None,
    log_level: str = "warning",
    settings: ServerSettings | None = None,
    **overrides: Any,
) -> ServerHandle:
    """Serve ``backend`` on ``host:port`` (see :meth:`Backend.serve`).

    ``overrides`` set :class:`ServerSettings` fields (``max_message_bytes``, ``ping_interval``,
    ``dev_tokens``, ``allow_admin_key_in_url``, ...). User tokens are verified by the backend's
    auth providers (``cn.Backend(auth=...)``, ``app.set_auth``); ``verify_token`` (token →
    claims) replaces them. With ``block=True`` this returns only when the server stops (Ctrl-C).
    """
    import uvicorn

    from .asgi import build_app

    settings = settings or ServerSettings()
    known = {f.name for f in fields(ServerSettings)}
    for key, value in overrides.items():
        if key not in known:
            raise TypeError(f"serve() got an unknown option {key!r}; options: {', '.join(sorted(known))}")
        setattr(settings, key, value)
    deployment = Deployment(backend, admin_key=admin_key, verify_token=verify_token, settings=settings)
    config = uvicorn.Config(
        build_app(deployment),
        host=host,
        port=port,
        log_level=log_level,
        lifespan="off",
        ws="websockets-sansio",
        ws_max_size=settings.max_message_bytes,
        ws_ping_interval=settings.ws_ping_interval,
        ws_ping_timeout=settings.ws_ping_timeout,
        timeout_graceful_shutdown=3,
    )
    server = uvicorn.Server(config)
    failure: list[BaseException] = []

    def run() -> None:
        try:
            server.run()
        except BaseException as exc:  # noqa: BLE001 - SystemExit when the port is taken
            failure.append(exc)

    thread = threading.Thread(target=run, name=f"convex-server-{port}", daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            deployment.close()
            why = f": {failure[0]!r}" if failure else ""
            raise OSError(f"The server could not start on {host}:{port} (is the port in use?){why}")
        time.sleep(0.01)
    actual_port = port
    for srv in server.servers:
        for sock in srv.sockets:
            actual_port = sock.getsockname()[1]
            break
    handle = ServerHandle(server, thread, deployment, host, actual_port)
    backend.site_url = handle.url  # where ctx.storage's URLs point
    publish_served_url(backend, handle.url)  # ctx.env's CONVEX_CLOUD_URL / CONVEX_SITE_URL
    if not block:  # the official PyPI client in this same process must not hang (pyclient_bridge.py)
        pyclient_bridge.register(handle.url)
    if settings.print_admin_key:
        print(f"convex_notebook: serving {handle.url} ({_key_note(deployment, admin_key)})", flush=True)
    if settings.dev_tokens:
        print(
            "convex_notebook: DEV TOKENS: user tokens that no auth provider claims are accepted "
            "UNVERIFIED (anyone can sign in as anyone); for local experiments only", file=sys.stderr, flush=True,
        )
    if block:
        handle.wait()
    return handle
