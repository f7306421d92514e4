"""A served deployment's components: never reachable by clients, reachable by admins through
Convex's `componentPath` (HTTP API, sync protocol, `npx convex run --component`)."""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.request
from typing import Any

import pytest

import convex_notebook as cn
from convex_notebook import v

from server_helpers import INTEROP


@pytest.fixture
def app() -> Any:
    backend = cn.Backend(echo_logs=False)
    counter = cn.Component("counter", schema=cn.define_schema({"counts": cn.define_table({"n": v.number()})}))

    @counter.module("public").mutation
    def bump(ctx: Any) -> float:
        ctx.db.insert("counts", {"n": 1})
        return float(len(ctx.db.query("counts").collect()))

    backend.use(counter, name="likes")
    yield backend
    backend.close()


def call(server: Any, body: dict, admin: bool) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json"}
    if admin:
        headers["Authorization"] = f"Convex {server.admin_key}"
    request = urllib.request.Request(server.url + "/api/mutation", data=json.dumps(body).encode(), headers=headers)
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_component_functions_only_for_admins(app: cn.Backend, server: Any) -> None:
    body = {"path": "public:bump", "componentPath": "likes", "args": {}, "format": "json"}
    status, answer = call(server, body, admin=False)
    assert answer["status"] == "error" and "Could not find" in answer["errorMessage"]
    assert app.count("likes/counts") == 0
    status, answer = call(server, body, admin=True)
    assert status == 200 and answer["value"] == 1
    assert call(server, {**body, "componentPath": "../x"}, admin=True)[0] == 400
    assert call(server, {"path": "likes:public:bump", "args": {}}, admin=False)[1]["status"] == "error"


@pytest.mark.interop
def test_npx_convex_run_component(app: cn.Backend, server: Any) -> None:
    cli = INTEROP / "node" / "node_modules" / ".bin" / "convex"
    proc = subprocess.run(
        [str(cli), "run", "--component", "likes", "public:bump", "--url", server.url, "--admin-key", server.admin_key],
        cwd=INTEROP / "node", capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert app.count("likes/counts") == 1


def test_function_spec_names_component_functions_by_mount(app: cn.Backend) -> None:
    spec = app.run("_system/cli/modules:apiSpec")
    bump = next(f for f in spec if f.get("componentPath") == "likes")
    assert bump["identifier"] == "public.js:bump" and bump["functionType"] == "Mutation"
