"""`convex-notebook run / data / import / export` (API.md §6: they mirror `npx convex ...`),
on a SQLite file (--db) and on a served deployment (--url), with the same output."""

from __future__ import annotations

import json
import zipfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import pytest

import convex_notebook as cn
from convex_notebook.server.cli import load_functions, main

from server_helpers import FUNCTIONS, messages


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


class Target:
    """A deployment the commands reach by ``flags``; ``backend()`` opens it here to look."""

    def __init__(self, flags: list[str], app: cn.Backend | None = None, path: Path | None = None) -> None:
        self.flags, self.app, self.path = flags, app, path

    @contextmanager
    def backend(self) -> Iterator[cn.Backend]:
        if self.app is not None:  # served: the process's own backend
            yield self.app
            return
        app = cn.Backend(str(self.path), echo_logs=False)  # a file: read it afresh
        load_functions(app, FUNCTIONS)
        try:
            yield app
        finally:
            app.close()


@pytest.fixture(params=["db", "url"])
def target(request: Any, tmp_path: Path) -> Iterator[Target]:
    """The same functions behind --db FILE or --url URL."""
    if request.param == "db":
        path = tmp_path / "app.sqlite3"
        yield Target(["--db", str(path), "--functions", str(FUNCTIONS)], path=path)
        return
    app = cn.Backend(echo_logs=False)
    load_functions(app, FUNCTIONS)
    handle = app.serve(port=0, block=False, print_admin_key=False)
    yield Target(["--url", handle.url, "--admin-key", handle.admin_key], app=app)
    handle.stop()
    app.close()


def test_run_and_data(target: Target, capsys: pytest.CaptureFixture[str]) -> None:
    flags = target.flags
    code, out, _ = cli(capsys, "run", "messages:send", '{"author": "cli", "body": "one"}', *flags)
    assert code == 0 and out.startswith('"') and len(json.loads(out)) == 32  # the new id, as JSON
    cli(capsys, "run", "messages:send", '{"author": "cli", "body": "two"}', *flags)
    code, out, _ = cli(capsys, "run", "admin:secret", *flags)  # internal: allowed, as for npx convex run
    assert code == 0 and json.loads(out) == "internal ok"
    code, out, _ = cli(capsys, "run", "values:store", '{"value": {"$integer": "BQAAAAAAAAA="}}', *flags)
    assert code == 0 and json.loads(out) == {"$integer": "BQAAAAAAAAA="}  # Int64 5 in and out
    code, out, _ = cli(capsys, "data", *flags)
    assert code == 0 and out.split() == ["messages", "values"]
    code, out, err = cli(capsys, "data", "messages", "--limit", "2", *flags)
    lines = out.splitlines()
    assert code == 0 and lines[0].split(" | ")[0].strip() == "_id" and "author" in lines[0]
    assert [line.split(" | ")[-1].strip() for line in lines[2:]] == ['"secret"', '"two"']
    assert "Showing the 2 most recently created documents" in err
    code, out, _ = cli(capsys, "data", "messages", "--format", "jsonl", "--order", "asc", *flags)
    assert [json.loads(line)["body"] for line in out.splitlines()] == ["one", "two", "secret"]


def test_export_then_import(target: Target, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    flags = target.flags
    with target.backend() as app:
        app.run(lambda ctx: [ctx.db.insert("people", {"n": cn.Int64(i), "raw": b"\x00\x01"}) for i in range(3)])
        before = app.run(lambda ctx: ctx.db.query("people").collect())
    code, out, _ = cli(capsys, "export", "--path", str(tmp_path), *flags)
    assert code == 0 and out.startswith("Wrote snapshot ")
    snapshot = out.split("Wrote snapshot ", 1)[1].strip()
    assert Path(snapshot).parent == tmp_path and zipfile.ZipFile(snapshot).namelist()
    copy = cn.Backend(echo_logs=False)
    copy.import_snapshot(snapshot)
    assert copy.run(lambda ctx: ctx.db.query("people").collect()) == before  # ids, Int64, bytes kept
    copy.close()
    # Back into the same deployment: refused while the table has documents, then --replace.
    code, _, err = cli(capsys, "import", snapshot, *flags)
    assert code == 1 and "already has 3 documents" in err
    code, out, _ = cli(capsys, "import", snapshot, "--replace", *flags)
    assert code == 0 and out.strip() == "Added 3 documents (people: 3)."
    lines = tmp_path / "more.jsonl"
    lines.write_text('{"n": 10}\n{"n": 11}\n')
    code, out, _ = cli(capsys, "import", str(lines), "--table", "people", "--append", *flags)
    assert code == 0 and out.strip() == 'Added 2 documents to table "people".'
    with target.backend() as app:
        assert app.count("people") == 5


def test_errors_are_one_line_and_change_nothing(target: Target, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    flags = target.flags
    with target.backend() as app:
        app.mutation("messages:send", {"author": "a", "body": "kept"})
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"author": "x", "body": "y"}\nnot json\n')
    cases = [
        (["run", "nope:missing"], "Could not find function for 'nope:missing'. Functions: actions:hello, admin:secret, "),
        (["data", "nosuchtable"], "no table named 'nosuchtable'. Tables: messages"),
        (["export", "--path", str(tmp_path / "nofolder" / "x.zip")], "the folder "),
        (["run", "messages:send", "[1]"], "ARGS must be a JSON object"),
        (["run", "messages:send", '{"author": 1}'], "ValidationError"),
        (["import", str(bad), "--table", "messages", "--append"], "line 2"),
        (["import", str(bad)], "--table is required"),
        (["import", str(tmp_path / "missing.csv"), "--table", "t"], "does not exist"),
        (["import", str(bad), "--table", "messages", "--append", "--replace"], "at most one of"),
        (["data", "messages", "--limit", "0"], "--limit must be at least 1"),
    ]
    for argv, expected in cases:
        code, out, err = cli(capsys, *argv, *flags)
        assert code == 1 and expected in err and len(err.strip().splitlines()) == 1, (argv, err)
    with target.backend() as app:
        assert messages(app) == [("a", "kept")]


def test_a_deployment_is_required(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CONVEX_NOTEBOOK_URL", raising=False)
    code, _, err = cli(capsys, "data")
    assert code == 1 and "give --url" in err
    code, _, err = cli(capsys, "data", "--url", "http://x", "--db", "y")
    assert code == 1 and "not both" in err


def test_missing_folders_and_keys_are_said(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CONVEX_NOTEBOOK_ADMIN_KEY", raising=False)
    db = tmp_path / "app.sqlite3"
    code, _, err = cli(capsys, "data", "--db", str(tmp_path / "nothere.sqlite3"))
    assert code == 1 and "no database at" in err
    cli(capsys, "run", "messages:send", '{"author": "a", "body": "b"}', "--db", str(db), "--functions", str(FUNCTIONS))
    code, out, _ = cli(capsys, "export", "--path", str(tmp_path / "backups") + "/", "--db", str(db))
    assert code == 0 and len(list((tmp_path / "backups").glob("snapshot_*.zip"))) == 1  # README: --path backups/
    app = cn.Backend(echo_logs=False)
    load_functions(app, FUNCTIONS)
    handle = app.serve(port=0, block=False, print_admin_key=False)
    try:
        for argv in (["data"], ["data", "messages"], ["export", "--path", str(tmp_path)]):
            code, _, err = cli(capsys, *argv, "--url", handle.url)
            assert code == 1 and "needs the deployment's admin key: pass --admin-key KEY" in err, (argv, err)
            assert len(err.strip().splitlines()) == 1
        code, _, err = cli(capsys, "run", "admin:secret", "--url", handle.url)
        assert code == 1 and "without the admin key only public functions are reachable" in err
        code, out, _ = cli(capsys, "run", "messages:list", "--url", handle.url)
        assert code == 0
    finally:
        handle.stop()
        app.close()
