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
    """A backend with the interop functions (tests/interop/functions.py), trusting tokens that
    ``jwt()`` signs."""
    app = cn.Backend(path, echo_logs=False, auth=auth_config())
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


# -- tokens: signed by keys the tests generate, verified through real JWKS -----------------------

import http.server as _http_server  # noqa: E402
import threading as _threading  # noqa: E402

import jwt as _pyjwt  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec as _ec, rsa as _rsa  # noqa: E402

TEST_ISSUER = "https://issuer.test"
TEST_AUDIENCE = "convex-notebook-tests"


class TestIssuer:
    """An identity provider of our own: signs tokens (RS256 or ES256) with keys it generates and
    publishes their JWKS (as a ``data:`` URI, or served by :class:`OidcServer`)."""

    __test__ = False  # not a pytest class

    def __init__(self, issuer: str = TEST_ISSUER, audience: str | None = TEST_AUDIENCE, algorithm: str = "RS256") -> None:
        self.issuer, self.audience, self.algorithm = issuer, audience, algorithm
        self.keys: dict[str, Any] = {}  # kid → private key
        self.rotate()

    def new_key(self) -> Any:
        if self.algorithm == "ES256":
            return _ec.generate_private_key(_ec.SECP256R1())
        return _rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def rotate(self, keep_old: bool = False) -> str:
        """A new signing key (the JWKS then holds it, and the old ones only if ``keep_old``)."""
        kid = f"key-{len(self.keys) + 1}-{_uuid.uuid4().hex[:6]}"
        if not keep_old:
            self.keys.clear()
        self.keys[kid] = self.new_key()
        self.kid = kid
        return kid

    def jwks(self) -> dict:
        algo = _pyjwt.algorithms.ECAlgorithm if self.algorithm == "ES256" else _pyjwt.algorithms.RSAAlgorithm
        out = []
        for kid, key in self.keys.items():
            jwk = algo.to_jwk(key.public_key(), as_dict=True)
            out.append({**jwk, "kid": kid, "alg": self.algorithm, "use": "sig"})
        return {"keys": out}

    def data_uri(self) -> str:
        return "data:text/plain;charset=utf-8;base64," + _b64.b64encode(_json.dumps(self.jwks()).encode()).decode()

    def custom_provider(self) -> dict:
        out = {"type": "customJwt", "issuer": self.issuer, "jwks": self.data_uri(), "algorithm": self.algorithm}
        if self.audience is not None:
            out["applicationID"] = self.audience
        return out

    def claims(self, claims: dict) -> dict:
        import time as _time

        now = int(_time.time())
        base: dict = {"iss": self.issuer, "iat": now, "exp": now + 600}
        if self.audience is not None:
            base["aud"] = self.audience
        return {**base, **claims}

    def sign(self, claims: dict, *, kid: str | None = None, key: Any = None, headers: dict | None = None) -> str:
        """A token with ``claims`` (plus iss, aud, iat and exp unless given), signed by the
        current key (or ``key``), its ``kid`` in the header."""
        kid = kid or self.kid
        return _pyjwt.encode(self.claims(claims), key or self.keys[kid], algorithm=self.algorithm,
                             headers={"kid": kid, **(headers or {})})


class OidcServer:
    """An OIDC provider's discovery endpoints on 127.0.0.1 (``/.well-known/openid-configuration``
    and ``/jwks``) for an issuer whose ``domain`` is this server's URL; counts the requests."""

    def __init__(self, audience: str = TEST_AUDIENCE, algorithm: str = "RS256") -> None:
        outer = self
        self.hits: dict[str, int] = {}

        class Handler(_http_server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                outer.hits[self.path] = outer.hits.get(self.path, 0) + 1
                if self.path == "/.well-known/openid-configuration":
                    body = {"issuer": outer.url, "jwks_uri": outer.url + "/jwks",
                            "id_token_signing_alg_values_supported": [outer.issuer.algorithm]}
                elif self.path == "/jwks":
                    body = outer.issuer.jwks()
                else:
                    self.send_error(404)
                    return
                data = _json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = _http_server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.issuer = TestIssuer(self.url, audience, algorithm)
        self.thread = _threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def provider(self) -> dict:
        return {"domain": self.url, "applicationID": self.issuer.audience}

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


# The issuer of the server tests' apps (make_app configures it): jwt() signs with it.
ISSUER = TestIssuer()


def auth_config() -> dict:
    return {"providers": [ISSUER.custom_provider()]}


def jwt(claims: dict) -> str:
    """A token signed by the test issuer that make_app's backends trust."""
    return ISSUER.sign(claims)


def forged(claims: dict) -> str:
    """An unsigned JWT-shaped token (``alg: none``): what the server must refuse."""
    import time as _time

    def part(d: dict) -> str:
        return _b64.urlsafe_b64encode(_json.dumps(d).encode()).decode().rstrip("=")

    now = int(_time.time())
    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part({'iat': now, 'exp': now + 600, **claims})}."


# -- `convex-notebook serve` in a subprocess ------------------------------------------------------

import signal as _signal  # noqa: E402
import subprocess as _subprocess  # noqa: E402
import sys as _sys  # noqa: E402
import time as _time_mod  # noqa: E402

CLI = Path(_sys.executable).with_name("convex-notebook")


class ServerProcess:
    def __init__(self, db: Path, port: int, *extra: str, auth: bool = True) -> None:
        """``extra``: more ``serve`` options; ``auth``: trust the tokens jwt() signs."""
        self.db, self.port, self.extra, self.auth = db, port, list(extra), auth
        self.start_line = ""
        self.url = f"http://127.0.0.1:{port}"
        self.proc: _subprocess.Popen | None = None
        self.admin_key = ""

    def start(self) -> "ServerProcess":
        command = [str(CLI)] if CLI.exists() else [_sys.executable, "-m", "convex_notebook.server.cli"]
        options = ["serve", "--db", str(self.db), "--port", str(self.port), "--functions", str(FUNCTIONS)]
        if self.auth:
            auth_file = Path(self.db).with_name("auth.config.json")  # trusts the tokens jwt() signs
            auth_file.write_text(_json.dumps(auth_config()))
            options += ["--auth-config", str(auth_file)]
        self.proc = _subprocess.Popen(
            command + options + self.extra,
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
                if "admin key: convex-notebook|" in line:  # a new key is printed once, in full
                    self.admin_key = line.split("admin key: ")[1].split(" ")[0]
                else:  # a saved one: the admin-key command shows it
                    self.admin_key = self.saved_admin_key()
                self.start_line = line
                return self
        raise AssertionError(f"the server did not start: {''.join(seen)}")

    def saved_admin_key(self) -> str:
        command = [str(CLI)] if CLI.exists() else [_sys.executable, "-m", "convex_notebook.server.cli"]
        out = _subprocess.run(command + ["admin-key", "--db", str(self.db)], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        return out.stdout.strip()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(_signal.SIGTERM)  # the CLI stops cleanly on SIGTERM
            try:
                self.proc.wait(20)
            except _subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


