"""Indexes (conformance §3.1, §3.3): ranges, their errors, built-in indexes, cross-type order."""

from __future__ import annotations

import math

import pytest

import convex_notebook as cn
from convex_notebook import MISSING, Int64, define_schema, define_table, v

from engine_helpers import fails


def q_index(app, table, index, rng=None, order="asc"):
    return app.run(lambda ctx: ctx.db.query(table).with_index(index, rng).order(order).collect())


@pytest.fixture
def ab(app):
    """Conformance's test_index_ranges table: for a in 1..5, b missing, b null, b = 1..5."""
    app.set_schema(define_schema({
        "myTable": define_table({"a": v.any(), "b": v.optional(v.any())}).index("by_a_b", ["a", "b"]),
    }))

    def fill(ctx):
        for a in range(1, 6):
            ctx.db.insert("myTable", {"a": a})
            ctx.db.insert("myTable", {"a": a, "b": None})
            for b in range(1, 6):
                ctx.db.insert("myTable", {"a": a, "b": b})

    app.run(fill)
    return app


def count(app, rng=None, flt=None):
    def run(ctx):
        query = ctx.db.query("myTable").with_index("by_a_b", rng)
        if flt is not None:
            query = query.filter(flt)
        return len(query.collect())

    return app.run(run)


@pytest.mark.parametrize(
    "rng, expected",
    [
        (None, 35),
        (lambda q: q.eq("a", 1), 7),
        (lambda q: q.eq("a", 1).eq("b", 2), 1),
        (lambda q: q.eq("a", 1).eq("b", None), 1),
        (lambda q: q.eq("a", 1).eq("b", MISSING), 1),
        (lambda q: q.gt("a", 2).lt("a", 4), 7),
        (lambda q: q.gte("a", 2).lte("a", 4), 21),
        (lambda q: q.eq("a", 1).gt("b", 2).lt("b", 4), 1),
        (lambda q: q.eq("a", 1).gte("b", 2).lte("b", 4), 3),
        (lambda q: q.gt("a", MISSING), 35),
        (lambda q: q.eq("a", 1).gt("b", MISSING), 6),
        (lambda q: q.eq("a", 1).gte("b", None), 6),
        (lambda q: q.eq("a", 1).gt("b", None), 5),
        # JS-order tolerance: the runtime reorders the chain into index order.
        (lambda q: q.eq("b", 2).eq("a", 1), 1),
        (lambda q: q.gte("b", 2).eq("a", 1).lte("b", 4), 3),
        (lambda q: q.lt("a", 3).gt("a", 1), 7),
        # a different type than the stored ones: nothing is equal to it
        (lambda q: q.eq("a", Int64(1)), 0),
        (lambda q: q.eq("a", "1"), 0),
    ],
)
def test_index_ranges(ab, rng, expected):
    assert count(ab, rng) == expected


def test_filters_agree_with_index_ranges(ab):
    assert count(ab, flt=lambda q: q.and_(q.eq(q.field("a"), 1), q.eq(q.field("b"), None))) == 1
    assert count(ab, flt=lambda q: q.and_(q.eq(q.field("a"), 1), q.eq(q.field("b"), MISSING))) == 1


def test_range_results_come_in_index_order(ab):
    docs = q_index(ab, "myTable", "by_a_b", lambda q: q.eq("a", 2))
    assert [d.get("b", "missing") for d in docs] == ["missing", None, 1.0, 2.0, 3.0, 4.0, 5.0]
    docs = q_index(ab, "myTable", "by_a_b", lambda q: q.eq("a", 2), order="desc")
    assert [d.get("b", "missing") for d in docs] == [5.0, 4.0, 3.0, 2.0, 1.0, None, "missing"]
    everything = q_index(ab, "myTable", "by_a_b")
    assert [d["a"] for d in everything] == sorted(d["a"] for d in everything)


@pytest.mark.parametrize(
    "rng, phrase",
    [
        (lambda q: q.eq("b", 1), "didn't use the index fields in order"),
        (lambda q: q.gt("b", 1), "didn't use the index fields in order"),
        (lambda q: q.eq("a", 1).gt("_creationTime", 0), "didn't use the index fields in order"),
        (lambda q: q.eq("c", 1), "doesn't index this field"),
        (lambda q: q.lt("c", 1), "doesn't index this field"),
        (lambda q: q.gt("a", 2).gte("a", 1), "Already defined lower bound"),
        (lambda q: q.lt("a", 2).lte("a", 1), "Already defined upper bound"),
        (lambda q: q.eq("a", 2).eq("a", 1), "Already defined equality bound"),
        (lambda q: q.eq("a", 2).gt("a", 1), "Already defined inequality bound"),
        (lambda q: q.gt("a", 1).eq("a", 2), "Already defined inequality bound"),
        (lambda q: q.gt("a", 2).lt("b", 1), "can only be applied to a single index field"),
    ],
)
def test_index_range_errors(ab, rng, phrase):
    fails(ab, lambda ctx: ctx.db.query("myTable").with_index("by_a_b", rng).collect(), phrase)


def test_unknown_index(app):
    fails(app, lambda ctx: ctx.db.query("myTable").with_index("by_a_b").collect(), "Index myTable.by_a_b not found.")
    app.run(lambda ctx: ctx.db.insert("myTable", {}))
    fails(app, lambda ctx: ctx.db.query("myTable").with_index("by_a_b").collect(), "Index myTable.by_a_b not found.")


def test_range_function_must_return_the_builder(ab):
    fails(ab, lambda ctx: ctx.db.query("myTable").with_index("by_a_b", lambda q: 1).collect(), "must return the q")


def test_one_source_and_it_comes_first(ab):
    fails(ab, lambda ctx: ctx.db.query("myTable").with_index("by_a_b").full_table_scan(), "only one index")
    fails(ab, lambda ctx: ctx.db.query("myTable").order("desc").with_index("by_a_b"), "must come before")


def test_creation_time_is_appended_to_user_indexes(app):
    app.set_schema(define_schema({"m": define_table({"ch": v.string(), "i": v.number()}).index("by_ch", ["ch"])}))
    times = []
    for i in range(4):
        doc_id = app.run(lambda ctx, i=i: ctx.db.insert("m", {"ch": "x", "i": i}))
        times.append(app.run(lambda ctx: ctx.db.get(doc_id))["_creationTime"])
        app.advance_time(10)
    app.run(lambda ctx: ctx.db.insert("m", {"ch": "y", "i": 99}))
    got = q_index(app, "m", "by_ch", lambda q: q.eq("ch", "x").gt("_creationTime", times[0]).lte("_creationTime", times[2]))
    assert [d["i"] for d in got] == [1.0, 2.0]
    got = q_index(app, "m", "by_ch", lambda q: q.eq("ch", "x"), order="desc")
    assert [d["i"] for d in got] == [3.0, 2.0, 1.0, 0.0]  # ties broken by _creationTime


def test_by_creation_time_and_by_id(app):
    ids = []
    for i in range(5):
        ids.append(app.run(lambda ctx, i=i: ctx.db.insert("t", {"i": i})))
        app.advance_time(1)
    docs = q_index(app, "t", "by_creation_time")
    assert [d["_id"] for d in docs] == ids
    assert [d["_id"] for d in app.run(lambda ctx: ctx.db.query("t").full_table_scan().collect())] == ids
    assert [d["_id"] for d in q_index(app, "t", "by_creation_time", order="desc")] == ids[::-1]
    t2 = docs[2]["_creationTime"]
    assert [d["i"] for d in q_index(app, "t", "by_creation_time", lambda q: q.gte("_creationTime", t2))] == [2.0, 3.0, 4.0]
    assert [d["i"] for d in q_index(app, "t", "by_id", lambda q: q.eq("_id", ids[3]))] == [3.0]
    assert sorted(d["_id"] for d in q_index(app, "t", "by_id")) == sorted(ids)
    by_id = [d["_id"] for d in q_index(app, "t", "by_id")]
    assert [d["_id"] for d in q_index(app, "t", "by_id", order="desc")] == by_id[::-1]
    fails(app, lambda ctx: ctx.db.query("t").with_index("by_creation_time", lambda q: q.eq("i", 1)).collect(),
          "doesn't index this field")


def test_nested_field_index(app):
    app.set_schema(define_schema({
        "p": define_table({"properties": v.object({"name": v.string()})}).index("by_name", ["properties.name"]),
    }))
    for name in ["c", "a", "b"]:
        app.run(lambda ctx, name=name: ctx.db.insert("p", {"properties": {"name": name}}))
    assert [d["properties"]["name"] for d in q_index(app, "p", "by_name")] == ["a", "b", "c"]
    assert len(q_index(app, "p", "by_name", lambda q: q.eq("properties.name", "b"))) == 1


ORDERED = [
    MISSING,
    None,
    Int64(-(2**63)), Int64(-1), Int64(0), Int64(100), Int64(2**63 - 1),
    -math.inf, -1e300, -1.0, -0.0, 0.0, 1.0, 1e300, math.inf, math.nan,
    False, True,
    "", "A", "a", "ab", "é", "\U0001f600",
    b"", b"\x00", b"\x00\x00", b"\x01", b"\xff",
    [], [None], [Int64(1)], [1.0], [1.0, 2.0], [2.0],
    {}, {"a": 1.0}, {"a": 2.0}, {"b": 0.0},
]


def test_cross_type_order_in_an_index(app):
    app.set_schema(define_schema({"x": define_table({"v": v.optional(v.any()), "k": v.number()}).index("by_v", ["v"])}))
    # insert in a scrambled order so that creation order can't explain the result
    scrambled = ORDERED[::2][::-1] + ORDERED[1::2]

    def fill(ctx):
        for value in scrambled:
            k = next(i for i, x in enumerate(ORDERED) if x is value)
            ctx.db.insert("x", {"v": value, "k": k})  # v: MISSING is dropped

    app.run(fill)
    got = [d["k"] for d in q_index(app, "x", "by_v")]
    assert got == [float(i) for i in range(len(ORDERED))]
    got_desc = [d["k"] for d in q_index(app, "x", "by_v", order="desc")]
    assert got_desc == got[::-1]


def test_int64_and_float64_are_different_keys(app):
    app.set_schema(define_schema({"x": define_table({"v": v.any()}).index("by_v", ["v"])}))
    app.run(lambda ctx: [ctx.db.insert("x", {"v": value}) for value in (1.0, Int64(1), 1, Int64(1000), 0.5)])
    eq_int = q_index(app, "x", "by_v", lambda q: q.eq("v", Int64(1)))
    assert [type(d["v"]) for d in eq_int] == [Int64]
    assert len(q_index(app, "x", "by_v", lambda q: q.eq("v", 1.0))) == 2  # 1.0 and the plain int 1
    assert [d["v"] for d in q_index(app, "x", "by_v", lambda q: q.lt("v", 0.0))] == [Int64(1), Int64(1000)]
    assert [d["v"] for d in q_index(app, "x", "by_v", lambda q: q.gte("v", Int64(5)))] == [Int64(1000), 0.5, 1.0, 1.0]


def test_negative_zero_and_nan_in_index_ranges(app):
    app.set_schema(define_schema({"x": define_table({"v": v.float64()}).index("by_v", ["v"])}))
    app.run(lambda ctx: [ctx.db.insert("x", {"v": value}) for value in (0.0, -0.0, math.nan, math.inf, -1.0)])
    zero = q_index(app, "x", "by_v", lambda q: q.eq("v", 0.0))
    assert [math.copysign(1, d["v"]) for d in zero] == [1.0]
    negzero = q_index(app, "x", "by_v", lambda q: q.eq("v", -0.0))
    assert [math.copysign(1, d["v"]) for d in negzero] == [-1.0]
    nan = q_index(app, "x", "by_v", lambda q: q.eq("v", math.nan))
    assert len(nan) == 1 and math.isnan(nan[0]["v"])
    above_inf = q_index(app, "x", "by_v", lambda q: q.gt("v", math.inf))
    assert len(above_inf) == 1 and math.isnan(above_inf[0]["v"])
    below_zero = q_index(app, "x", "by_v", lambda q: q.lt("v", 0.0))
    assert [d["v"] for d in below_zero][0] == -1.0 and len(below_zero) == 2


def test_index_sees_the_transactions_own_writes(app):
    app.set_schema(define_schema({"x": define_table({"v": v.number()}).index("by_v", ["v"])}))
    first = app.run(lambda ctx: ctx.db.insert("x", {"v": 5}))

    def work(ctx):
        ctx.db.insert("x", {"v": 1})
        ctx.db.patch(first, {"v": 10})
        return [d["v"] for d in ctx.db.query("x").with_index("by_v", lambda q: q.lt("v", 7)).collect()]

    assert app.run(work) == [1.0]
    assert [d["v"] for d in q_index(app, "x", "by_v")] == [1.0, 10.0]


def test_index_follows_patch_replace_and_delete(app):
    app.set_schema(define_schema({"x": define_table({"v": v.optional(v.number())}).index("by_v", ["v"])}))
    a = app.run(lambda ctx: ctx.db.insert("x", {"v": 1}))
    b = app.run(lambda ctx: ctx.db.insert("x", {"v": 2}))
    app.run(lambda ctx: ctx.db.patch(a, {"v": 3}))
    assert [d["_id"] for d in q_index(app, "x", "by_v")] == [b, a]
    app.run(lambda ctx: ctx.db.replace(b, {}))
    assert [d["_id"] for d in q_index(app, "x", "by_v", lambda q: q.eq("v", MISSING))] == [b]
    assert q_index(app, "x", "by_v", lambda q: q.eq("v", 2)) == []
    app.run(lambda ctx: ctx.db.delete(a))
    assert [d["_id"] for d in q_index(app, "x", "by_v")] == [b]
    entries = app.database.store.entry_keys(app.database.table("x").indexes["by_v"].index_id)
    assert len(entries) == 1


@pytest.mark.parametrize(
    "target",
    ["a", "ab", "a\x00", "a\x00b", b"a", b"a\x00", b"ab", [1.0], [1.0, 2.0], [[1.0]], {"x": 1.0}, {"x": 1.0, "y": 2.0}, {"xy": 1.0}],
)
def test_equality_is_exact_not_a_prefix_match(app, target):
    values = ["a", "ab", "a\x00", "a\x00b", b"a", b"a\x00", b"ab", [1.0], [1.0, 2.0], [[1.0]],
              {"x": 1.0}, {"x": 1.0, "y": 2.0}, {"xy": 1.0}]
    app.set_schema(define_schema({"x": define_table({"v": v.any(), "w": v.number()}).index("by_v_w", ["v", "w"])}))
    app.run(lambda ctx: [ctx.db.insert("x", {"v": value, "w": 0}) for value in values])
    for rng in (lambda q: q.eq("v", target), lambda q: q.eq("v", target).eq("w", 0),
                lambda q: q.gte("v", target).lte("v", target)):
        assert [d["v"] for d in q_index(app, "x", "by_v_w", rng)] == [target]
