"""ctx.vector_search in actions: exact cosine ranking, Convex's filters, limits, what is indexed,
fresh results after writes, and clear errors."""

from __future__ import annotations

import math
from typing import Any

import pytest

import convex_notebook as cn
from convex_notebook import v

FOODS = [
    ("apple", [1.0, 0.0, 0.0], "fruit", "US"),
    ("pear", [0.9, 0.1, 0.0], "fruit", "FR"),
    ("kale", [0.0, 1.0, 0.0], "vegetable", "US"),
    ("brie", [0.0, 0.0, 1.0], "cheese", "FR"),
    ("quince", [0.7, 0.7, 0.0], "fruit", "FR"),
]


@pytest.fixture
def app() -> Any:
    backend = cn.Backend(echo_logs=False, schema=cn.define_schema({
        "foods": cn.define_table({
            "name": v.string(), "embedding": v.array(v.float64()), "kind": v.string(), "country": v.string(),
        }).vector_index("by_embedding", vector_field="embedding", dimensions=3, filter_fields=["kind", "country"]),
        "loose": cn.define_table({"embedding": v.any()}).vector_index("by_embedding", vector_field="embedding", dimensions=2),
    }))

    @backend.action
    def search(ctx: Any, vector: list, limit: float = 10, kind: str | None = None, country: str | None = None) -> Any:
        query: dict = {"vector": vector, "limit": int(limit)}
        if kind is not None and country is not None:
            query["filter"] = lambda q: q.or_(q.eq("kind", kind), q.eq("country", country))
        elif kind is not None:
            query["filter"] = lambda q: q.eq("kind", kind)
        return ctx.vector_search("foods", "by_embedding", query)

    backend.run(lambda ctx: [ctx.db.insert("foods", {"name": n, "embedding": e, "kind": k, "country": c})
                             for n, e, k, c in FOODS])
    yield backend
    backend.close()


def names(app: cn.Backend, results: list[dict]) -> list[str]:
    return [app.run(lambda ctx: ctx.db.get(r["_id"]))["name"] for r in results]


def test_ranked_by_cosine_similarity(app: cn.Backend) -> None:
    results = app.action("search", {"vector": [1.0, 0.0, 0.0]})
    found = names(app, results)
    assert found[:3] == ["apple", "pear", "quince"] and set(found[3:]) == {"kale", "brie"}
    assert results[3]["_id"] < results[4]["_id"]  # kale and brie tie at 0: by _id
    scores = [r["_score"] for r in results]
    assert scores[0] == pytest.approx(1.0) and scores[1] == pytest.approx(0.9 / math.hypot(0.9, 0.1))
    assert scores[2] == pytest.approx(math.sqrt(0.5)) and scores[-1] == pytest.approx(0.0)
    assert set(results[0]) == {"_id", "_score"}  # no document or vector data


def test_limit_and_filters(app: cn.Backend) -> None:
    assert names(app, app.action("search", {"vector": [1.0, 0.0, 0.0], "limit": 2})) == ["apple", "pear"]
    fruit = names(app, app.action("search", {"vector": [0.0, 1.0, 0.0], "kind": "fruit"}))
    assert fruit == ["quince", "pear", "apple"]
    either = names(app, app.action("search", {"vector": [0.1, 0.2, 1.0], "kind": "vegetable", "country": "FR"}))
    assert either == ["brie", "quince", "kale", "pear"]  # FR or vegetable: not apple


def test_ties_are_broken_by_id(app: cn.Backend) -> None:
    ids = app.run(lambda ctx: [ctx.db.insert("foods", {"name": f"twin{i}", "embedding": [0.5, 0.5, 0.5],
                                                          "kind": "twin", "country": "X"}) for i in range(4)])
    results = app.action("search", {"vector": [1.0, 1.0, 1.0], "kind": "twin"})
    assert [r["_id"] for r in results] == sorted(ids)


def test_writes_are_found_at_once_and_deletes_disappear(app: cn.Backend) -> None:
    first = app.action("search", {"vector": [0.0, 0.0, 1.0], "limit": 1})
    new = app.run(lambda ctx: ctx.db.insert("foods", {"name": "gouda", "embedding": [0.0, 0.1, 1.0],
                                                      "kind": "cheese", "country": "NL"}))
    assert names(app, app.action("search", {"vector": [0.0, 0.1, 1.0], "limit": 1})) == ["gouda"]
    app.run(lambda ctx: ctx.db.delete(new))
    assert app.action("search", {"vector": [0.0, 0.0, 1.0], "limit": 1}) == first


def test_only_vectors_of_the_right_length_are_indexed(app: cn.Backend) -> None:
    @app.action
    def loose(ctx: Any) -> Any:
        return ctx.vector_search("loose", "by_embedding", vector=[1.0, 0.0], limit=10)

    kept = app.run(lambda ctx: ctx.db.insert("loose", {"embedding": [1.0, 1.0]}))
    app.run(lambda ctx: [ctx.db.insert("loose", {"embedding": e}) for e in ([1.0], [1.0, 2.0, 3.0], "text", [1.0, "x"])])
    assert [r["_id"] for r in app.action("loose")] == [kept]


@pytest.mark.parametrize("call, message", [
    (lambda ctx: ctx.vector_search("foods", "by_embedding", {"vector": [1.0, 0.0]}), "list of 3 numbers"),
    (lambda ctx: ctx.vector_search("foods", "by_embedding", {"vector": [1.0, 0.0, 0.0], "limit": 257}), "limit"),
    (lambda ctx: ctx.vector_search("foods", "by_embedding", {"vector": [1.0, 0.0, 0.0], "limit": 0}), "limit"),
    (lambda ctx: ctx.vector_search("foods", "nope", {"vector": [1.0, 0.0, 0.0]}), "no such vector index"),
    (lambda ctx: ctx.vector_search("nothing", "by_embedding", {"vector": [1.0, 0.0, 0.0]}), "no table"),
    (lambda ctx: ctx.vector_search("foods", "by_embedding", {"vector": [1.0, 0.0, 0.0],
                                                              "filter": lambda q: q.eq("name", "apple")}), "not a filter field"),
    (lambda ctx: ctx.vector_search("foods", "by_embedding", {"vector": [1.0, 0.0, 0.0],
                                                              "filter": lambda q: q.gt("kind", "a")}), "only q.eq"),
    (lambda ctx: ctx.vector_search("foods", "by_embedding", {"vector": [math.nan, 0.0, 0.0]}), "NaN"),
    (lambda ctx: ctx.vector_search("foods", "by_embedding", {"vector": [1.0, 0.0, 0.0], "k": 3}), "unknown option"),
])
def test_bad_searches_are_clear_errors(app: cn.Backend, call: Any, message: str) -> None:
    @app.action
    def bad(ctx: Any) -> Any:
        return call(ctx)

    with pytest.raises(cn.ConvexFunctionError, match=message):
        app.action("bad")


def test_async_actions_await_it(app: cn.Backend) -> None:
    @app.action
    async def nearest(ctx: Any) -> Any:
        results = await ctx.vector_search("foods", "by_embedding", {"vector": [0.0, 1.0, 0.0], "limit": 1})
        return results[0]["_id"]

    assert names(app, [{"_id": app.action("nearest")}]) == ["kale"]


def test_queries_and_mutations_have_no_vector_search(app: cn.Backend) -> None:
    with pytest.raises(cn.ConvexFunctionError, match="in actions only"):
        app.run(lambda ctx: ctx.vector_search("foods", "by_embedding", {"vector": [1.0, 0.0, 0.0]}))
