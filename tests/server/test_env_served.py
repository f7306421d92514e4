"""Environment variables of a deployment from the outside: `convex-notebook env` on --db and
--url, `cn.connect(url).env`, the update endpoint (admin only, all or nothing); and the
official CLI's `npx convex env`, `npx convex logs`, `npx convex function-spec`."""

from __future__ import annotations

import json
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import pytest

import convex_notebook as cn
from convex_notebook.server.cli import main

from server_helpers import INTEROP

NODE_DIR = INTEROP / "node"


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(params=["db", "url"])
def target(request: Any, tmp_path: Path) -> Iterator[tuple[list[str], Any]]:
    """(flags, a function returning the deployment's variables as the backend sees them)."""
    if request.param == "db":
        path = tmp_path / "app.sqlite3"

        def stored() -> dict:
            app = cn.Backend(str(path), echo_logs=False)
            try:
                return dict(app.env)
            finally:
                app.close()

        yield ["--db", str(path)], stored
        return
    app = cn.Backend(echo_logs=False)
    handle = app.serve(port=0, block=False, print_admin_key=False)
    yield ["--url", handle.url, "--admin-key", handle.admin_key], lambda: dict(app.env)
    handle.stop()
    app.close()


def test_convex_notebook_env(capsys: pytest.CaptureFixture[str], target: tuple[list[str], Any]) -> None:
    flags, stored = target
    assert cli(capsys, "env", "list", *flags) == (0, "", "No environment variables set\n")
    code, out, err = cli(capsys, "env", "set", "API_KEY", "s3cret", *flags)
    assert code == 0 and "s3cret" not in out + err and "API_KEY" in err
    assert cli(capsys, "env", "set", "MODE=fast", *flags)[0] == 0
    assert stored() == {"API_KEY": "s3cret", "MODE": "fast"}
    assert cli(capsys, "env", "list", *flags)[1] == "API_KEY=s3cret\nMODE=fast\n"
    assert cli(capsys, "env", "get", "MODE", *flags)[1] == "fast\n"
    assert cli(capsys, "env", "remove", "MODE", *flags)[0] == 0
    code, _, err = cli(capsys, "env", "get", "MODE", *flags)
    assert code == 1 and 'Environment variable "MODE" not found' in err
    code, _, err = cli(capsys, "env", "set", "9LIVES", "x", *flags)
    assert code == 1 and "must start with a letter" in err
    assert cli(capsys, "env", "set", "ONLY_NAME", *flags)[0] == 1  # no value: usage error
    assert stored() == {"API_KEY": "s3cret"}


def test_remote_env_and_update_endpoint(app: cn.Backend, server: Any) -> None:
    remote = cn.connect(server.url, admin_key=server.admin_key)
    try:
        remote.env["A"] = "1"
        remote.env.update({"B": "2", "C": "3"})
        del remote.env["C"]
        assert dict(app.env) == {"A": "1", "B": "2"} == dict(remote.env)
        assert remote.env["B"] == "2" and "C" not in remote.env
        with pytest.raises(cn.ConvexFunctionError, match="letters, digits and underscores"):
            remote.env["BAD-NAME"] = "x"
    finally:
        remote.close()

    def post(body: dict, key: str | None) -> tuple[int, dict]:
        headers = {"Content-Type": "application/json"}
        if key:
            headers["Authorization"] = f"Convex {key}"
        request = urllib.request.Request(
            server.url + "/api/update_environment_variables", data=json.dumps(body).encode(), headers=headers
        )
        try:
            with urllib.request.urlopen(request) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    assert post({"changes": [{"name": "X", "value": "1"}]}, None)[0] == 401
    status, body = post({"changes": [{"name": "X", "value": "1"}, {"name": "bad name", "value": "2"}]}, server.admin_key)
    assert status == 400 and body["code"] == "InvalidEnvironmentVariable" and "bad name" in body["message"]
    assert post({"changes": "nope"}, server.admin_key)[0] == 400
    assert dict(app.env) == {"A": "1", "B": "2"}  # nothing of the refused requests was applied


@pytest.mark.interop
class TestOfficialCli:
    @staticmethod
    def run(server: Any, *args: str) -> subprocess.CompletedProcess:
        cli_path = NODE_DIR / "node_modules" / ".bin" / "convex"
        assert cli_path.exists(), "run `npm ci` in tests/interop/node (scripts/test does)"
        return subprocess.run(
            [str(cli_path), *args, "--url", server.url, "--admin-key", server.admin_key],
            cwd=NODE_DIR, capture_output=True, text=True, timeout=120,
        )

    def test_npx_convex_env(self, app: cn.Backend, server: Any) -> None:
        @app.query
        def key(ctx: Any) -> Any:
            return ctx.env.get("API_KEY")

        live = app.subscribe("key")
        assert self.run(server, "env", "set", "API_KEY", "secret-1").returncode == 0
        assert live.value == "secret-1"  # the live query re-ran on the CLI's change
        assert self.run(server, "env", "set", "OTHER", "x").returncode == 0
        assert self.run(server, "env", "list").stdout == "API_KEY=secret-1\nOTHER=x\n"
        assert self.run(server, "env", "get", "API_KEY").stdout == "secret-1\n"
        assert self.run(server, "env", "remove", "OTHER").returncode == 0
        assert dict(app.env) == {"API_KEY": "secret-1"}
        missing = self.run(server, "env", "get", "OTHER")
        assert "not found" in missing.stderr

    def test_npx_convex_function_spec(self, app: cn.Backend, server: Any) -> None:
        proc = self.run(server, "function-spec")
        assert proc.returncode == 0, proc.stderr
        spec = json.loads(proc.stdout)
        assert spec["url"] == server.url
        by_id = {f.get("identifier"): f for f in spec["functions"]}
        send = by_id["messages.js:send"]
        assert send["functionType"] == "Mutation" and send["visibility"] == {"kind": "public"}
        assert json.loads(send["args"])["type"] == "object"
        assert by_id["admin.js:secret"]["visibility"] == {"kind": "internal"}

    def test_npx_convex_logs_streams_new_lines(self, app: cn.Backend, server: Any) -> None:
        @app.mutation
        def shout(ctx: Any, text: str) -> None:
            print("shouting", text)

        cli_path = NODE_DIR / "node_modules" / ".bin" / "convex"
        proc = subprocess.Popen(
            [str(cli_path), "logs", "--url", server.url, "--admin-key", server.admin_key],
            cwd=NODE_DIR, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        lines: list[str] = []
        threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True).start()  # type: ignore[arg-type]
        try:
            deadline = time.monotonic() + 60
            while not any("shouting" in line for line in lines) and time.monotonic() < deadline:
                app.mutation("shout", {"text": "hello"})  # until the CLI is watching and shows one
                time.sleep(0.5)
        finally:
            proc.kill()
            proc.wait()
        shown = [line for line in lines if "shouting" in line]
        assert shown and "M(shout)" in shown[0] and "[LOG] shouting hello" in shown[0]
