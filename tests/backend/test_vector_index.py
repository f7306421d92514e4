"""Vector indexes maintained on commit (backend/vector_search.py): after every kind of write the
results equal a brute-force ranking of the documents; deletes are compacted away; filters read
only their rows; a search reads one commit's view; a file reopens with its index rebuilt; a
bulk import feeds a table's text and vector indexes alike; memory stays near the raw matrix."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pytest

import convex_notebook as cn
from convex_notebook import v
from convex_notebook.engine import bulk

DIMS = 8


def schema() -> Any:
    return cn.define_schema({
        "items": cn.define_table({"embedding": v.any(), "kind": v.string(), "text": v.optional(v.string())})
        .vector_index("by_embedding", vector_field="embedding", dimensions=DIMS, filter_fields=["kind"])
        .search_index("search_text", search_field="text"),
    })


def make(path: Any = None) -> Any:
    app = cn.Backend(path, echo_logs=False, schema=schema())

    @app.action
    def nearest(ctx: Any, vector: list, limit: float = 10, kinds: list | None = None) -> Any:
        query: dict = {"vector": vector, "limit": int(limit)}
        if kinds:
            query["filter"] = lambda q: q.or_(*[q.eq("kind", k) for k in kinds])
        return ctx.vector_search("items", "by_embedding", query)

    return app


@pytest.fixture
def app() -> Any:
    backend = make()
    yield backend
    backend.close()


def brute_force(app: Any, vector: list, limit: int = 10, kinds: list | None = None) -> list[str]:
    """The ids a full scan of the documents ranks first (ties by id)."""
    docs = app.run(lambda ctx: ctx.db.query("items").collect())
    q = np.asarray(vector) / np.linalg.norm(vector)
    scored = []
    for d in docs:
        e = d["embedding"]
        if type(e) is not list or len(e) != DIMS or (kinds and d["kind"] not in kinds):
            continue
        u = np.asarray(e) / (np.linalg.norm(e) or 1.0)
        scored.append((-round(float(u @ q), 5), d["_id"]))
    return [i for _s, i in sorted(scored)[:limit]]


def ids(results: list[dict]) -> list[str]:
    return [r["_id"] for r in results]


def vec(rng: random.Random) -> list[float]:
    return [rng.uniform(-1, 1) for _ in range(DIMS)]


def check(app: Any, rng: random.Random, kinds: list | None = None) -> None:
    for _ in range(5):
        q = vec(rng)
        assert ids(app.action("nearest", {"vector": q, "kinds": kinds})) == brute_force(app, q, 10, kinds)


def test_every_kind_of_write_keeps_the_index(app: Any) -> None:
    rng = random.Random(1)
    doc_ids = app.run(lambda ctx: [ctx.db.insert("items", {"embedding": vec(rng), "kind": f"k{i % 3}"}) for i in range(40)])
    check(app, rng)  # (the first search builds the index)
    app.run(lambda ctx: ctx.db.insert("items", {"embedding": vec(rng), "kind": "k0"}))
    app.run(lambda ctx: ctx.db.patch(doc_ids[0], {"embedding": vec(rng)}))  # the vector changes
    app.run(lambda ctx: ctx.db.patch(doc_ids[1], {"kind": "k2"}))  # a filter value changes
    app.run(lambda ctx: ctx.db.replace(doc_ids[2], {"embedding": [1.0, 2.0], "kind": "k1"}))  # unindexed now
    app.run(lambda ctx: ctx.db.delete(doc_ids[3]))
    check(app, rng)
    check(app, rng, ["k2"])
    check(app, rng, ["k0", "k1"])
    with app.database.write(exclusive=True) as txn:  # an import
        bulk.insert_documents(txn, "items", [{"embedding": vec(rng), "kind": "k9"} for _ in range(30)])
    check(app, rng)
    check(app, rng, ["k9"])
    with app.database.write(exclusive=True) as txn:
        bulk.clear_table(txn, "items")
    assert app.action("nearest", {"vector": vec(rng)}) == []


def test_deletes_are_compacted_away(app: Any) -> None:
    rng = random.Random(2)
    doc_ids = app.run(lambda ctx: [ctx.db.insert("items", {"embedding": vec(rng), "kind": "a"}) for _ in range(3000)])
    check(app, rng)
    index = app._vectors.index("items", app.database.schema.tables["items"].vector_indexes[0])
    app.run(lambda ctx: [ctx.db.delete(i) for i in doc_ids[:1000]])
    app.run(lambda ctx: [ctx.db.delete(i) for i in doc_ids[1000:2000]])
    assert index.n == 1000 and index.dead == 0  # compacted: only the live rows remain
    check(app, rng)
    check(app, rng, ["a"])


def test_a_search_reads_one_commits_view(app: Any) -> None:
    rng = random.Random(3)
    first = app.run(lambda ctx: ctx.db.insert("items", {"embedding": [1.0] + [0.0] * (DIMS - 1), "kind": "a"}))
    app.action("nearest", {"vector": vec(rng)})
    index = app._vectors.index("items", app.database.schema.tables["items"].vector_indexes[0])
    rows, n, ts, _dead = index.view()
    app.run(lambda ctx: ctx.db.insert("items", {"embedding": vec(rng), "kind": "a"}))
    app.run(lambda ctx: ctx.db.delete(first))
    # the view taken before those commits: one row, still alive at its timestamp
    assert n == 1 and rows.ids[0] == first and rows.dead_at[0] > ts
    _rows, n_now, ts_now, dead_now = index.view()
    assert n_now == 2 and dead_now == 1 and ts_now == app.latest_ts()


def test_a_file_reopens_with_its_index(tmp_path: Any) -> None:
    rng = random.Random(4)
    path = tmp_path / "vectors.sqlite3"
    app = make(path)
    app.run(lambda ctx: [ctx.db.insert("items", {"embedding": vec(rng), "kind": "a"}) for _ in range(50)])
    q = vec(rng)
    before = ids(app.action("nearest", {"vector": q}))
    app.close()
    app = make(path)
    try:
        assert ids(app.action("nearest", {"vector": q})) == before == brute_force(app, q)
    finally:
        app.close()


def test_bulk_import_feeds_both_kinds_of_index(app: Any) -> None:
    rng = random.Random(5)
    rows = [{"embedding": vec(rng), "kind": "x", "text": f"imported row {i}"} for i in range(200)]
    with app.database.write(exclusive=True) as txn:
        bulk.insert_documents(txn, "items", rows)
    found = app.run(lambda ctx: ctx.db.query("items").with_search_index(
        "search_text", lambda q: q.search("text", "imported")).take(500))
    assert len(found) == 200
    check(app, rng, ["x"])


def test_memory_stays_near_the_raw_matrix(app: Any) -> None:
    dims = 768
    big = cn.Backend(echo_logs=False, schema=cn.define_schema({
        "e": cn.define_table({"v": v.array(v.float64())}).vector_index("by_v", vector_field="v", dimensions=dims),
    }))
    try:
        rng = np.random.default_rng(6)
        with big.database.write(exclusive=True) as txn:
            bulk.insert_documents(txn, "e", [{"v": row} for row in rng.standard_normal((2000, dims)).round(3).tolist()])
        definition = big.database.schema.tables["e"].vector_indexes[0]
        index = big._vectors.index("e", definition)
        assert index.n == 2000
        assert index.memory() <= 1.5 * 2000 * dims * 4
    finally:
        big.close()


def test_commits_during_a_build_are_caught_up(app: Any) -> None:
    rng = random.Random(7)
    doc_ids = app.run(lambda ctx: [ctx.db.insert("items", {"embedding": vec(rng), "kind": "a"}) for _ in range(20)])
    definition = app.database.schema.tables["items"].vector_indexes[0]
    built = app._vectors._build("items", definition)  # a snapshot's index: then commits land
    new = app.run(lambda ctx: ctx.db.insert("items", {"embedding": vec(rng), "kind": "b"}))
    app.run(lambda ctx: ctx.db.delete(doc_ids[0]))
    assert new not in built.rows.ids
    with app.database.commit_lock:
        assert app._vectors._catch_up(built, "items")
    rows, n, ts, _dead = built.view()
    alive = {rows.ids[i] for i in range(n) if rows.dead_at[i] > ts}
    assert new in alive and doc_ids[0] not in alive and len(alive) == 20
    app.database.write_log.horizon = app.latest_ts() + 1  # as if the log had moved past the build
    assert not app._vectors._catch_up(app._vectors._build("items", definition), "items")
