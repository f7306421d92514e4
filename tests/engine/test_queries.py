"""Query consumers and order (conformance §3.3), and ids (§3.10 normalize_id, db.get(id))."""

from __future__ import annotations

import pytest

import convex_notebook as cn
from convex_notebook import v
from convex_notebook.values import encode_id

from engine_helpers import fails


@pytest.fixture
def ten(app):
    app.run(lambda ctx: [ctx.db.insert("t", {"n": i, "even": i % 2 == 0}) for i in range(10)])
    return app


def ns(docs):
    return [int(d["n"]) for d in docs]


def test_collect_and_default_order(ten):
    assert ns(ten.run(lambda ctx: ctx.db.query("t").collect())) == list(range(10))
    assert ns(ten.run(lambda ctx: ctx.db.query("t").order("asc").collect())) == list(range(10))
    assert ns(ten.run(lambda ctx: ctx.db.query("t").order("desc").collect())) == list(range(9, -1, -1))


def test_iteration_streams_and_can_stop_early(ten):
    def first_three(ctx):
        out = []
        for doc in ctx.db.query("t"):
            out.append(doc)
            if len(out) == 3:
                break
        return out

    assert ns(ten.run(first_three)) == [0, 1, 2]


def test_take(ten):
    assert ns(ten.run(lambda ctx: ctx.db.query("t").take(3))) == [0, 1, 2]
    assert ns(ten.run(lambda ctx: ctx.db.query("t").order("desc").take(2))) == [9, 8]
    assert ns(ten.run(lambda ctx: ctx.db.query("t").take(100))) == list(range(10))
    assert ten.run(lambda ctx: ctx.db.query("t").take(0)) == []
    assert ten.run(lambda ctx: ctx.db.query("empty").take(5)) == []
    for bad in (-1, 1.5, "2", True):
        fails(ten, lambda ctx, bad=bad: ctx.db.query("t").take(bad), "take() takes a non-negative integer")


def test_first(ten):
    assert ten.run(lambda ctx: ctx.db.query("t").first())["n"] == 0
    assert ten.run(lambda ctx: ctx.db.query("t").order("desc").first())["n"] == 9
    assert ten.run(lambda ctx: ctx.db.query("empty").first()) is None


def test_filter_applies_before_the_limit(ten):
    odd = lambda q: q.eq(q.field("even"), False)  # noqa: E731
    assert ten.run(lambda ctx: ctx.db.query("t").filter(odd).first())["n"] == 1
    assert ns(ten.run(lambda ctx: ctx.db.query("t").filter(odd).take(3))) == [1, 3, 5]
    assert ten.run(lambda ctx: ctx.db.query("t").filter(lambda q: q.gt(q.field("n"), 100)).first()) is None


def test_filter_and_order_commute(ten):
    odd = lambda q: q.eq(q.field("even"), False)  # noqa: E731
    a = ten.run(lambda ctx: ctx.db.query("t").filter(odd).order("desc").collect())
    b = ten.run(lambda ctx: ctx.db.query("t").order("desc").filter(odd).collect())
    assert ns(a) == ns(b) == [9, 7, 5, 3, 1]


def test_order_at_most_once_and_valid(ten):
    fails(ten, lambda ctx: ctx.db.query("t").order("asc").order("desc"), "Queries may only specify order at most once")
    fails(ten, lambda ctx: ctx.db.query("t").order("up"), 'order() takes "asc" or "desc"')


def test_unique(ten):
    assert ten.run(lambda ctx: ctx.db.query("t").filter(lambda q: q.eq(q.field("n"), 4)).unique())["n"] == 4
    assert ten.run(lambda ctx: ctx.db.query("t").filter(lambda q: q.eq(q.field("n"), 40)).unique()) is None
    err = fails(ten, lambda ctx: ctx.db.query("t").filter(lambda q: q.lt(q.field("n"), 2)).unique(),
                "unique() query returned more than one result from table t")
    ids = ten.run(lambda ctx: [d["_id"] for d in ctx.db.query("t").take(2)])
    assert all(i in str(err) for i in ids)


def test_a_query_is_consumed_once(ten):
    def twice(ctx):
        q = ctx.db.query("t")
        q.collect()
        return q.first()

    fails(ten, twice, "A query can only be consumed once")


def test_pending_deletes_are_invisible(ten):
    def work(ctx):
        for doc in ctx.db.query("t").take(5):
            ctx.db.delete(doc["_id"])
        return ctx.db.query("t").first()

    assert ten.run(work)["n"] == 5


def test_reads_in_a_query_function(ten):
    @ten.query(args={"min": v.number()})
    def at_least(ctx, min):
        return [d["n"] for d in ctx.db.query("t").filter(lambda q: q.gte(q.field("n"), min)).collect()]

    assert ten.query("at_least", {"min": 7}) == [7.0, 8.0, 9.0]


def test_system_tables_cannot_be_queried_with_db_query(app):
    fails(app, lambda ctx: ctx.db.query("_scheduled_functions").collect(), "system tables")
    fails(app, lambda ctx: ctx.db.query(3), "takes a table name")


# -- ids ----------------------------------------------------------------------------------------
def test_normalize_id(app):
    a = app.run(lambda ctx: ctx.db.insert("a", {}))
    b = app.run(lambda ctx: ctx.db.insert("b", {}))

    def check(ctx):
        return [
            ctx.db.normalize_id("a", a),
            ctx.db.normalize_id("a", b),  # a valid id, of another table
            ctx.db.normalize_id("a", "not an id"),
            ctx.db.normalize_id("a", a[:-1] + ("0" if a[-1] != "0" else "1")),  # checksum broken
            ctx.db.normalize_id("a", 42),
            ctx.db.normalize_id("nope", a),
        ]

    assert app.run(check) == [a, None, None, None, None, None]
    # existence isn't checked: a deleted document's id still normalizes
    app.run(lambda ctx: ctx.db.delete(a))
    assert app.run(lambda ctx: ctx.db.normalize_id("a", a)) == a


def test_ids_carry_their_table(app):
    a = app.run(lambda ctx: ctx.db.insert("a", {"x": 1}))
    b = app.run(lambda ctx: ctx.db.insert("b", {"x": 2}))
    assert app.run(lambda ctx: ctx.db.get(a))["x"] == 1.0  # db.get(id) needs no table
    assert app.run(lambda ctx: ctx.db.get(b))["x"] == 2.0
    assert app.run(lambda ctx: ctx.db.get("b", b))["x"] == 2.0
    fails(app, lambda ctx: ctx.db.get("a", b), "expected ID in table 'a' but got ID in table 'b'")
    fails(app, lambda ctx: ctx.db.patch("a", b, {}), "expected ID in table 'a'")
    ghost = encode_id(777, bytes(16))
    fails(app, lambda ctx: ctx.db.get("a", ghost), "expected ID in table 'a'")


def test_ids_are_unique_and_url_safe(app):
    ids = app.run(lambda ctx: [ctx.db.insert("t", {}) for _ in range(200)])
    assert len(set(ids)) == 200
    assert all(i.isalnum() and i.islower() for i in ids)


def test_v_id_checks_the_table_of_an_argument(app):
    a = app.run(lambda ctx: ctx.db.insert("a", {}))
    b = app.run(lambda ctx: ctx.db.insert("b", {}))

    @app.query(args={"id": v.id("a")})
    def get_a(ctx, id):
        return ctx.db.get(id)

    assert app.query("get_a", {"id": a})["_id"] == a
    with pytest.raises(cn.ValidationError):
        app.query("get_a", {"id": b})
    with pytest.raises(cn.ValidationError):
        app.query("get_a", {"id": "garbage"})
