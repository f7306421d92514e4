"""The deployment contract (``backend/contract.py``), member by member, on both sides: every
test runs on an embedded ``Backend`` and on a remote client of a served one, and expects the
same answers (see conftest.py)."""

from __future__ import annotations

import asyncio
import datetime
import time
from typing import Any

import pandas as pd
import pytest

import convex_notebook as cn
from convex_notebook.backend.contract import Deployment
from convex_notebook.backend.project import SourceError
from convex_notebook.values import MISSING


def add(app: Any, *texts: str) -> list[str]:
    return [app.mutation("notes:add", {"text": t}) for t in texts]


def eventually(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


# -- what it is ----------------------------------------------------------------------------------
def test_both_sides_are_deployments(app: Any, backend: cn.Backend) -> None:
    assert isinstance(app, Deployment)
    assert app.location == ("memory://" if app is backend else app.url)


# -- calling ------------------------------------------------------------------------------------------
def test_query_mutation_action_run(app: Any) -> None:
    first = app.mutation("notes:add", {"text": "a"})
    assert [n["_id"] for n in app.query("notes:list")] == [first]
    assert app.query("notes:by_text", {"text": "a"})[0]["text"] == "a"
    assert app.action("notes:shout", {"text": "hi"}) == "HI"
    with pytest.raises(cn.FunctionNotFound):
        app.mutation("notes:purge")  # internal: admin calls only
    assert app.run("notes:purge") == 1
    assert app.query("notes:list") == []
    with pytest.raises(cn.ValidationError, match="text"):
        app.mutation("notes:add", {"text": 3})


def test_invoke_reports_instead_of_raising(app: Any) -> None:
    inv = app.invoke("notes:add", {"text": "a"}, admin=True)
    assert inv.error is None and isinstance(inv.value, str) and inv.log_lines == ["[LOG] adding a"]
    assert 0 < inv.ts <= app.latest_ts()  # the commit's timestamp
    assert app.invoke("notes:purge", admin=True).value == 1  # internal: admin
    failed = app.invoke("notes:add", {"text": 3}, admin=True)
    assert isinstance(failed.error, cn.ValidationError) and failed.value is None


def test_query_at_an_earlier_time(app: Any) -> None:
    add(app, "a")
    before = app.latest_ts()
    add(app, "b")
    assert [n["text"] for n in app.query("notes:list", at=before)] == ["a"]
    assert len(app.query("notes:list")) == 2
    assert app.timestamp(before) == before
    assert app.timestamp(datetime.timedelta(0)) >= before


def test_async_twins(app: Any) -> None:
    async def calls() -> tuple:
        doc_id = await app.mutation_async("notes:add", {"text": "x"})
        docs = await app.query_async("notes:list")
        loud = await app.action_async("notes:shout", {"text": "x"})
        purged = await app.run_async("notes:purge")
        return doc_id, docs, loud, purged

    doc_id, docs, loud, purged = asyncio.run(calls())
    assert [d["_id"] for d in docs] == [doc_id] and loud == "X" and purged == 1


def test_subscribe_follows_commits(app: Any) -> None:
    seen: list[int] = []
    sub = app.subscribe("notes:list", {}, on_update=lambda value: seen.append(len(value)))
    assert sub.value == [] and app.subscription_count == 1
    add(app, "a")
    assert len(sub.value) == 1  # a mutation returns once this deployment's subscriptions show it
    assert app.wait_for_callbacks()
    assert seen[-1] == 1
    sub.unsubscribe()
    eventually(lambda: app.subscription_count == 0)


def test_with_identity(app: Any) -> None:
    """Calls act as the identity, ``invoke`` too (the dashboard's "act as"); asking again for
    the same identity is no new connection (the deployment closes them with itself)."""
    assert app.query("notes:whoami") is None
    ada = app.with_identity({"subject": "ada"})
    assert ada.query("notes:whoami") == "ada"
    inv = ada.invoke("notes:whoami", {}, admin=True)
    assert inv.error is None and inv.value == "ada"
    assert ada.invoke("notes:add", {"text": "as ada"}).error is None
    assert app.with_identity({"subject": "ada"}).query("notes:whoami") == "ada"
    if not isinstance(app, cn.Backend):  # (a Backend's views are copies: nothing to reuse)
        assert app.with_identity({"subject": "ada"}) is ada


# -- tables and documents -----------------------------------------------------------------------------
def test_tables_counts_and_pages(app: Any) -> None:
    assert app.table_names() == [] and app.count("notes") == 0
    ids = add(app, "a", "b", "c")
    assert app.table_names() == ["notes"] and app.count("notes") == 3
    page = app.table_page("notes", num_items=2)
    assert [d["_id"] for d in page["page"]] == ids[:2] and not page["isDone"]
    rest = app.table_page("notes", cursor=page["continueCursor"], num_items=2)
    assert [d["_id"] for d in rest["page"]] == ids[2:] and rest["isDone"]
    newest = app.table_page("notes", num_items=1, order="desc")
    assert [d["_id"] for d in newest["page"]] == ids[2:]
    assert app.table_page("nothing")["page"] == []
    with pytest.raises(ValueError, match="order"):
        app.table_page("notes", order="up")


def test_documents_and_read_table_in_creation_order_at_a_snapshot(app: Any) -> None:
    ids = add(app, *"abcde")
    then = app.latest_ts()
    app.run("notes:purge")
    add(app, "f")
    assert [d["_id"] for d in app.documents("notes", at=then)] == ids  # _creationTime order
    docs = app.documents("notes")
    assert [d["text"] for d in docs] == ["f"] and set(docs[0]) == {"_id", "_creationTime", "text"}
    batches = list(app.read_table("notes"))
    assert batches and all(b.documents is not None or b.json for b in batches)
    assert list(app.read_table("nothing")) == [] and app.documents("nothing") == []


def test_latest_ts_moves_on_every_commit(app: Any) -> None:
    before = app.latest_ts()
    add(app, "a")
    assert app.latest_ts() > before


# -- writes an admin makes ----------------------------------------------------------------------------
def test_clear_tables_is_one_transaction(app: Any, backend: cn.Backend) -> None:
    backend.run(lambda ctx: [ctx.db.insert("notes", {"text": str(i)}) for i in range(2500)])
    backend.run(lambda ctx: ctx.db.insert("other", {"n": 1.0}))
    seen: list[int] = []
    sub = backend.subscribe("notes:list", {}, on_update=lambda value: seen.append(len(value)))
    assert app.clear_tables() == 2501
    backend.wait_for_callbacks()
    assert seen == [0]  # never a table part-cleared (batches of 1,000 were seen as 1,500, 500, 0)
    assert app.count("notes") == 0 and app.count("other") == 0 and app.table_names() == ["notes", "other"]
    sub.unsubscribe()


def test_clear_table_delete_and_replace_documents(app: Any, backend: cn.Backend) -> None:
    a, b, _ = add(app, "a", "b", "c")
    assert app.delete_documents([a, a]) == 1  # how many existed: the second is gone by then
    app.replace_document(b, {"text": "B", "stars": 5.0})
    assert [(d["text"], d.get("stars")) for d in app.documents("notes")] == [("B", 5.0), ("c", None)]
    backend.set_schema(cn.define_schema({"notes": cn.define_table({"text": cn.v.string(),
                                                                    "stars": cn.v.optional(cn.v.float64())})}))
    with pytest.raises(Exception, match="stars"):
        app.replace_document(b, {"text": "B", "stars": "five"})  # the schema validates; nothing changes
    assert app.documents("notes")[0]["stars"] == 5.0
    assert app.clear_table("notes") == 2 and app.count("notes") == 0


def test_import_columns(app: Any) -> None:
    assert app.import_columns("rows", ["a", "b"], [[1.0, 2.0], ["x", MISSING]], 2) == 2
    assert [{k: d[k] for k in d if not k.startswith("_")} for d in app.documents("rows")] == [
        {"a": 1.0, "b": "x"}, {"a": 2.0}]
    with pytest.raises(cn.DatabaseError, match="already has 2 documents"):
        app.import_columns("rows", ["a"], [[3.0]], 1)
    assert app.import_columns("rows", ["a"], [[3.0]], 1, mode="append") == 1
    assert app.import_columns("rows", ["a"], [[4.0]], 1, mode="replace") == 1
    assert [d["a"] for d in app.documents("rows")] == [4.0]


def test_table_files_and_snapshots_round_trip(app: Any, tmp_path: Any) -> None:
    add(app, "a", "b")
    path = tmp_path / "notes.jsonl"
    assert app.export_table("notes", path) == 2
    assert app.import_table("copy", path) == 2
    assert [d["text"] for d in app.documents("copy")] == ["a", "b"]
    zip_path = app.export_snapshot(tmp_path / "all.zip")
    app.clear_tables()
    counts = app.import_snapshot(zip_path, mode="replace")
    assert counts["notes"] == 2 and [d["text"] for d in app.documents("notes")] == ["a", "b"]


# -- functions, scheduling, storage ----------------------------------------------------------------
def test_functions_are_listed_with_their_arguments(app: Any) -> None:
    listed = {f.path: f for f in app.functions()}
    assert set(listed) >= {"notes:add", "notes:list", "notes:purge", "notes:shout"}
    assert (listed["notes:purge"].kind, listed["notes:purge"].visibility) == ("mutation", "internal")
    assert set(listed["notes:add"].args.fields) == {"text", "stars"}
    assert listed["notes:list"].args is None


def test_deploy_module_and_remove_functions(app: Any, backend: cn.Backend) -> None:
    report = app.deploy_module("counts", "@query\ndef total(ctx):\n    return len(ctx.db.query('notes').collect())\n"
                                         "@mutation\ndef bump(ctx):\n    return ctx.db.insert('notes', {'text': 'b'})\n")
    assert report.functions == [("counts:bump", "mutation"), ("counts:total", "query")] and report.removed == []
    sub = app.subscribe("counts:total", {})
    app.mutation("counts:bump")
    assert sub.value == 1
    report = app.deploy_module("counts", "@query\ndef total(ctx):\n    return -1\n")
    assert report.removed == ["counts:bump"] and report.reruns == 1
    eventually(lambda: sub.value == -1)
    with pytest.raises(SourceError, match="line 2: ZeroDivisionError") as info:
        app.deploy_module("counts", "x = 1\n1 / 0\n")
    assert info.value.line == 2 and backend.query("counts:total") == -1  # nothing changed
    with pytest.raises(ValueError, match="module name"):
        app.deploy_module("a:b", "")
    assert app.remove_functions(["counts:total", "counts:nope"]) == ["counts:total"]
    sub.unsubscribe()


def test_scheduled_functions_crons_and_files(app: Any, backend: cn.Backend) -> None:
    assert app.scheduled_functions() == [] and app.cron_jobs() == [] and app.stored_files() == []
    job = app.mutation("notes:later", {"text": "soon"})
    assert [(d["_id"], d["name"], d["state"]["kind"]) for d in app.scheduled_functions()] == [
        (job, "notes:add", "pending")]
    app.cancel_scheduled(job)
    assert app.scheduled_functions()[0]["state"]["kind"] == "canceled"
    backend.crons.interval("tidy", {"minutes": 5}, "notes:purge")
    assert [(c["name"], c["schedule"], c["function"]) for c in app.cron_jobs()] == [
        ("tidy", "every 300 s", "notes:purge")]
    file_id = app.action("notes:upload", {"data": b"hello"})
    assert [(f["_id"], f["size"]) for f in app.stored_files()] == [(file_id, 5)]


# -- logs, commits, environment ---------------------------------------------------------------------
def test_logs_carry_lines_and_usage(app: Any) -> None:
    add(app, "a")
    entry = app.logs.tail(1)[0]
    assert (entry.path, entry.kind, entry.lines, entry.error) == ("notes:add", "mutation", ["[LOG] adding a"], None)
    assert set(entry.usage) == {"documents_read", "bytes_read", "index_ranges", "documents_written",
                                "bytes_written", "occ_retries"}
    assert entry.usage["documents_written"] == 1
    app.query("notes:list")
    assert [e.path for e in app.logs][-2:] == ["notes:add", "notes:list"]


def test_on_log_and_on_commit_tell_listeners(app: Any, backend: cn.Backend) -> None:
    entries: list[Any] = []
    commits: list[int] = []
    stop_logs = app.on_log(entries.append)
    stop_commits = app.on_commit(commits.append, poll_interval=0.05)
    backend.mutation("notes:add", {"text": "elsewhere"})
    eventually(lambda: any(e.path == "notes:add" for e in entries) and commits)
    assert entries[-1].lines == ["[LOG] adding elsewhere"] and entries[-1].usage["documents_written"] == 1
    assert commits[-1] <= app.latest_ts()
    stop_logs()
    stop_commits()
    time.sleep(0.3)  # a remote listener's request in flight ends
    seen = (len(entries), len(commits))
    backend.mutation("notes:add", {"text": "unheard"})
    time.sleep(0.3)
    assert (len(entries), len(commits)) == seen


def test_env(app: Any, backend: cn.Backend) -> None:
    app.env["API_KEY"] = "secret"
    assert app.env["API_KEY"] == "secret" and backend.env["API_KEY"] == "secret"
    assert dict(app.env)["API_KEY"] == "secret"
    del app.env["API_KEY"]
    assert "API_KEY" not in app.env
    app.env.update({"A": "1", "B": "2"})
    assert app.env.to_dict() == {"A": "1", "B": "2"} and len(app.env) == 2
    app.env.set("A", None)
    assert sorted(app.env) == ["B"]
    with pytest.raises(KeyError):
        del app.env["MISSING"]
    from convex_notebook.backend.env import EnvError

    with pytest.raises(EnvError):  # a bad name is named, on both sides, before anything is sent
        del app.env["1bad name"]


# -- attached by the notebook layer ---------------------------------------------------------------------
def test_df_of_a_table_a_query_and_documents(app: Any) -> None:
    add(app, "a", "b")
    frame = app.df("notes")
    assert list(frame.columns) == ["_id", "_creationTime", "text"] and list(frame["text"]) == ["a", "b"]
    indexed = app.df("notes", index="_id")
    assert indexed.index.name == "_id" and list(indexed["text"]) == ["a", "b"]
    assert list(app.df("notes:by_text", {"text": "b"})["text"]) == ["b"]
    assert list(app.df("empty_yet").columns) == ["_id", "_creationTime"]
    assert app.df("empty_yet", index="_id").index.name == "_id"
    with pytest.raises(KeyError, match="no such column"):
        app.df("notes", index="nope")
    with pytest.raises(KeyError, match="no such column"):
        app.df("empty_yet", index="nope")
    with pytest.raises(TypeError, match="is a table"):
        app.df("notes", {"x": 1})


def test_import_dataframe(app: Any) -> None:
    frame = pd.DataFrame({"text": ["x", "y"], "n": [1.0, None]})
    assert app.import_dataframe("rows", frame) == 2
    docs = app.documents("rows")
    assert [d["text"] for d in docs] == ["x", "y"]
    assert app.df("rows")["text"].tolist() == ["x", "y"]
    with pytest.raises(TypeError, match="unexpected keyword argument"):
        app.import_dataframe("rows", frame, chunks=2)


def test_live_widget(app: Any, backend: cn.Backend) -> None:
    widget = app.live("notes:list")
    try:
        backend.mutation("notes:add", {"text": "a"})
        assert len(widget.wait_for(lambda rows: len(rows) == 1)) == 1
    finally:
        widget.close()


def test_connect_returns_one_of_the_two_exported_classes(app: Any, backend: cn.Backend) -> None:
    expected = cn.Backend if app is backend else cn.DeploymentClient
    assert type(app) is expected and isinstance(app, cn.Deployment)
    with cn.connect("memory://") as other:
        assert isinstance(other, cn.Backend)


def test_deploy_folder_embedded_or_refused_remotely(app: Any, backend: cn.Backend, tmp_path: Any) -> None:
    """A functions folder deploys into the process that runs it: an embedded deployment does
    it (and only what changed the second time); a remote one refuses, naming what does."""
    folder = tmp_path / "convex"
    folder.mkdir()
    (folder / "greet.py").write_text("import convex_notebook as cn\n\n@cn.query\ndef hello(ctx, name: str):\n    return 'hi ' + name\n")
    if app is not backend:
        with pytest.raises(NotImplementedError, match="convex-notebook dev"):
            app.deploy_folder(str(folder))
        return
    report = app.deploy_folder(str(folder))
    assert report.deployed == {"greet": ["hello"]} and report.changed
    assert app.query("greet:hello", {"name": "Ada"}) == "hi Ada"
    assert not app.deploy_folder(str(folder)).changed  # nothing changed since
    assert app.deploy_folder(str(folder), force=True).changed
    with pytest.raises(FileNotFoundError, match="nothing at"):
        app.deploy_folder(str(tmp_path / "missing"))
