"""The remote client's data API: the same tables, DataFrames, imports, functions and logs as
an embedded Backend (frames compared with the embedded backend's own)."""

from __future__ import annotations

import math
from typing import Any, Iterator

import numpy as np
import pandas as pd
import pytest

import convex_notebook as cn
from convex_notebook.engine.transaction import DatabaseError
from convex_notebook.server import remote_data
from convex_notebook.server.client import DeploymentClient


@pytest.fixture
def remote(server: Any) -> Iterator[DeploymentClient]:
    client = cn.connect(server.url, admin_key=server.admin_key)
    yield client
    client.close()


def mixed_documents(app: cn.Backend) -> None:
    def write(ctx: Any) -> None:
        first = ctx.db.insert("mixed", {"n": 1.5, "s": "a", "i": cn.Int64(2**62), "b": b"\x00\xff", "o": {"k": [1, 2]}})
        ctx.db.insert("mixed", {"n": math.nan, "flag": True, "ref": first})
        ctx.db.insert("mixed", {"n": -0.0, "s": None, "i": cn.Int64(-1)})
    app.run(write)


def test_frames_equal_the_embedded_backends(app: cn.Backend, remote: DeploymentClient) -> None:
    mixed_documents(app)
    pd.testing.assert_frame_equal(remote.df("mixed"), app.df("mixed"))
    pd.testing.assert_frame_equal(remote.df("mixed", index="_id"), app.df("mixed", index="_id"))
    pd.testing.assert_frame_equal(remote.df("nothing"), app.df("nothing"))  # a table with no documents
    app.mutation("messages:send", {"author": "a", "body": "hi"})
    pd.testing.assert_frame_equal(remote.df("messages:list"), app.df("messages:list"))
    docs = app.run(lambda ctx: ctx.db.query("mixed").collect())
    pd.testing.assert_frame_equal(remote.df(docs), app.df(docs))
    with pytest.raises(TypeError, match="is a table"):
        remote.df("mixed", {"x": 1})
    with pytest.raises(cn.FunctionNotFound):
        remote.df("nope:missing", {})


def test_a_table_read_in_many_pages_is_one_snapshot(app: cn.Backend, remote: DeploymentClient,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    app.run(lambda ctx: [ctx.db.insert("big", {"i": float(i)}) for i in range(50)])
    monkeypatch.setattr(remote_data, "PAGE_SIZE", 7)
    assert [d["i"] for d in remote.documents("big")] == [float(i) for i in range(50)]
    # A write between two pages does not show in the pages after it.
    real_http = DeploymentClient._http
    pages = {"n": 0}

    def http(self: Any, method: str, path: str, **kw: Any) -> Any:
        if path == "/api/list_snapshot":
            pages["n"] += 1
            if pages["n"] == 2:
                app.run(lambda ctx: ctx.db.insert("big", {"i": 50.0}))
        return real_http(self, method, path, **kw)

    monkeypatch.setattr(DeploymentClient, "_http", http)
    docs = remote.documents("big")
    # Every page reads the snapshot of the first one (the history): the write is not in it.
    assert [d["i"] for d in docs] == [float(i) for i in range(50)] and pages["n"] == 8
    assert [d["i"] for d in remote.documents("big")] == [float(i) for i in range(51)]
    # A table that never stops changing: still one consistent copy, as of the first page.
    monkeypatch.setattr(DeploymentClient, "_http", lambda self, method, path, **kw: (
        app.run(lambda ctx: ctx.db.insert("big", {"i": -1.0})) if kw.get("params", {}).get("cursor") else None,
        real_http(self, method, path, **kw))[1])
    assert [d["i"] for d in remote.documents("big")] == [float(i) for i in range(51)]
    assert app.count("big") == 51 + 7  # (one insert before each page after the first)


def test_import_dataframe_round_trip(app: cn.Backend, remote: DeploymentClient) -> None:
    frame = pd.DataFrame({
        "x": [1.0, np.nan, 3.0],
        "s": ["a", None, "c"],
        "i": pd.array([1, None, 3], dtype="Int64"),
        "when": pd.to_datetime(["2024-01-01", "2024-06-01", None], utc=True),
    })
    assert remote.import_dataframe("t", frame) == 3
    local = cn.Backend()
    local.import_dataframe("t", frame)
    ours, theirs = remote.df("t"), local.df("t")
    cols = [c for c in theirs.columns if c not in ("_id", "_creationTime")]
    pd.testing.assert_frame_equal(ours[cols], theirs[cols])
    local.close()
    # insert refuses a table with documents; nothing is written
    with pytest.raises(DatabaseError, match="already has 3 documents"):
        remote.import_dataframe("t", frame)
    # keep_ids: the frame read back replaces the table with the same ids
    back = remote.df("t")
    back.loc[0, "x"] = 10.0
    remote.import_dataframe("t", back, mode="replace")
    again = remote.df("t")
    assert list(again["_id"]) == list(back["_id"]) and again.loc[0, "x"] == 10.0
    assert remote.import_dataframe("t", pd.DataFrame({"x": [4.0]}), mode="append") == 1
    assert app.count("t") == 4


def test_import_dataframe_errors_change_nothing(app: cn.Backend, remote: DeploymentClient) -> None:
    from convex_notebook import v

    app.set_schema(cn.define_schema({"typed": cn.define_table({"n": v.number()})}))
    app.run(lambda ctx: ctx.db.insert("typed", {"n": 1.0}))
    with pytest.raises(DatabaseError, match="line 2"):
        remote.import_dataframe("typed", pd.DataFrame({"n": [2.0, "two"]}, dtype=object), mode="append")
    with pytest.raises(ValueError, match="mode="):
        remote.import_dataframe("typed", pd.DataFrame({"n": [2.0]}), mode="merge")
    with pytest.raises(TypeError, match="unexpected keyword argument"):
        remote.import_dataframe("typed", pd.DataFrame({"n": [2.0]}), mode="append", chunks=3)
    assert app.run(lambda ctx: [d["n"] for d in ctx.db.query("typed").collect()]) == [1.0]


def test_an_import_is_seen_by_the_clients_subscriptions_when_it_returns(app: cn.Backend, remote: DeploymentClient) -> None:
    sub = remote.subscribe("messages:list")
    remote.import_dataframe("messages", pd.DataFrame({"author": ["x"], "body": ["imported"]}), mode="append")
    assert [m["body"] for m in sub.value] == ["imported"]
    sub.unsubscribe()


def test_tables_functions_logs_pages_and_reset(app: cn.Backend, remote: DeploymentClient, tmp_path: Any) -> None:
    mixed_documents(app)
    assert remote.table_names() == app.table_names() == ["mixed"]
    assert remote.count("mixed") == 3 and remote.count("nothing") == 0
    local = {f.path: f for f in app.functions()}
    theirs = {f.path: f for f in remote.functions()}
    assert local.keys() == theirs.keys()
    for path, f in local.items():
        assert (theirs[path].kind, theirs[path].visibility) == (f.kind, f.visibility)
        assert repr(theirs[path].args) == repr(f.args)
    remote.mutation("messages:send", {"author": "r", "body": "logged"})
    entry = remote.logs.tail(1)[0]
    assert entry.path == "messages:send" and entry.kind == "mutation" and entry.ok
    page = remote.table_page("mixed", num_items=2, order="desc")
    assert [d["n"] for d in page["page"]][0] == -0.0 and page["isDone"] is False
    path = tmp_path / "mixed.jsonl"
    assert remote.export_table("mixed", path) == 3
    copy = cn.Backend()
    copy.import_table("mixed", path)
    pd.testing.assert_frame_equal(copy.df("mixed"), app.df("mixed"))
    copy.close()
    assert remote.clear_tables() == 4 and app.count("mixed") == 0 and app.count("messages") == 0


def test_the_data_api_needs_the_admin_key(app: cn.Backend, server: Any) -> None:
    with cn.connect(server.url) as anonymous:
        for call in (anonymous.table_names, lambda: anonymous.count("t"), anonymous.functions,
                     lambda: anonymous.logs, anonymous.clear_tables, lambda: anonymous.documents("t"),
                     lambda: anonymous.import_dataframe("t", pd.DataFrame({"x": [1.0]}))):
            with pytest.raises(PermissionError, match="admin key"):
                call()
        app.mutation("messages:send", {"author": "a", "body": "b"})
        assert list(anonymous.df("messages:list")["body"]) == ["b"]  # queries need no key
    assert app.count("t") == 0


def test_connect_reads_the_admin_key_from_the_environment(server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONVEX_NOTEBOOK_ADMIN_KEY", server.admin_key)
    with cn.connect(server.url) as remote:
        assert remote.admin_key == server.admin_key and remote.table_names() == []


def test_time_travel_over_the_wire(app: cn.Backend, remote: DeploymentClient) -> None:
    """``query(..., at=)``, ``df(table, at=)`` and ``documents(table, at=)`` read the history."""
    @app.query
    def texts(ctx: Any) -> list[str]:
        return [d["t"] for d in ctx.db.query("notes").collect()]

    app.run(lambda ctx: ctx.db.insert("notes", {"t": "first"}))
    before = remote.latest_ts()
    doc = app.run(lambda ctx: ctx.db.query("notes").first())
    app.run(lambda ctx: ctx.db.patch(doc["_id"], {"t": "edited"}))
    app.run(lambda ctx: ctx.db.insert("notes", {"t": "second"}))
    assert remote.query("texts", {}) == ["edited", "second"]
    assert remote.query("texts", {}, at=before) == ["first"]
    assert remote.df("notes", at=before)["t"].tolist() == ["first"]
    assert [d["t"] for d in remote.documents("notes", at=before)] == ["first"]
    with pytest.raises(cn.ConvexFunctionError, match="older than the history"):
        remote.query("texts", {}, at=1)
