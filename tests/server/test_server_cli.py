"""`convex-notebook serve`: the admin key is generated once and kept with the data; the
engine and backend never import the server."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from server_helpers import ISSUER, ServerProcess, forged, free_port, jwt


def test_admin_key_is_generated_once_and_kept_with_the_database(tmp_path: Path, monkeypatch: Any) -> None:
    # $CONVEX_NOTEBOOK_ADMIN_KEY is the clients' setting: the server neither takes it nor
    # lets it override the saved key (it says so instead).
    monkeypatch.setenv("CONVEX_NOTEBOOK_ADMIN_KEY", "convex-notebook|from-the-environment")
    server = ServerProcess(tmp_path / "app.sqlite3", free_port()).start()
    first = server.admin_key
    assert first.startswith("convex-notebook|") and len(first) > 40 and "environment" not in first
    assert first in server.start_line  # printed in full once, when created...
    # ...in a database file only its owner can read.
    assert stat.S_IMODE(os.stat(server.db).st_mode) == 0o600
    assert server.proc is not None and server.proc.stdout is not None
    assert "$CONVEX_NOTEBOOK_ADMIN_KEY is set but is not this deployment's admin key" in server.proc.stdout.readline()
    r = httpx.post(server.url + "/api/function", json={"path": "admin:secret", "args": {}},
                   headers={"Authorization": f"Convex {first}"})
    assert r.json()["status"] == "success"
    server.stop()
    server.start()
    assert server.admin_key == first  # read with `convex-notebook admin-key --db`
    assert first not in server.start_line and "convex-notebook admin-key --db" in server.start_line
    assert server.saved_admin_key() == first
    r = httpx.post(server.url + "/api/function", json={"path": "admin:secret", "args": {}},
                   headers={"Authorization": "Convex not-the-key"})
    assert r.status_code == 401
    server.stop()


def test_help() -> None:
    out = subprocess.run([sys.executable, "-m", "convex_notebook.server.cli", "serve", "--help"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0
    for flag in ("--db", "--port", "--functions", "--admin-key"):
        assert flag in out.stdout


def test_engine_and_backend_do_not_import_the_server() -> None:
    code = (
        "import sys, convex_notebook as cn\n"
        "app = cn.Backend()\n"
        "app.mutation\n"
        "bad = [m for m in sys.modules if m.startswith(('convex_notebook.server', 'starlette', 'uvicorn', 'websockets'))]\n"
        "print(bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def whoami(server: ServerProcess, token: str) -> httpx.Response:
    return httpx.post(server.url + "/api/query", json={"path": "auth:whoami", "args": {}},
                      headers={"Authorization": f"Bearer {token}"})


def test_auth_config_py_among_the_functions_and_dev_tokens(tmp_path: Path) -> None:
    """An auth.config.py given with --functions is the deployment's auth config (as Convex's
    convex/auth.config.ts); --dev-tokens is the explicit switch for unverified tokens."""
    (tmp_path / "auth.config.py").write_text(f"providers = [{ISSUER.custom_provider()!r}]\n")
    server = ServerProcess(tmp_path / "a.sqlite3", free_port(), "--functions", str(tmp_path / "auth.config.py"), auth=False)
    server.start()
    try:
        assert whoami(server, jwt({"sub": "u1", "name": "Ada"})).json()["value"] == {"subject": "u1", "name": "Ada"}
        r = whoami(server, forged({"sub": "admin"}))
        assert r.status_code == 401 and r.json()["code"] == "NoAuthProvider"
    finally:
        server.stop()
    server = ServerProcess(tmp_path / "b.sqlite3", free_port(), auth=False).start()
    try:
        r = whoami(server, jwt({"sub": "u1"}))  # no providers: even a good token is refused
        assert r.status_code == 401 and "(no providers configured)" in r.json()["message"]
    finally:
        server.stop()
    server = ServerProcess(tmp_path / "c.sqlite3", free_port(), "--dev-tokens", auth=False).start()
    try:
        assert server.proc is not None and server.proc.stdout is not None
        assert "DEV TOKENS" in server.proc.stdout.readline()  # said at start
        assert whoami(server, forged({"sub": "admin"})).json()["value"]["subject"] == "admin"
    finally:
        server.stop()


def test_serve_refuses_a_bad_auth_config(tmp_path: Path) -> None:
    bad = tmp_path / "auth.json"
    bad.write_text('{"providers": [{"domain": "https://a.test"}]}')
    out = subprocess.run([sys.executable, "-m", "convex_notebook.server.cli", "serve", "--auth-config", str(bad),
                          "--port", str(free_port())], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "providers[0].applicationID" in out.stderr


def test_admin_key_command_without_a_key(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "convex_notebook.server.cli", "admin-key", "--db",
                          str(tmp_path / "none.sqlite3")], capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and "no database" in out.stderr
