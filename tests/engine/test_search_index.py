"""Text search indexes kept on commit (engine/textindex.py, store/fulltext.py): the FTS5 table
agrees with the documents after every kind of write, schema pushes add and drop it, filters
are answered by the index, the Python ranking (buffered writes, the past) equals FTS5's, and
an old file gets its indexes when it opens."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest

import convex_notebook as cn
from convex_notebook import v
from convex_notebook.engine import bulk
from convex_notebook.engine.textindex import filter_token, tokenize


def schema(search: bool = True, filters: tuple[str, ...] = ("channel",)) -> Any:
    table = cn.define_table({"body": v.any(), "channel": v.optional(v.any()), "n": v.optional(v.number())})
    if search:
        table = table.search_index("search_body", search_field="body", filter_fields=list(filters))
    return cn.define_schema({"messages": table}, schema_validation=False)


@pytest.fixture
def app() -> Any:
    backend = cn.Backend(echo_logs=False, clock=cn.VirtualClock(), schema=schema())

    @backend.query
    def search(ctx: Any, text: str, channel: Any = None, n: float = 50) -> list[str]:
        def plan(q: Any) -> Any:
            q = q.search("body", text)
            return q.eq("channel", channel) if channel is not None else q
        return [m["body"] for m in ctx.db.query("messages").with_search_index("search_body", plan).take(int(n))]

    yield backend
    backend.close()


def index_rows(app: cn.Backend, name: str = "search_body") -> set[tuple[bytes, str, str]]:
    """The FTS5 rows of a search index, after FTS5's own integrity check."""
    info = app.database.table("messages")
    stored = info.text_indexes[name].stored
    conn = app.database.store.conn
    conn.execute(f"INSERT INTO {stored.fts} ({stored.fts}) VALUES ('integrity-check')")
    return {(bytes(k), t, f) for k, t, f in conn.execute(f"SELECT k, t, f FROM {stored.fts}")}


def expected_rows(app: cn.Backend, filters: tuple[str, ...] = ("channel",)) -> set[tuple[bytes, str, str]]:
    """The rows the documents call for, computed from scratch."""
    info = app.database.table("messages")
    out = set()
    with app.database.read() as txn:
        for key, text, plain in txn.table_rows(info):
            from convex_notebook.engine.stored import load_row

            doc = load_row(key, text, plain)
            if type(doc.get("body")) is str:
                tokens = " ".join(tokenize(doc["body"]))
                ftoks = " ".join(filter_token(i, doc.get(f, cn.MISSING)) for i, f in enumerate(filters))
                out.add((key, tokens, ftoks))
    return out


def agrees(app: cn.Backend) -> bool:
    return index_rows(app) == expected_rows(app)


def test_every_kind_of_write_keeps_the_index(app: cn.Backend) -> None:
    ids = app.run(lambda ctx: [ctx.db.insert("messages", {"body": f"hello world {i}", "channel": "a"}) for i in range(5)])
    assert agrees(app) and len(index_rows(app)) == 5
    app.run(lambda ctx: ctx.db.patch(ids[0], {"body": "goodbye moon"}))  # the text changes
    app.run(lambda ctx: ctx.db.patch(ids[1], {"channel": "b"}))  # a filter value changes
    app.run(lambda ctx: ctx.db.patch(ids[2], {"n": 3}))  # another field: the row stays
    app.run(lambda ctx: ctx.db.replace(ids[3], {"body": 42}))  # no longer a string: unindexed
    app.run(lambda ctx: ctx.db.delete(ids[4]))
    assert agrees(app) and len(index_rows(app)) == 3
    assert app.query("search", {"text": "goodbye"}) == ["goodbye moon"]
    assert app.query("search", {"text": "hello", "channel": "b"}) == ["hello world 1"]
    app.run(lambda ctx: ctx.db.replace(ids[3], {"body": "back again"}))  # a string again
    # inserted, patched and deleted inside one mutation: nothing of it is left
    def churn(ctx: Any) -> None:
        doc = ctx.db.insert("messages", {"body": "ephemeral"})
        ctx.db.patch(doc, {"body": "still ephemeral"})
        ctx.db.delete(doc)
    app.run(churn)
    assert agrees(app) and app.query("search", {"text": "ephemeral"}) == []
    # bulk writes: an import and clearing the table (exclusive transactions)
    with app.database.write(exclusive=True) as txn:
        bulk.insert_documents(txn, "messages", [{"body": f"imported {i}", "channel": "c"} for i in range(50)])
    assert agrees(app) and len(app.query("search", {"text": "imported", "channel": "c", "n": 100})) == 50
    with app.database.write(exclusive=True) as txn:
        bulk.insert_columns(txn, "messages", ["body"], [[f"column {i}" for i in range(20)]], 20)
    assert agrees(app) and len(app.query("search", {"text": "column"})) == 20
    with app.database.write(exclusive=True) as txn:
        bulk.clear_table(txn, "messages")
    assert index_rows(app) == set() and app.query("search", {"text": "imported"}) == []


def test_large_writes_keep_the_index(app: cn.Backend) -> None:
    with app.database.write(exclusive=True) as txn:  # more documents than a commit lists terms for
        bulk.insert_documents(txn, "messages", [{"body": f"bulk {i}", "channel": "b"} for i in range(1_200)])
    assert agrees(app) and len(app.query("search", {"text": "bulk", "channel": "b", "n": 2000})) == 1024  # the cap
    app.run(lambda ctx: ctx.db.insert("messages", {"body": "survivor"}))
    with app.database.write(exclusive=True) as txn:
        bulk.clear_table(txn, "messages")
    assert index_rows(app) == set() == expected_rows(app)


def test_a_failed_exclusive_transaction_leaves_the_index_as_it_was(app: cn.Backend) -> None:
    app.run(lambda ctx: ctx.db.insert("messages", {"body": "kept"}))
    before = index_rows(app)
    with pytest.raises(RuntimeError), app.database.write(exclusive=True) as txn:
        bulk.insert_documents(txn, "messages", [{"body": "rolled back"}])
        raise RuntimeError("abort")
    assert index_rows(app) == before and app.query("search", {"text": "rolled"}) == []


def test_an_exclusive_transaction_searches_its_own_writes(app: cn.Backend) -> None:
    with app.database.write(exclusive=True) as txn:
        bulk.insert_documents(txn, "messages", [{"body": "inside the import"}])
        from convex_notebook.engine.query import Query

        found = Query(txn, "messages").with_search_index("search_body", lambda q: q.search("body", "import")).collect()
    assert [d["body"] for d in found] == ["inside the import"]


def test_schema_push_adds_and_drops_a_search_index(app: cn.Backend) -> None:
    app.run(lambda ctx: [ctx.db.insert("messages", {"body": f"note {i}", "channel": "x"}) for i in range(10)])
    fts = app.database.table("messages").text_indexes["search_body"].stored.fts
    app.set_schema(schema(search=False))
    assert app.database.table("messages").text_indexes == {}
    tables = {r[0] for r in app.database.store.conn.execute("SELECT name FROM sqlite_master")}
    assert fts not in tables and f"{fts}_terms" not in tables
    with pytest.raises(cn.ConvexFunctionError, match="not found"):
        app.query("search", {"text": "note"})
    app.run(lambda ctx: ctx.db.insert("messages", {"body": "note while unindexed"}))
    app.set_schema(schema())  # built again from the documents (backfill)
    assert agrees(app) and len(app.query("search", {"text": "note"})) == 11
    app.set_schema(schema(filters=("channel", "n")))  # other filter fields: rebuilt
    assert index_rows(app) == expected_rows(app, ("channel", "n"))


def test_filters_are_answered_by_the_index(app: cn.Backend) -> None:
    app.run(lambda ctx: [ctx.db.insert("messages", {"body": f"deploy {i}", "channel": "busy"}) for i in range(300)])
    app.run(lambda ctx: [ctx.db.insert("messages", {"body": f"deploy quiet {i}", "channel": "quiet"}) for i in range(3)])
    app.run(lambda ctx: ctx.db.insert("messages", {"body": "deploy nowhere"}))
    app.run(lambda ctx: ctx.db.insert("messages", {"body": "deploy numbered", "channel": 7}))
    assert app.query("search", {"text": "deploy", "channel": "quiet"}) == ["deploy quiet 2", "deploy quiet 1", "deploy quiet 0"]
    assert app.query("search", {"text": "deploy", "channel": 7}) == ["deploy numbered"]
    assert app.query("search", {"text": "deploy", "channel": 7.5}) == []
    # only the matches of the filter were read, not the 300 others
    usage = [e.usage for e in app.logs.tail(10) if e.path == "search"][-3]
    assert usage["documents_read"] == 3


def test_python_ranking_equals_fts5s(app: cn.Backend) -> None:
    bodies = ["apple banana", "apple apple pie", "banana split with apple", "cherry apple tart apple",
              "apples and bananas", "banana", "pineapple apple", "an apple a day"]
    app.run(lambda ctx: [ctx.db.insert("messages", {"body": b, "channel": "c" if i % 2 else "d"})
                         for i, b in enumerate(bodies)])
    other = app.run(lambda ctx: ctx.db.insert("messages", {"body": "unrelated"}))

    def ranked(ctx: Any, text: str, channel: Any = None) -> list[str]:
        def plan(q: Any) -> Any:
            q = q.search("body", text)
            return q.eq("channel", channel) if channel is not None else q
        return [m["body"] for m in ctx.db.query("messages").with_search_index("search_body", plan).collect()]

    for text, channel in (("apple", None), ("banana apple", None), ("appl", None), ("apple ban", "c"), ("pie a", "d")):
        from_fts = app.run(lambda ctx, text=text, channel=channel: ranked(ctx, text, channel))
        # a buffered write to the table: the same search ranked in Python
        in_python = app.run(lambda ctx, text=text, channel=channel: (ctx.db.patch(other, {"n": 1}),
                                                                    ranked(ctx, text, channel))[1])
        assert in_python == from_fts and from_fts, text


def test_a_mutation_searches_its_buffered_writes(app: cn.Backend) -> None:
    ids = app.run(lambda ctx: [ctx.db.insert("messages", {"body": b}) for b in ("red fish", "blue fish", "old fish")])

    def body(ctx: Any) -> list[str]:
        ctx.db.insert("messages", {"body": "new fish"})
        ctx.db.patch(ids[0], {"body": "red herring"})
        ctx.db.delete(ids[2])
        return [m["body"] for m in ctx.db.query("messages").with_search_index(
            "search_body", lambda q: q.search("body", "fish")).collect()]

    assert body_sorted(app.run(body)) == ["blue fish", "new fish"]


def body_sorted(found: list[str]) -> list[str]:
    return sorted(found)


def test_search_in_the_past_sees_the_past(app: cn.Backend) -> None:
    doc = app.run(lambda ctx: ctx.db.insert("messages", {"body": "first draft"}))
    before = app.latest_ts()
    app.run(lambda ctx: ctx.db.patch(doc, {"body": "final text"}))
    app.run(lambda ctx: ctx.db.insert("messages", {"body": "another draft"}))
    assert app.query("search", {"text": "draft"}) == ["another draft"]
    assert app.query("search", {"text": "draft"}, at=before) == ["first draft"]
    assert app.query("search", {"text": "final"}, at=before) == []


def test_documents_with_the_same_creation_time(app: cn.Backend) -> None:
    from convex_notebook.values import encode_id

    number = app.database.table("messages").number
    docs = [{"_id": encode_id(number, bytes([i]) * 16), "_creationTime": 1_700_000_000_000.0, "body": f"twin {i}"}
            for i in range(4)]
    with app.database.write(exclusive=True) as txn:
        bulk.insert_documents(txn, "messages", docs, keep_system_fields=True)
    assert agrees(app) and len(app.query("search", {"text": "twin"})) == 4
    app.run(lambda ctx: ctx.db.delete(docs[0]["_id"]))
    app.run(lambda ctx: ctx.db.patch(docs[2]["_id"], {"body": "single"}))
    assert agrees(app) and sorted(app.query("search", {"text": "twin"})) == ["twin 1", "twin 3"]
    shifted = app.database.store.conn.execute("SELECT COUNT(*) FROM search_shifted").fetchone()[0]
    assert shifted == 2  # twins 1 and 3 took the next free rowids; 2 was rewritten in place


def test_an_older_file_gets_its_indexes_when_it_opens(tmp_path: Any) -> None:
    path = tmp_path / "old.sqlite3"
    with cn.Backend(path, echo_logs=False, schema=schema()) as app:
        app.run(lambda ctx: [ctx.db.insert("messages", {"body": f"saved {i}"}) for i in range(30)])
        fts = app.database.table("messages").text_indexes["search_body"].stored.fts
    conn = sqlite3.connect(path)  # what format 3 looked like: no search tables at all
    for table in (f"{fts}_terms", fts, "search_indexes", "search_shifted"):
        conn.execute(f"DROP TABLE {table}")
    conn.execute("UPDATE meta SET value = '3' WHERE key = 'format'")
    conn.commit()
    conn.close()
    with cn.Backend(path, echo_logs=False) as app:
        assert app.database.store.get_meta("format") == "4"
        assert agrees(app)
        found = app.run(lambda ctx: ctx.db.query("messages").with_search_index(
            "search_body", lambda q: q.search("body", "saved")).take(100))
        assert len(found) == 30


CRASH_CHILD = """
import sys
import convex_notebook as cn
from convex_notebook import v

schema = cn.define_schema({"messages": cn.define_table({"body": v.any(), "channel": v.optional(v.any()),
                                                        "n": v.optional(v.number())})
                           .search_index("search_body", search_field="body", filter_fields=["channel"])},
                          schema_validation=False)
app = cn.Backend(sys.argv[1], schema=schema, echo_logs=False)

@app.mutation
def churn(ctx, i):
    new = ctx.db.insert("messages", {"body": f"message {i} word{i % 7}", "channel": f"c{i % 3}"})
    old = ctx.db.query("messages").first()
    if old is not None and old["_id"] != new and i % 2:
        ctx.db.patch(old["_id"], {"body": f"patched {i}"})
    elif old is not None and old["_id"] != new:
        ctx.db.delete(old["_id"])
    return i

print("ready", flush=True)
i = 0
while True:
    print(app.mutation("churn", {"i": i}), flush=True)
    i += 1
"""


@pytest.mark.slow
def test_the_index_agrees_with_the_documents_after_a_kill(tmp_path: Any) -> None:
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    path = tmp_path / "crash.sqlite3"
    env = dict(os.environ, PYTHONPATH=str(root) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    for acknowledged in (40, 150):
        proc = subprocess.Popen([sys.executable, "-c", CRASH_CHILD, str(path)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=env)
        try:
            assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
            for _ in range(acknowledged):
                assert proc.stdout.readline(), "the writer died early"
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            for stream in (proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()
        with cn.Backend(path, echo_logs=False) as app:
            assert agrees(app)
            docs = app.run(lambda ctx: ctx.db.query("messages").collect())
            found = app.run(lambda ctx: ctx.db.query("messages").with_search_index(
                "search_body", lambda q: q.search("body", "message patched")).take(1000))
            assert sorted(d["_id"] for d in found) == sorted(d["_id"] for d in docs)


def test_small_pages_and_take_read_only_what_they_return(app: cn.Backend) -> None:
    app.run(lambda ctx: [ctx.db.insert("messages", {"body": f"page item {i}"}) for i in range(5)])

    def page(ctx: Any, cursor: Any, n: int) -> Any:
        return ctx.db.query("messages").with_search_index(
            "search_body", lambda q: q.search("body", "item")).paginate({"numItems": n, "cursor": cursor})

    seen, cursor, sizes = [], None, []
    while True:
        result = app.run(lambda ctx, cursor=cursor: page(ctx, cursor, 2))
        sizes.append(len(result["page"]))
        seen += [d["body"] for d in result["page"]]
        if result["isDone"]:
            break
        cursor = result["continueCursor"]
    assert sizes == [2, 2, 1] and seen == [f"page item {i}" for i in range(4, -1, -1)]
    whole = app.run(lambda ctx: page(ctx, None, 5))
    assert len(whole["page"]) == 5 and whole["isDone"]
    assert app.query("search", {"text": "item", "n": 2}) == ["page item 4", "page item 3"]
    usage = [e.usage for e in app.logs.tail(5) if e.path == "search"][-1]
    assert usage["documents_read"] == 2


def test_a_search_sees_its_snapshot(app: cn.Backend) -> None:
    import threading

    from convex_notebook.engine.query import Query

    app.run(lambda ctx: ctx.db.insert("messages", {"body": "snapshot one"}))

    def search(txn: Any) -> list[str]:
        return [d["body"] for d in Query(txn, "messages").with_search_index(
            "search_body", lambda q: q.search("body", "snapshot")).collect()]

    with app.database.read() as txn:
        assert search(txn) == ["snapshot one"]
        writer = threading.Thread(target=lambda: app.run(lambda ctx: [
            ctx.db.insert("messages", {"body": "snapshot two"}), ctx.db.insert("messages", {"body": "snapshot three"})]))
        writer.start()
        writer.join()
        assert search(txn) == ["snapshot one"]  # nothing of the later commit, not half of it
    assert app.query("search", {"text": "snapshot"}) == ["snapshot three", "snapshot two", "snapshot one"]
