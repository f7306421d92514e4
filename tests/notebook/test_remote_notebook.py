"""The notebook layer on a remote deployment: the magics, live tables and the dashboard work
unchanged on ``cn.connect("http://...")``, and show what the embedded backend shows."""

from __future__ import annotations

import time
from typing import Any, Iterator

import pandas as pd
import pytest

import convex_notebook as cn
from convex_notebook import v
from convex_notebook.notebook.magics import current_magics
from convex_notebook.notebook.widgets import LiveQuery
from convex_notebook.server.client import DeploymentClient

from test_magics import out, run


@pytest.fixture
def served() -> Iterator[tuple[cn.Backend, Any]]:
    """A served backend with a notes module (the functions live on the server)."""
    app = cn.Backend(echo_logs=False)
    notes = app.module("notes")

    @notes.query
    def list(ctx: Any) -> Any:
        return ctx.db.query("notes").collect()

    @notes.mutation(args={"text": v.string(), "stars": v.optional(v.number())})
    def add(ctx: Any, text: str, stars: float | None = None) -> Any:
        print("adding", text)
        return ctx.db.insert("notes", {"text": text} if stars is None else {"text": text, "stars": stars})

    handle = app.serve(port=0, block=False, print_admin_key=False)
    yield app, handle
    handle.stop()
    app.close()


def connect(shell: Any, handle: Any) -> DeploymentClient:
    run(shell, f"%convex connect {handle.url} --admin-key {handle.admin_key} -o remote")
    remote = shell.user_ns["remote"]
    assert isinstance(remote, DeploymentClient) and current_magics(shell).app is remote
    return remote


def test_magics_on_a_remote_deployment(shell: Any, served: Any, tmp_path: Any,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    app, handle = served
    remote = connect(shell, handle)
    for i in range(3):
        app.mutation("notes:add", {"text": f"n{i}", "stars": float(i)})
    assert run(shell, "%convex tables -o t") is None and shell.user_ns["t"] == {"notes": 3}
    run(shell, "%convex status -o s")
    assert shell.user_ns["s"]["tables"] == 1 and shell.user_ns["s"]["documents"] == 3
    run(shell, "%convex functions -o fns")
    assert [(f["function"], f["kind"]) for f in shell.user_ns["fns"]] == [("notes:add", "mutation"), ("notes:list", "query")]
    assert "text: v.string()" in shell.user_ns["fns"][0]["args"]
    run(shell, "%convex data notes --df -o frame")  # the newest first, as on a Backend
    pd.testing.assert_frame_equal(shell.user_ns["frame"], app.df("notes").iloc[::-1].reset_index(drop=True))
    newest = run(shell, "%convex data notes --limit 2")
    assert [d["text"] for d in newest.value] == ["n2", "n1"]
    run(shell, '%convex run notes:add text="from a cell"')
    assert app.count("notes") == 4
    shell.user_ns["more"] = pd.DataFrame({"text": ["x", "y"]})
    assert out(shell, capsys, "%convex import notes more --mode append") == "notes: 6 documents (+2)\n"
    run(shell, "%convex logs -o entries")
    assert [e.path for e in shell.user_ns["entries"]][-1] == "notes:add"
    path = tmp_path / "notes.jsonl"
    run(shell, f"%convex export notes {path}")
    assert len(path.read_text().splitlines()) == 6
    widget = run(shell, "%convex live notes:list")
    assert isinstance(widget, LiveQuery) and len(widget.value) == 6
    assert out(shell, capsys, "%convex reset --yes") == "Deleted 6 documents; closed 1 live table\n"
    assert app.count("notes") == 0 and widget.closed
    assert remote.functions()  # functions stay


def test_a_remote_live_table_follows_writes_from_anywhere(shell: Any, served: Any) -> None:
    app, handle = served
    remote = connect(shell, handle)
    widget = remote.live("notes:list")
    app.mutation("notes:add", {"text": "from the server's own process"})
    widget.wait_for(lambda rows: len(rows) == 1)
    with cn.connect(handle.url) as other:  # another client, e.g. a script or a browser app
        other.mutation("notes:add", {"text": "from another client"})
    widget.wait_for(lambda rows: len(rows) == 2)
    remote.mutation("notes:add", {"text": "from this notebook"})
    assert [n["text"] for n in widget.value] == [
        "from the server's own process", "from another client", "from this notebook"]
    pd.testing.assert_frame_equal(widget.df, app.df("notes:list"))
    widget.close()


def test_the_dashboard_on_a_remote_deployment(recording_comm: Any, bridge: Any, served: Any) -> None:
    app, handle = served
    for i in range(3):
        app.mutation("notes:add", {"text": f"n{i}"})
    with cn.connect(handle.url, admin_key=handle.admin_key) as remote:
        d = cn.Dashboard(remote, page_size=2, poll_interval=0.05)
        assert repr(d) == f"Dashboard({remote.url}: 1 table, 2 functions)"
        assert d._tables == [{"name": "notes", "count": 3}]
        assert [f["path"] for f in d._functions] == ["notes:add", "notes:list"]
        assert d._browser["total"] == 3 and d._browser["has_next"] is True
        text_col = d._browser["columns"].index("text")
        assert [r["cells"][text_col] for r in d._browser["rows"]] == ["n2", "n1"]
        d.next_page()
        assert [r["cells"][text_col] for r in d._browser["rows"]] == ["n0"]
        assert d._logs and d._logs[0]["function"] == "notes:add"
        result = d.run_function("notes:add", {"text": "from the runner"})
        assert result["ok"] and app.count("notes") == 4
        result = d.run_function("notes:add", form={"text": "from the form", "stars": "4"})
        assert result["ok"] and app.count("notes") == 5
        # A write by someone else: the dashboard sees the new commit and repaints.
        app.mutation("notes:add", {"text": "elsewhere"})
        deadline = time.monotonic() + 10
        while bridge.pending == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        bridge.flush()
        assert d._tables == [{"name": "notes", "count": 6}]
        d.close()


def test_without_the_admin_key_the_magics_and_dashboard_say_what_is_missing(
        recording_comm: Any, bridge: Any, shell: Any, served: Any, capsys: pytest.CaptureFixture[str]) -> None:
    app, handle = served
    app.mutation("notes:add", {"text": "public"})
    run(shell, f"%convex connect {handle.url} -o remote")
    with pytest.raises(Exception, match="admin key") as info:
        run(shell, "%convex tables")
    assert len(shell.tracebacks[-1]) == 1 and "--admin-key" in str(info.value)  # one line, naming the fix
    with pytest.raises(Exception, match="admin key"):
        run(shell, "%convex logs")
    shell.user_ns["frame"] = pd.DataFrame({"text": ["x"]})
    with pytest.raises(PermissionError, match="admin key"):
        run(shell, "%convex import notes frame --mode append")
    assert len(shell.tracebacks[-1]) == 1
    assert "deployment:" in out(shell, capsys, "%convex status")
    assert [n["text"] for n in run(shell, "%convex run notes:list").value] == ["public"]  # public calls work
    d = cn.Dashboard(shell.user_ns["remote"], poll_interval=0.05)
    assert d._tables == [] and d._functions == [] and d._logs == []
    d.close()
    assert app.count("notes") == 1


def test_module_and_query_cells_deploy_to_a_remote_deployment(shell: Any, served: Any,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    """``%%convex_module`` pushes the cell's source to the server, which runs it and serves its
    functions; ``%%convex_query`` pushes an ad-hoc query there and removes it afterwards."""
    from IPython.core.error import UsageError

    app, handle = served
    remote = connect(shell, handle)
    text = out(shell, capsys, "%%convex_module counts\n@query\ndef total(ctx):\n"
                              "    return len(ctx.db.query('notes').collect())\n")
    assert text == "Deployed counts: total (query)\n"
    assert app.query("counts:total") == 0  # it runs in the server's process
    widget = remote.live("counts:total")
    app.mutation("notes:add", {"text": "a"})
    widget.wait_for(lambda n: n == 1)
    text = out(shell, capsys, "%%convex_module counts\n@query\ndef texts(ctx):\n"
                              "    return [n['text'] for n in ctx.db.query('notes').collect()]\n")
    assert text.startswith("Deployed counts: texts (query); removed counts:total")
    assert [f.path for f in remote.functions()] == ["counts:texts", "notes:add", "notes:list"]
    with pytest.raises(UsageError, match=r"^%%convex_module, line 1: NameError: name 'nowhere' is not defined"):
        run(shell, "%%convex_module broken\nnowhere\n")
    assert "broken:" not in str([f.path for f in remote.functions()])
    result = run(shell, '%%convex_query\nsorted(n["text"] for n in ctx.db.query("notes").collect())\n')
    assert result.value == ["a"]
    assert [f.path for f in app.functions() if f.path.startswith("_adhoc")] == []
    widget.close()
