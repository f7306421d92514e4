"""`convex-notebook serve`: the admin key is generated once and kept with the data; the
engine and backend never import the server."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx

from server_helpers import ServerProcess, free_port


def test_admin_key_is_generated_once_and_kept_with_the_database(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "app.sqlite3", free_port()).start()
    first = server.admin_key
    assert first.startswith("convex-notebook|") and len(first) > 40
    r = httpx.post(server.url + "/api/function", json={"path": "admin:secret", "args": {}},
                   headers={"Authorization": f"Convex {first}"})
    assert r.json()["status"] == "success"
    server.stop()
    server.start()
    assert server.admin_key == first
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
