"""The official npm `convex` client (1.48.0, tests/interop/node) against our server.

ConvexHttpClient (query, mutation, action, admin `function`) and ConvexClient (onUpdate
firing again after another client's mutation, read-your-writes `await mutation`, action,
one-shot query, errors), with every value type JSON cannot carry; and the CLI of the same
package (`convex data`, `convex run`) with the deployment's admin key.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import zipfile
from typing import Any

import pytest

import convex_notebook as cn

from server_helpers import INTEROP, jwt, messages

pytestmark = pytest.mark.interop
NODE_DIR = INTEROP / "node"


def run_node(scenario: str, server: Any) -> dict:
    assert shutil.which("node"), "node is needed for the interop tests"
    assert (NODE_DIR / "node_modules" / "convex").is_dir(), "run `npm ci` in tests/interop/node (scripts/test does)"
    token = jwt({"sub": "js-user", "name": "Grace"})  # signed by the provider the server trusts
    proc = subprocess.run(
        ["node", "client.mjs", scenario, server.url, server.admin_key],
        cwd=NODE_DIR, capture_output=True, text=True, timeout=120, env={**os.environ, "CN_TEST_TOKEN": token},
    )
    lines = proc.stdout.strip().splitlines()
    assert lines, f"no output from node (exit {proc.returncode}): {proc.stderr[-3000:]}"
    out = json.loads(lines[-1])
    assert out["ok"], out.get("error")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def num(v: Any) -> dict:
    return {"t": "number", "v": v}


# What the JS side sent (SENT in client.mjs), as it must come back.
EXPECTED_SENT = {
    "bytes": {"t": "ArrayBuffer", "v": [0, 1, 2, 254, 255]},
    "float": num(1.5),
    "inf": num("Infinity"),
    "int64": {"t": "bigint", "v": "5"},
    "int64_max": {"t": "bigint", "v": "9223372036854775807"},
    "int64_neg": {"t": "bigint", "v": "-9007199254740993"},
    "int_as_float": num(3),
    "nan": num("NaN"),
    "neg_zero": num("-0"),
    "nested": {"t": "object", "v": {"list": {"t": "array", "v": [
        {"t": "bigint", "v": "1"}, {"t": "ArrayBuffer", "v": [7]}, {"t": "null"}, {"t": "boolean", "v": True},
    ]}}},
    "ninf": num("-Infinity"),
    "text": {"t": "string", "v": "héllo ☃"},
}
EXPECTED_SAMPLE = {
    "bytes": {"t": "ArrayBuffer", "v": [0, 1, 255]},
    "float": num(1.5),
    "inf": num("Infinity"),
    "int64": {"t": "bigint", "v": "-5"},
    "int64_max": {"t": "bigint", "v": "9223372036854775807"},
    "nan": num("NaN"),
    "neg_zero": num("-0"),
    "nested": EXPECTED_SENT["nested"],
    "ninf": num("-Infinity"),
    "text": {"t": "string", "v": "héllo ☃"},
    "whole": num(3),
}
EXPECTED_ERROR_DATA = {"t": "object", "v": {
    "big": {"t": "bigint", "v": "7"}, "code": num(42), "why": {"t": "string", "v": "nope"},
}}


def check_stored_in_python(app: cn.Backend) -> None:
    """What the JS client sent arrived as the right Python types."""
    docs = app.run(lambda ctx: ctx.db.query("values").collect())
    assert docs
    value = docs[-1]["value"]
    assert value["int64"] == cn.Int64(5) and type(value["int64"]) is cn.Int64
    assert value["int64_neg"] == cn.Int64(-9007199254740993)
    assert value["int64_max"] == cn.Int64(2**63 - 1)
    assert value["bytes"] == b"\x00\x01\x02\xfe\xff"
    assert math.isnan(value["nan"])
    assert value["neg_zero"] == 0.0 and math.copysign(1.0, value["neg_zero"]) == -1.0
    assert value["inf"] == math.inf and value["ninf"] == -math.inf
    assert value["int_as_float"] == 3.0 and type(value["int_as_float"]) is float
    assert value["text"] == "héllo ☃"
    assert value["nested"] == {"list": [cn.Int64(1), b"\x07", None, True]}


def test_http_client(app: cn.Backend, server: Any) -> None:
    out = run_node("http", server)
    assert out["sent"] == {"t": "object", "v": EXPECTED_SENT}
    assert out["stored"] == {"t": "object", "v": EXPECTED_SENT}
    assert out["sample"] == {"t": "object", "v": EXPECTED_SAMPLE}
    check_stored_in_python(app)
    assert out["id"]["t"] == "string"
    assert out["list"]["v"][0]["v"]["body"] == {"t": "string", "v": "hello"}
    assert out["action"] == {"t": "string", "v": "hello node"}
    # ConvexError: .data intact (Int64 → bigint); the failed mutation wrote nothing.
    assert out["convexError"]["thrown"] and out["convexError"]["convexError"]
    assert out["convexError"]["data"] == EXPECTED_ERROR_DATA
    assert ("error", "must be rolled back") not in messages(app)
    assert out["plainError"]["thrown"] and not out["plainError"]["convexError"]
    assert "boom" in out["plainError"]["message"]
    assert "Could not find public function for 'nope:missing'" in out["unknown"]["message"]
    # Internal functions: not callable without the admin key, callable with it.
    assert out["internal"]["thrown"] and "Could not find public function" in out["internal"]["message"]
    assert out["badArgs"]["thrown"] and "ArgumentValidationError" in out["badArgs"]["message"]
    assert out["adminSecret"] == {"t": "string", "v": "internal ok"}
    assert messages(app) == [("js-http", "hello"), ("admin", "secret")]


def test_convex_client_reactive(app: cn.Backend, server: Any) -> None:
    out = run_node("reactive", server)
    updates = out["updates"]
    assert updates[0] == []
    # onUpdate fired again after a mutation made by another client...
    assert ["from another client"] in updates
    # ...and `await client.mutation` returned only once the subscription showed the write.
    assert out["afterOwn"] == ["from another client", "own write"]
    assert out["action"] == {"t": "string", "v": "hello ws"}
    assert out["oneShot"] == {"t": "object", "v": EXPECTED_SAMPLE}
    assert out["stored"] == {"t": "object", "v": EXPECTED_SENT}
    check_stored_in_python(app)
    assert out["convexError"]["convexError"] and out["convexError"]["data"] == EXPECTED_ERROR_DATA
    assert out["queryError"]["thrown"] and "boom" in out["queryError"]["message"]
    assert messages(app) == [("js-other", "from another client"), ("js-ws", "own write")]
    assert out["anonymous"] is None
    assert out["signedIn"] == {"subject": "js-user", "name": "Grace"}
    assert out["authChanges"] == [True]


def test_convex_client_refuses_a_forged_token(app: cn.Backend, server: Any) -> None:
    """The issue's forged {"alg":"none"}.{"sub":"admin"} token through the official client's
    setAuth: AuthError, onAuthChange(false), and the queries run anonymous."""
    out = run_node("forgedAuth", server)
    assert out["authChanges"] == [False]
    assert out["who"] is None
    assert out["fetches"] >= 1


def run_cli(server: Any, *args: str) -> str:
    """The official CLI (`npx convex ...` of npm `convex`) against our server, with its admin key."""
    cli = NODE_DIR / "node_modules" / ".bin" / "convex"
    assert cli.exists(), "run `npm ci` in tests/interop/node (scripts/test does)"
    proc = subprocess.run(
        [str(cli), *args, "--url", server.url, "--admin-key", server.admin_key],
        cwd=NODE_DIR, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, (proc.stdout[-2000:], proc.stderr[-3000:])
    return proc.stdout


def test_cli_data_and_run(app: cn.Backend, server: Any) -> None:
    """`npx convex data` reads our system functions over an admin WebSocket; `npx convex run`
    calls public and internal functions."""
    app.mutation("messages:send", {"author": "py", "body": "hello"})
    assert "messages" in run_cli(server, "data").split()
    lines = run_cli(server, "data", "messages", "--format", "jsonl").strip().splitlines()
    assert [json.loads(line)["body"] for line in lines] == ["hello"]
    run_cli(server, "run", "messages:send", json.dumps({"author": "cli", "body": "hi"}))
    run_cli(server, "run", "admin:secret")  # internal: the admin key allows it
    assert messages(app) == [("py", "hello"), ("cli", "hi"), ("admin", "secret")]
    newest = run_cli(server, "data", "messages", "--limit", "1", "--format", "jsonl").strip().splitlines()
    assert [json.loads(line)["body"] for line in newest] == ["secret"]


def test_cli_export_and_import(app: cn.Backend, server: Any, tmp_path: Any) -> None:
    """`npx convex export` downloads our snapshot; `npx convex import` uploads it back in parts
    and confirms it (zip with --replace, and one table with --append)."""
    app.run(lambda ctx: [ctx.db.insert("people", {"n": cn.Int64(i), "raw": b"\x00\xff"}) for i in range(3)])
    before = app.run(lambda ctx: ctx.db.query("people").collect())
    snapshot = tmp_path / "snapshot.zip"
    run_cli(server, "export", "--path", str(snapshot))
    assert zipfile.ZipFile(snapshot).namelist()
    restored = cn.Backend()
    restored.import_snapshot(snapshot)
    assert restored.run(lambda ctx: ctx.db.query("people").collect()) == before
    restored.close()
    app.run(lambda ctx: ctx.db.insert("people", {"n": cn.Int64(99)}))
    run_cli(server, "import", "--replace", "-y", str(snapshot))
    assert app.run(lambda ctx: ctx.db.query("people").collect()) == before  # ids and values kept
    lines = tmp_path / "more.jsonl"
    lines.write_text('{"n": 10}\n{"n": 11}\n')
    run_cli(server, "import", "--table", "people", "--append", "-y", str(lines))
    assert app.count("people") == 5
