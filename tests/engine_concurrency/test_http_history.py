"""API.md §7 over HTTP (a served deployment on 127.0.0.1): ``/api/query_at_ts`` reads any ts within
the history, ``/api/list_snapshot`` pages stay consistent at one snapshot while writes land between
them, ``/api/document_deltas`` streams the changes after a cursor, deletes included (Convex's
streaming export: ``reference/convex-docs.txt``, "Streaming Export")."""

from __future__ import annotations

import base64
import struct
from typing import Any, Iterator

import httpx
import pytest

import convex_notebook as cn
from convex_notebook import v

MAX_PAGES = 100  # bound of every paging loop


def encode_ts(ts: int) -> str:
    return base64.b64encode(struct.pack("<Q", ts)).decode("ascii")


@pytest.fixture
def app() -> Iterator[cn.Backend]:
    schema = cn.define_schema({
        "items": cn.define_table({"name": v.string(), "n": v.number()}).index("by_name", ["name"]),
        "other": cn.define_table({"x": v.number()}),
    })
    backend = cn.Backend(schema=schema, echo_logs=False, query_cache_size=0)

    @backend.query
    def names(ctx):
        return [d["name"] for d in ctx.db.query("items").with_index("by_name").collect()]

    yield backend
    backend.close()


@pytest.fixture
def server(app: cn.Backend) -> Iterator[Any]:
    handle = app.serve(port=0, block=False, print_admin_key=False)
    yield handle
    handle.stop()


@pytest.fixture
def http(server: Any) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Convex {server.admin_key}"}, timeout=60) as c:
        yield c


def insert(app: cn.Backend, table: str, doc: dict) -> str:
    return app.run(lambda ctx: ctx.db.insert(table, doc))


def test_query_at_ts_reads_the_past(app: cn.Backend, http: httpx.Client) -> None:
    a = insert(app, "items", {"name": "a", "n": 1})
    first = http.post("/api/query_ts").json()["ts"]
    assert struct.unpack("<Q", base64.b64decode(first))[0] == app.latest_ts()
    insert(app, "items", {"name": "b", "n": 2})
    middle = app.latest_ts()
    app.run(lambda ctx: ctx.db.delete(a))
    insert(app, "items", {"name": "c", "n": 3})

    def at(ts_text: str) -> Any:
        r = http.post("/api/query_at_ts", json={"path": "names", "args": {}, "format": "json", "ts": ts_text})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["status"] == "success", body
        return body["value"]

    assert at(first) == ["a"]
    assert at(encode_ts(middle)) == ["a", "b"]
    assert at(encode_ts(app.latest_ts())) == ["b", "c"]
    # The answer is the same however many commits come after it.
    for i in range(5):
        insert(app, "items", {"name": f"z{i}", "n": 0})
    assert at(first) == ["a"]


def walk(http: httpx.Client, params: dict, between: Any = None) -> tuple[list[dict], int, int]:
    """All pages of one list_snapshot walk; ``between(page_number)`` runs after each page.
    Returns (values, snapshot, pages)."""
    values: list[dict] = []
    snapshot = cursor = None
    for pages in range(1, MAX_PAGES + 1):
        query = dict(params, format="json")
        if snapshot is not None:
            query["snapshot"] = snapshot
        if cursor is not None:
            query["cursor"] = cursor
        r = http.get("/api/list_snapshot", params=query)
        assert r.status_code == 200, r.text
        page = r.json()
        assert isinstance(page["snapshot"], int)
        if snapshot is not None:
            assert page["snapshot"] == snapshot  # the walk stays on one snapshot
        snapshot, cursor = page["snapshot"], page["cursor"]
        values.extend(page["values"])
        if not page["hasMore"]:
            return values, snapshot, pages
        if between is not None:
            between(pages)
    raise AssertionError("list_snapshot never finished")


def test_list_snapshot_pages_stay_on_one_snapshot_while_writes_land(app: cn.Backend, http: httpx.Client) -> None:
    ids = [insert(app, "items", {"name": f"n{i:02}", "n": i}) for i in range(25)]
    others = [insert(app, "other", {"x": i}) for i in range(7)]
    before = {d["_id"]: d["name"] for d in app.run(lambda ctx: ctx.db.query("items").collect())}

    def write(page: int) -> None:
        # Between every two pages: inserts, patches and deletes all over both tables.
        insert(app, "items", {"name": f"new{page}", "n": 100 + page})
        insert(app, "other", {"x": 100 + page})
        victim = ids[-page]
        app.run(lambda ctx: ctx.db.delete(victim) if ctx.db.get(victim) else None)
        app.run(lambda ctx: ctx.db.patch(ids[page], {"name": f"renamed{page}"}))
        if page <= len(others):
            app.run(lambda ctx: ctx.db.delete(others[-page]))

    values, snapshot, pages = walk(http, {"numItems": 10}, between=write)
    assert pages >= 3
    ids_seen = [d["_id"] for d in values]
    assert len(ids_seen) == len(set(ids_seen)), "a document came back twice"
    items = {d["_id"]: d["name"] for d in values if d["_table"] == "items"}
    assert items == before  # exactly the snapshot: no new, no deleted, no renamed documents
    assert sorted(d["_id"] for d in values if d["_table"] == "other") == sorted(others)
    assert all(isinstance(d["_ts"], int) and d["_ts"] <= snapshot for d in values)
    # A fresh walk (no snapshot given) sees the writes.
    now, _, _ = walk(http, {"tableName": "items", "numItems": 10})
    assert {d["_id"]: d["name"] for d in now} == {
        d["_id"]: d["name"] for d in app.run(lambda ctx: ctx.db.query("items").collect())
    }


def deltas(http: httpx.Client, cursor: int, **params: Any) -> tuple[list[dict], int]:
    values: list[dict] = []
    for _ in range(MAX_PAGES):
        r = http.get("/api/document_deltas", params=dict(params, cursor=cursor, format="json"))
        assert r.status_code == 200, r.text
        page = r.json()
        assert isinstance(page["cursor"], int)
        assert page["cursor"] >= cursor
        values.extend(page["values"])
        cursor = page["cursor"]
        if not page["hasMore"]:
            return values, cursor
    raise AssertionError("document_deltas never finished")


def test_document_deltas_stream_inserts_updates_and_deletes_after_a_cursor(app: cn.Backend, http: httpx.Client) -> None:
    a = insert(app, "items", {"name": "a", "n": 1})
    b = insert(app, "items", {"name": "b", "n": 2})
    c = insert(app, "items", {"name": "c", "n": 3})
    snapshot_values, snapshot, _ = walk(http, {"tableName": "items"})
    state = {d["_id"]: d["name"] for d in snapshot_values}
    assert state == {a: "a", b: "b", c: "c"}

    d = insert(app, "items", {"name": "d", "n": 4})
    app.run(lambda ctx: ctx.db.patch(a, {"name": "a2"}))
    app.run(lambda ctx: ctx.db.delete(b))
    app.run(lambda ctx: ctx.db.patch(a, {"name": "a3"}))
    e = insert(app, "items", {"name": "e", "n": 5})
    app.run(lambda ctx: ctx.db.delete(e))
    insert(app, "other", {"x": 1})
    for i in range(40):  # enough to need more than one page on a small page size
        insert(app, "items", {"name": f"bulk{i:02}", "n": i})

    values, cursor = deltas(http, snapshot, tableName="items")
    assert values, "no deltas"
    stamps = [v["_ts"] for v in values]
    assert stamps == sorted(stamps), "deltas out of commit order"
    assert all(snapshot < t <= cursor for t in stamps)
    assert all(v["_table"] == "items" for v in values)
    assert c not in {v["_id"] for v in values}  # unchanged since the cursor
    deletes = [v for v in values if v.get("_deleted")]
    assert {v["_id"] for v in deletes} == {b, e}
    assert all(set(v) >= {"_id", "_ts", "_deleted"} for v in deletes)
    # Applying the deltas in order to the snapshot gives the current table.
    for v in values:
        if v.get("_deleted"):
            state.pop(v["_id"], None)
        else:
            state[v["_id"]] = v["name"]
    assert state == {doc["_id"]: doc["name"] for doc in app.run(lambda ctx: ctx.db.query("items").collect())}
    assert state[a] == "a3" and state[d] == "d"
    # Nothing after the returned cursor, until the next write.
    assert deltas(http, cursor, tableName="items")[0] == []
    app.run(lambda ctx: ctx.db.patch(c, {"name": "c2"}))
    later, _ = deltas(http, cursor, tableName="items")
    assert [(v["_id"], v["name"]) for v in later] == [(c, "c2")]
    # Without tableName: every table's changes, each naming its table.
    everything, _ = deltas(http, snapshot)
    assert {v["_table"] for v in everything} == {"items", "other"}
    # Admin only.
    url = str(http.base_url).rstrip("/") + "/api/document_deltas"
    assert httpx.get(url, params={"cursor": snapshot}).status_code in (401, 403)


def test_document_deltas_refuse_a_cursor_outside_the_history(app: cn.Backend, http: httpx.Client) -> None:
    r = http.get("/api/document_deltas", params={"cursor": 1, "format": "json"})
    assert r.status_code == 400 and r.json()["code"] == "InvalidCursor"
    assert "older than the history kept" in r.json()["message"]
    r = http.get("/api/document_deltas", params={"cursor": app.latest_ts() + 10**12, "format": "json"})
    assert r.status_code == 400 and "in the future" in r.json()["message"]
    r = http.get("/api/document_deltas", params={"format": "json"})
    assert r.status_code == 400 and r.json()["code"] == "BadQueryParameter"


def test_a_bad_history_setting_is_refused() -> None:
    with pytest.raises(ValueError, match="must not be negative"):
        cn.Backend(history=-1)
    with pytest.raises(TypeError, match="history= takes a timedelta"):
        cn.Backend(history="an hour")
