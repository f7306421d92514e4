"""Filter expressions (conformance §3.1, §3.3; core-semantics §2.5): every operator."""

from __future__ import annotations

import math

import pytest

from convex_notebook import MISSING, Int64

from engine_helpers import fails


@pytest.fixture
def docs(app):
    rows = [
        {"name": "f1", "x": 1.0, "y": 2.0},
        {"name": "f-0", "x": -0.0, "y": 0.0},
        {"name": "nan", "x": math.nan, "y": math.nan},
        {"name": "i7", "x": Int64(7), "y": Int64(2)},
        {"name": "im7", "x": Int64(-7), "y": Int64(2)},
        {"name": "s", "x": "str", "y": True},
        {"name": "none", "x": None},
        {"name": "empty"},
        {"name": "nested", "x": {"a": {"b": 5.0}}, "y": [1.0]},
    ]
    app.run(lambda ctx: [ctx.db.insert("t", r) for r in rows])
    return app


def names(app, predicate, table="t"):
    return app.run(lambda ctx: [d["name"] for d in ctx.db.query(table).filter(predicate).collect()])


def test_constant_filters(docs):
    assert len(names(docs, lambda q: True)) == 9
    assert names(docs, lambda q: False) == []


def test_eq_and_neq_are_type_exact(docs):
    assert names(docs, lambda q: q.eq(q.field("x"), 1.0)) == ["f1"]
    assert names(docs, lambda q: q.eq(q.field("x"), 1)) == ["f1"]  # a plain int is a Float64
    assert names(docs, lambda q: q.eq(q.field("x"), Int64(7))) == ["i7"]
    assert names(docs, lambda q: q.eq(q.field("x"), 7.0)) == []
    assert names(docs, lambda q: q.eq(q.field("x"), 0.0)) == []  # -0.0 != 0.0
    assert names(docs, lambda q: q.eq(q.field("x"), -0.0)) == ["f-0"]
    assert names(docs, lambda q: q.eq(q.field("x"), math.nan)) == ["nan"]  # NaN == NaN
    assert names(docs, lambda q: q.eq(q.field("x"), q.field("y"))) == ["nan", "empty"]  # missing == missing
    assert names(docs, lambda q: q.eq(q.field("x"), None)) == ["none"]
    assert names(docs, lambda q: q.eq(q.field("x"), MISSING)) == ["empty"]
    assert names(docs, lambda q: q.eq(q.field("x.a.b"), 5)) == ["nested"]
    assert names(docs, lambda q: q.eq(q.field("x"), {"a": {"b": 5.0}})) == ["nested"]
    assert names(docs, lambda q: q.eq(q.field("y"), [1.0])) == ["nested"]
    assert len(names(docs, lambda q: q.neq(q.field("x"), MISSING))) == 8
    assert "f-0" in names(docs, lambda q: q.neq(q.field("x"), 0.0))


def test_ordering_comparisons_use_the_total_order_across_types(docs):
    # missing < null < Int64 < Float64 < bool < str < bytes < array < object
    assert names(docs, lambda q: q.lt(q.field("x"), None)) == ["empty"]
    assert names(docs, lambda q: q.lte(q.field("x"), None)) == ["none", "empty"]
    assert names(docs, lambda q: q.lt(q.field("x"), -1e308)) == ["i7", "im7", "none", "empty"]
    assert names(docs, lambda q: q.gt(q.field("x"), Int64(0))) == ["f1", "f-0", "nan", "i7", "s", "nested"]
    assert names(docs, lambda q: q.gt(q.field("x"), math.inf)) == ["nan", "s", "nested"]  # NaN sorts last
    assert names(docs, lambda q: q.gte(q.field("x"), 0.0)) == ["f1", "nan", "s", "nested"]
    assert names(docs, lambda q: q.lt(q.field("x"), 0.0)) == ["f-0", "i7", "im7", "none", "empty"]
    assert names(docs, lambda q: q.gt(q.field("x"), "")) == ["s", "nested"]
    # a literal on the left works the same
    assert names(docs, lambda q: q.lt(Int64(0), q.field("x"))) == ["f1", "f-0", "nan", "i7", "s", "nested"]


@pytest.mark.parametrize(
    "expr, name",
    [
        (lambda q: q.eq(q.add(q.field("x"), q.field("y")), 3.0), "f1"),
        (lambda q: q.eq(q.sub(q.field("x"), q.field("y")), -1.0), "f1"),
        (lambda q: q.eq(q.mul(q.field("x"), 4), 4.0), "f1"),
        (lambda q: q.eq(q.div(q.field("x"), q.field("y")), 0.5), "f1"),
        (lambda q: q.eq(q.mod(q.field("y"), 1.5), 0.5), "f1"),
        (lambda q: q.eq(q.neg(q.field("x")), -1.0), "f1"),
        (lambda q: q.eq(q.add(q.field("x"), q.field("y")), Int64(9)), "i7"),
        (lambda q: q.eq(q.sub(q.field("x"), q.field("y")), Int64(5)), "i7"),
        (lambda q: q.eq(q.mul(q.field("x"), q.field("y")), Int64(14)), "i7"),
        (lambda q: q.eq(q.div(q.field("x"), q.field("y")), Int64(3)), "i7"),
        (lambda q: q.eq(q.div(q.field("x"), q.field("y")), Int64(-3)), "im7"),  # truncates toward zero
        (lambda q: q.eq(q.mod(q.field("x"), q.field("y")), Int64(-1)), "im7"),  # sign of the dividend
        (lambda q: q.eq(q.neg(q.field("x")), Int64(7)), "im7"),
    ],
)
def test_arithmetic_on_matching_types(app, expr, name):
    doc = {"f1": {"x": 1.0, "y": 2.0}, "i7": {"x": Int64(7), "y": Int64(2)}, "im7": {"x": Int64(-7), "y": Int64(2)}}
    app.run(lambda ctx: ctx.db.insert("one", doc[name]))
    assert app.run(lambda ctx: len(ctx.db.query("one").filter(expr).collect())) == 1


def test_arithmetic_results_keep_their_type(docs):
    # x + 1 with an Int64 x gives Int64(8): equal to Int64(8), not to 8.0
    only_i7 = lambda q: q.eq(q.field("name"), "i7")  # noqa: E731
    run = lambda pred: docs.run(lambda ctx: len(ctx.db.query("t").filter(only_i7).filter(pred).collect()))  # noqa: E731
    assert run(lambda q: q.eq(q.add(q.field("x"), Int64(1)), Int64(8))) == 1
    assert run(lambda q: q.eq(q.add(q.field("x"), Int64(1)), 8.0)) == 0


@pytest.mark.parametrize(
    "expr",
    [
        lambda q: q.add(q.field("x"), 1.0),  # Int64 + Float64
        lambda q: q.sub(1.0, q.field("y")),
        lambda q: q.mul(q.field("x"), "2"),
        lambda q: q.div(q.field("x"), None),
        lambda q: q.mod(q.field("x"), True),
        lambda q: q.neg(q.field("name")),
    ],
)
def test_mixed_or_non_numeric_arithmetic_fails(docs, expr):
    only_i7 = lambda q: q.eq(q.field("name"), "i7")  # noqa: E731
    err = fails(docs, lambda ctx: ctx.db.query("t").filter(only_i7).filter(lambda q: q.eq(expr(q), 0.0)).collect(), "")
    assert "Int64" in str(err) or "negate" in str(err)


def test_int64_overflow_and_division_by_zero_fail(app):
    app.run(lambda ctx: ctx.db.insert("t", {"big": Int64(2**63 - 1), "zero": Int64(0)}))
    fails(app, lambda ctx: ctx.db.query("t").filter(lambda q: q.eq(q.add(q.field("big"), Int64(1)), Int64(0))).collect(),
          "Int64 overflow")
    fails(app, lambda ctx: ctx.db.query("t").filter(lambda q: q.eq(q.div(Int64(1), q.field("zero")), Int64(0))).collect(),
          "division by zero")
    fails(app, lambda ctx: ctx.db.query("t").filter(lambda q: q.eq(q.mod(Int64(1), q.field("zero")), Int64(0))).collect(),
          "division by zero")


def test_float_division_follows_ieee(app):
    app.run(lambda ctx: ctx.db.insert("t", {"zero": 0.0, "negzero": -0.0, "inf": math.inf}))

    def count(pred):
        return app.run(lambda ctx: len(ctx.db.query("t").filter(pred).collect()))

    assert count(lambda q: q.eq(q.div(1.0, q.field("zero")), math.inf)) == 1
    assert count(lambda q: q.eq(q.div(1.0, q.field("negzero")), -math.inf)) == 1
    assert count(lambda q: q.eq(q.div(q.field("zero"), q.field("zero")), math.nan)) == 1
    assert count(lambda q: q.eq(q.mod(1.0, q.field("zero")), math.nan)) == 1
    assert count(lambda q: q.eq(q.mod(q.field("inf"), 2.0), math.nan)) == 1
    assert count(lambda q: q.eq(q.mod(-5.0, 3.0), -2.0)) == 1
    assert count(lambda q: q.eq(q.neg(q.field("zero")), -0.0)) == 1


def test_logical_operators(docs):
    assert names(docs, lambda q: q.and_(q.gt(q.field("x"), Int64(100)), q.lt(q.field("x"), 0.5))) == ["f-0"]
    assert names(docs, lambda q: q.or_(q.eq(q.field("name"), "s"), q.eq(q.field("name"), "none"))) == ["s", "none"]
    assert len(names(docs, lambda q: q.not_(q.eq(q.field("name"), "s")))) == 8
    assert len(names(docs, lambda q: q.and_())) == 9  # empty and: true
    assert names(docs, lambda q: q.or_()) == []  # empty or: false
    assert names(docs, lambda q: q.and_(True, q.eq(q.field("name"), "s"))) == ["s"]
    assert names(docs, lambda q: q.field("y")) == ["s"]  # a field holding true passes; others don't


@pytest.mark.parametrize(
    "expr",
    [
        lambda q: q.and_(q.field("name"), True),
        lambda q: q.or_(False, 1.0),
        lambda q: q.not_(q.field("x")),
    ],
)
def test_logical_operators_need_booleans(docs, expr):
    fails(docs, lambda ctx: ctx.db.query("t").filter(expr).collect(), "expects boolean operands")


def test_python_boolean_operators_are_refused(docs):
    fails(docs, lambda ctx: ctx.db.query("t").filter(lambda q: q.eq(q.field("x"), 1) and q.eq(q.field("y"), 2)),
          "q.and_")


def test_filter_must_return_an_expression(docs):
    fails(docs, lambda ctx: ctx.db.query("t").filter(lambda q: 1), "A filter must return")
    fails(docs, lambda ctx: ctx.db.query("t").filter("x"), "filter() takes a function")
    fails(docs, lambda ctx: ctx.db.query("t").filter(lambda q: q.field(3)), "field path")


def test_filter_operands_must_be_convex_values(docs):
    fails(docs, lambda ctx: ctx.db.query("t").filter(lambda q: q.eq(q.field("x"), {1, 2})), "")


def test_several_filters_combine_with_and(docs):
    got = docs.run(lambda ctx: [
        d["name"] for d in ctx.db.query("t")
        .filter(lambda q: q.gte(q.field("x"), Int64(-100)))
        .filter(lambda q: q.lt(q.field("x"), 0.0))
        .collect()
    ])
    assert got == ["f-0", "i7", "im7"]
