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


# -- a raw sync-protocol client (websockets), for tests that look at the frames -----------------

import asyncio  # noqa: E402
import base64 as _b64  # noqa: E402
import json as _json  # noqa: E402
import struct as _struct  # noqa: E402
import uuid as _uuid  # noqa: E402
from typing import Any  # noqa: E402

from websockets.asyncio.client import connect as _ws_connect  # noqa: E402


def ts_of(text: str) -> int:
    return _struct.unpack("<Q", _b64.b64decode(text))[0]


def ts_text(ts: int) -> str:
    return _b64.b64encode(_struct.pack("<Q", ts)).decode()


class RawSync:
    """Speaks the sync protocol frame by frame: ``await c.send({...})``, ``await c.recv()``."""

    def __init__(self, url: str, session_id: str | None = None, **connect_options: Any) -> None:
        self.url = url.replace("http://", "ws://") + "/api/sync"
        self.session_id = session_id or str(_uuid.uuid4())
        self.options = connect_options
        self.ws: Any = None
        self.qs_version = 0
        self.id_version = 0
        self.end: dict | None = None  # last endVersion received

    async def open(self, *, connect: bool = True, connection_count: int = 0, max_observed: int | None = None) -> "RawSync":
        self.ws = await _ws_connect(self.url, **self.options)
        if connect:
            msg: dict = {"type": "Connect", "sessionId": self.session_id, "connectionCount": connection_count,
                         "lastCloseReason": "InitialConnect", "clientTs": 0}
            if max_observed is not None:
                msg["maxObservedTimestamp"] = ts_text(max_observed)
            await self.send(msg)
        return self

    async def send(self, msg: Any) -> None:
        await self.ws.send(msg if isinstance(msg, (str, bytes)) else _json.dumps(msg))

    async def recv(self, *, pings: bool = False, timeout: float = 20) -> dict:
        while True:
            msg = _json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
            if msg["type"] == "Ping" and not pings:
                continue
            if msg["type"] == "Transition":
                if self.end is not None:
                    assert msg["startVersion"] == self.end, (msg["startVersion"], self.end)
                else:
                    assert msg["startVersion"] == {"querySet": 0, "identity": 0, "ts": "AAAAAAAAAAA="}
                assert ts_of(msg["endVersion"]["ts"]) >= ts_of(msg["startVersion"]["ts"])
                self.end = msg["endVersion"]
            return msg

    async def recv_type(self, kind: str, **kw: Any) -> dict:
        while True:
            msg = await self.recv(**kw)
            if msg["type"] == kind:
                return msg

    async def modify(self, *mods: dict) -> dict:
        await self.send({"type": "ModifyQuerySet", "baseVersion": self.qs_version,
                         "newVersion": self.qs_version + 1, "modifications": list(mods)})
        self.qs_version += 1
        return await self.recv_type("Transition")

    @staticmethod
    def add(query_id: int, path: str, args: dict | None = None) -> dict:
        return {"type": "Add", "queryId": query_id, "udfPath": path, "args": [args or {}]}

    async def mutation(self, request_id: int, path: str, args: dict | None = None) -> tuple[dict, dict]:
        """Send a mutation: (MutationResponse, the Transition that follows it)."""
        await self.send({"type": "Mutation", "requestId": request_id, "udfPath": path, "args": [args or {}]})
        response = await self.recv_type("MutationResponse")
        transition = await self.recv_type("Transition")
        return response, transition

    async def closed(self, timeout: float = 20) -> Any:
        """Wait for the server to close the socket; returns the close frame."""
        from websockets.exceptions import ConnectionClosed

        try:
            while True:
                await asyncio.wait_for(self.ws.recv(), timeout)
        except ConnectionClosed as exc:
            return exc.rcvd

    async def close(self) -> None:
        await self.ws.close()


def mods_by_id(transition: dict) -> dict[int, dict]:
    return {m["queryId"]: m for m in transition["modifications"]}


def jwt(claims: dict) -> str:
    """A JWT-shaped test token (unsigned) with iat/exp, as the JS auth manager wants."""
    import time as _time

    def part(d: dict) -> str:
        return _b64.urlsafe_b64encode(_json.dumps(d).encode()).decode().rstrip("=")

    now = int(_time.time())
    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part({'iat': now, 'exp': now + 600, **claims})}.sig"


# -- `convex-notebook serve` in a subprocess ------------------------------------------------------

import signal as _signal  # noqa: E402
import subprocess as _subprocess  # noqa: E402
import sys as _sys  # noqa: E402
import time as _time_mod  # noqa: E402

CLI = Path(_sys.executable).with_name("convex-notebook")


class ServerProcess:
    def __init__(self, db: Path, port: int) -> None:
        self.db, self.port = db, port
        self.url = f"http://127.0.0.1:{port}"
        self.proc: _subprocess.Popen | None = None
        self.admin_key = ""

    def start(self) -> "ServerProcess":
        command = [str(CLI)] if CLI.exists() else [_sys.executable, "-m", "convex_notebook.server.cli"]
        self.proc = _subprocess.Popen(
            command + ["serve", "--db", str(self.db), "--port", str(self.port), "--functions", str(FUNCTIONS)],
            stdout=_subprocess.PIPE, stderr=_subprocess.STDOUT, text=True,
        )
        deadline = _time_mod.monotonic() + 60
        seen = []
        while _time_mod.monotonic() < deadline:
            line = self.proc.stdout.readline()  # type: ignore[union-attr]
            if not line:
                break
            seen.append(line)
            if "serving" in line:
                self.admin_key = line.split("admin key: ")[1].rstrip(")\n")
                return self
        raise AssertionError(f"the server did not start: {''.join(seen)}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(_signal.SIGTERM)  # the CLI stops cleanly on SIGTERM
            try:
                self.proc.wait(20)
            except _subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


