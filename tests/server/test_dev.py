"""A functions folder deployed as ``npx convex dev`` pushes ``convex/`` (backend/project.py),
``convex-notebook dev`` redeploying saved files, and the serve/CLI mistakes as one line."""

from __future__ import annotations

import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

import convex_notebook as cn
from convex_notebook.backend.project import DeployError, FunctionsFolder, module_name
from convex_notebook.server.cli import load_functions, main

CLI = Path(sys.executable).with_name("convex-notebook")

TASKS = '''
import convex_notebook as cn
from convex_notebook import v


@cn.query
def list(ctx):
    return [t["text"] for t in ctx.db.query("tasks").collect()]


@cn.mutation(args={"text": v.string()})
def add(ctx, text):
    return ctx.db.insert("tasks", {"text": text, "done": False})


@cn.internal_mutation
def purge(ctx):
    for t in ctx.db.query("tasks").collect():
        ctx.db.delete(t["_id"])
'''


def _project(root: Path) -> Path:
    convex = root / "convex"
    (convex / "lib").mkdir(parents=True)
    (convex / "tasks.py").write_text(TASKS)
    (convex / "lib" / "util.py").write_text("@app.query\ndef answer(ctx):\n    return 42\n")
    (convex / "schema.py").write_text(
        "schema = cn.define_schema({'tasks': cn.define_table({'text': v.string(), 'done': v.boolean()})})\n")
    (convex / "crons.py").write_text("crons = cn.CronJobs()\ncrons.interval('purge', {'hours': 1}, 'tasks:purge')\n")
    (convex / "http.py").write_text(
        "http = cn.HttpRouter()\n\n@http.route(path='/count', method='GET')\n"
        "def count(ctx, request):\n    return {'n': len(ctx.run_query('tasks:list', {}))}\n")
    (convex / "_private.py").write_text("raise RuntimeError('never loaded: files starting with _ are skipped')\n")
    return convex


def test_module_names_come_from_paths(tmp_path: Path) -> None:
    convex = tmp_path / "convex"
    assert module_name(convex / "tasks.py") == "tasks"
    assert module_name(convex / "lib" / "util.py") == "lib/util"
    assert module_name(tmp_path / "app.py") == "app"  # outside a convex/ folder: its own name
    assert module_name(tmp_path / "x" / "y.py", tmp_path) == "x/y"


def test_a_folder_deploys_as_convex_pushes_it(tmp_path: Path) -> None:
    convex = _project(tmp_path)
    with cn.Backend(echo_logs=False) as app:
        report = FunctionsFolder(app, convex).deploy()
        assert sorted(f.path for f in app.functions()) == ["lib/util:answer", "tasks:add", "tasks:list", "tasks:purge"]
        assert report.deployed == {"lib/util": ["answer"], "tasks": ["add", "list", "purge"]}
        assert report.schema_tables == 1 and report.crons == 1 and report.http_routes == 1
        assert list(app.crons.jobs) == ["purge"]
        app.mutation("tasks:add", {"text": "a"})
        assert app.query("tasks:list") == ["a"]
        assert app.fetch("/count").json() == {"n": 1}
        with pytest.raises(cn.ValidationError):  # the schema is applied
            app.run(lambda ctx: ctx.db.insert("tasks", {"text": 1, "done": False}))
        with pytest.raises(cn.FunctionNotFound):  # internal stays internal
            app.mutation("tasks:purge", {})


def test_a_redeploy_changes_only_what_changed(tmp_path: Path) -> None:
    convex = _project(tmp_path)
    with cn.Backend(echo_logs=False) as app:
        project = FunctionsFolder(app, convex)
        project.deploy()
        assert not project.deploy().changed  # nothing saved since
        live = app.subscribe("lib/util:answer", {})
        (convex / "lib" / "util.py").write_text("@app.query\ndef answer(ctx):\n    return 43\n")
        report = project.deploy()
        assert report.deployed == {"lib/util": ["answer"]} and report.unchanged == 4
        app.wait_for_callbacks()
        assert live.value == 43  # the live query re-ran
        (convex / "tasks.py").write_text(TASKS.replace("@cn.internal_mutation\ndef purge", "@cn.internal_mutation\ndef purge_all"))
        (convex / "crons.py").write_text("crons = cn.CronJobs()\n")
        report = project.deploy()
        assert report.removed == ["tasks:purge"] and "tasks:purge_all" in {f.path for f in app.functions()}
        (convex / "lib" / "util.py").unlink()
        assert project.deploy().removed == ["lib/util:answer"]


def test_an_error_is_one_line_and_changes_nothing(tmp_path: Path) -> None:
    convex = _project(tmp_path)
    with cn.Backend(echo_logs=False) as app:
        project = FunctionsFolder(app, convex)
        project.deploy()
        before = sorted(f.path for f in app.functions())
        (convex / "tasks.py").write_text(TASKS.replace("v.string()", "v.strng()") + "\n@cn.query\ndef extra(ctx):\n    return 1\n")
        with pytest.raises(DeployError) as caught:
            project.deploy()
        message = str(caught.value)
        assert "\n" not in message
        assert "tasks.py, line 11: AttributeError: v has no validator 'strng': did you mean v.string()?" in message
        assert sorted(f.path for f in app.functions()) == before
        (convex / "schema.py").write_text("schema = 3\n")
        (convex / "tasks.py").write_text(TASKS)
        with pytest.raises(DeployError, match=r"schema.py: define schema = cn.define_schema"):
            project.deploy()


def test_cn_decorators_belong_to_functions_files() -> None:
    with pytest.raises(RuntimeError, match="in a notebook use @app.query"):
        @cn.query
        def nowhere(ctx):  # pragma: no cover - never registered
            return 1


def test_a_served_file_is_the_module_its_path_names(tmp_path: Path) -> None:
    convex = tmp_path / "convex"
    convex.mkdir()
    (convex / "tasks.py").write_text("@app.mutation\ndef add(ctx, text):\n    return ctx.db.insert('tasks', {'text': text})\n")
    with cn.Backend(echo_logs=False) as app:
        load_functions(app, convex / "tasks.py")
        assert [f.path for f in app.functions()] == ["tasks:add"]


def test_cli_mistakes_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--functions", str(tmp_path / "nosuch.py")]) == 1
    err = capsys.readouterr().err.strip()
    assert err == f"convex-notebook serve: No functions file at {tmp_path / 'nosuch.py'}"
    assert main(["dev", str(tmp_path / "nothere"), "--once"]) == 1
    assert "No functions folder at" in capsys.readouterr().err
    bad = tmp_path / "bad.py"
    bad.write_text("x = 1\n@app.query\ndef f(ctx):\n    return undefined_name\ny = 1 / 0\n")
    assert main(["serve", "--functions", str(bad)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.endswith("bad.py, line 5: ZeroDivisionError: division by zero") and "\n" not in err
    not_a_db = tmp_path / "notes.txt"
    not_a_db.write_text("not a database\n" * 100)
    for argv in (["serve", "--db", str(not_a_db)], ["data", "--db", str(not_a_db)]):
        assert main(argv) == 1
        err = capsys.readouterr().err.strip()
        assert "cannot be opened as a SQLite database" in err and "\n" not in err
    assert main(["serve", "--db", str(tmp_path)]) == 1
    assert "is a folder: name the SQLite file" in capsys.readouterr().err
    assert main(["serve", "--functions", str(tmp_path)]) == 1
    assert "is a folder: serve it with `convex-notebook dev" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"convex-notebook {cn.__version__}"


def test_dev_once_creates_the_database_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    convex = _project(tmp_path)
    db = tmp_path / "data" / "nested" / "app.sqlite3"
    assert main(["dev", str(convex), "--db", str(db), "--once"]) == 0
    out = capsys.readouterr().out
    assert "deployed schema: 1 table; lib/util: answer; tasks: add, list, purge; crons: 1 job; http: 1 route" in out
    assert "4 functions" in out and db.exists()


def _lines(proc: subprocess.Popen) -> "queue.Queue[str]":
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for line in proc.stdout:  # type: ignore[union-attr]
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    return lines


def _wait_for(lines: "queue.Queue[str]", text: str) -> str:
    seen = []
    while True:
        try:
            line = lines.get(timeout=60)
        except queue.Empty:
            raise AssertionError(f"no line with {text!r} in: {''.join(seen)}") from None
        seen.append(line)
        if text in line:
            return line


def test_dev_serves_the_folder_and_redeploys_a_saved_file(tmp_path: Path) -> None:
    convex = _project(tmp_path)
    command = [str(CLI)] if CLI.exists() else [sys.executable, "-m", "convex_notebook.server.cli"]
    proc = subprocess.Popen(command + ["dev", str(convex), "--port", "0", "--db", str(tmp_path / "new" / "app.sqlite3")],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = _lines(proc)
        url = _wait_for(lines, "serving ").split("serving ")[1].split(" ")[0]
        _wait_for(lines, "watching")
        assert httpx.post(f"{url}/api/query", json={"path": "lib/util:answer", "args": {}}).json()["value"] == 42
        (convex / "lib" / "util.py").write_text("@app.query\ndef answer(ctx):\n    return 'saved'\n")
        assert "deployed lib/util: answer" in _wait_for(lines, "deployed")
        assert httpx.post(f"{url}/api/query", json={"path": "lib/util:answer", "args": {}}).json()["value"] == "saved"
        (convex / "lib" / "util.py").write_text("@app.query\ndef answer(ctx)\n    return 'broken'\n")
        assert "lib/util.py, line 2: SyntaxError" in _wait_for(lines, "not deployed")
        assert httpx.post(f"{url}/api/query", json={"path": "lib/util:answer", "args": {}}).json()["value"] == "saved"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)


def test_auth_config_reaches_set_auth(tmp_path: Path) -> None:
    """auth.config.py (Convex's auth.config.ts) is handed to app.set_auth (API.md §8)."""
    convex = tmp_path / "convex"
    convex.mkdir()
    (convex / "auth.config.py").write_text(
        'providers = [{"domain": "https://issuer.example", "applicationID": "convex"}]\n')
    with cn.Backend(echo_logs=False) as app:
        received: list[dict] = []
        app.set_auth = received.append  # type: ignore[attr-defined] - records what the deploy sets
        report = FunctionsFolder(app, convex).deploy()
        assert report.auth_providers == 1
        assert received == [{"providers": [{"domain": "https://issuer.example", "applicationID": "convex"}]}]
        (convex / "auth.config.py").write_text("providers = 'not a list'\n")
        with pytest.raises(DeployError, match=r"auth.config.py: define providers = \[\.\.\.\]"):
            FunctionsFolder(app, convex).deploy()
