"""Bad input: every rejected operation raises an error naming what is wrong, and writes nothing.

Each bad operation runs after a valid write in the same mutation, so "nothing written" also
checks that the valid part was rolled back.
"""

from __future__ import annotations

import pytest

import convex_notebook as cn
from convex_notebook import MISSING, Int64, define_schema, define_table, v


class Plain:
    """A Python object that is not a Convex value."""


def nested_arrays(n: int) -> object:
    x: object = 1.0
    for _ in range(n):
        x = [x]
    return x


@pytest.fixture
def seeded(app):
    app.set_schema(define_schema({
        "typed": define_table({"n": v.number()}).index("by_n", ["n"]),
    }, strict_table_name_types=False))
    ids = app.run(lambda ctx: {
        "doc": ctx.db.insert("t", {"a": 1}),
        "typed": ctx.db.insert("typed", {"n": 1}),
    })
    app.ids = ids  # type: ignore[attr-defined]
    return app


def snapshot(app) -> dict:
    def read(ctx):
        return {name: ctx.db.query(name).collect() for name in app.table_names()}

    return {"tables": app.table_names(), "docs": app.run(read)}


def write_then(bad):
    """A mutation body: a valid insert, then the bad operation."""
    def body(ctx):
        ctx.db.insert("t", {"a": 2})
        ctx.db.insert("new_table", {})
        bad(ctx)

    return body


BAD_OPERATIONS = [
    # malformed ids
    ("get garbage id", lambda ctx, ids: ctx.db.get("not-an-id"), "Unable to decode ID"),
    ("patch garbage id", lambda ctx, ids: ctx.db.patch("abc", {"a": 1}), "Unable to decode ID"),
    ("delete garbage id", lambda ctx, ids: ctx.db.delete("abc"), "Unable to decode ID"),
    ("get non-string id", lambda ctx, ids: ctx.db.get(None), "Invalid argument `id` for `db.get`"),
    ("truncated id", lambda ctx, ids: ctx.db.patch(ids["doc"][:-2], {}), "Unable to decode ID"),
    # values that are not Convex values
    ("set", lambda ctx, ids: ctx.db.insert("t", {"a": {1, 2}}), "Python set"),
    ("object", lambda ctx, ids: ctx.db.insert("t", {"a": Plain()}), "Plain"),
    ("int beyond 2^53", lambda ctx, ids: ctx.db.insert("t", {"a": 2**53 + 1}), "Int64"),
    ("negative int beyond 2^53", lambda ctx, ids: ctx.db.insert("t", {"a": -(2**60)}), "±2^53"),
    ("int beyond int64", lambda ctx, ids: ctx.db.insert("t", {"a": 2**64}), "outside the Int64 range"),
    ("complex", lambda ctx, ids: ctx.db.insert("t", {"a": 1j}), "complex"),
    ("lone surrogate", lambda ctx, ids: ctx.db.insert("t", {"a": "\ud800"}), "not valid Unicode"),
    ("missing inside a list", lambda ctx, ids: ctx.db.insert("t", {"a": [MISSING]}), "undefined is not a valid Convex value"),
    ("non-string key", lambda ctx, ids: ctx.db.insert("t", {"a": {1: 2}}), "keys must be strings"),
    ("patch with a set", lambda ctx, ids: ctx.db.patch(ids["doc"], {"a": {1}}), "Python set"),
    ("replace with an object", lambda ctx, ids: ctx.db.replace(ids["doc"], {"a": Plain()}), "Plain"),
    # limits
    ("oversized", lambda ctx, ids: ctx.db.insert("t", {"a": "x" * (1 << 20)}), "Value is too large"),
    ("oversized patch", lambda ctx, ids: ctx.db.patch(ids["doc"], {"b": b"x" * (1 << 20)}), "Value is too large"),
    ("too deep", lambda ctx, ids: ctx.db.insert("t", {"a": nested_arrays(16)}), "Document is too nested"),
    ("too long array", lambda ctx, ids: ctx.db.insert("t", {"a": [0.0] * 8193}), "Array length is too long"),
    ("too many fields", lambda ctx, ids: ctx.db.insert("t", {"a": {f"k{i}": 1 for i in range(1025)}}), "too many fields"),
    # field names
    ("$ top-level field", lambda ctx, ids: ctx.db.insert("t", {"$a": 1}), "$a starts with '$'"),
    ("$ nested field", lambda ctx, ids: ctx.db.insert("t", {"a": {"$b": 1}}), "$b starts with '$'"),
    ("_ top-level field", lambda ctx, ids: ctx.db.insert("t", {"_a": 1}), "'_a' starts with an underscore"),
    ("_ field by patch", lambda ctx, ids: ctx.db.patch(ids["doc"], {"_secret": 1}), "'_secret' starts with an underscore"),
    ("system field in insert", lambda ctx, ids: ctx.db.insert("t", {"_creationTime": 1.0}), "Provided creation time"),
    # tables
    ("system table", lambda ctx, ids: ctx.db.insert("_storage", {}), "System tables (prefixed with `_`) are read-only."),
    ("bad table name", lambda ctx, ids: ctx.db.insert("my table", {}), "Invalid table name"),
    # indexes and ranges
    ("wrong index name", lambda ctx, ids: ctx.db.query("typed").with_index("by_m").collect(), "Index typed.by_m not found."),
    ("bad range chain", lambda ctx, ids: ctx.db.query("typed").with_index("by_n", lambda q: q.eq("m", 1)).collect(),
     "doesn't index this field"),
    ("two lower bounds", lambda ctx, ids: ctx.db.query("typed").with_index("by_n", lambda q: q.gt("n", 1).gt("n", 2)).collect(),
     "Already defined lower bound"),
    ("non-Convex range value", lambda ctx, ids: ctx.db.query("typed").with_index("by_n", lambda q: q.eq("n", {1})).collect(),
     "Python set"),
    ("non-Convex filter value", lambda ctx, ids: ctx.db.query("t").filter(lambda q: q.eq(q.field("a"), Plain())).collect(),
     "Plain"),
    ("mixed arithmetic", lambda ctx, ids: ctx.db.query("t").filter(lambda q: q.eq(q.add(q.field("a"), Int64(1)), 1.0)).collect(),
     "two Int64 or two Float64"),
    # schema
    ("schema violation", lambda ctx, ids: ctx.db.insert("typed", {"n": "one"}), "typed"),
    ("wrong table in a table-scoped call", lambda ctx, ids: ctx.db.patch("t", ids["typed"], {}), "expected ID in table 't'"),
]


@pytest.mark.parametrize("name, bad, phrase", BAD_OPERATIONS, ids=[c[0] for c in BAD_OPERATIONS])
def test_bad_operation_fails_clearly_and_writes_nothing(seeded, name, bad, phrase):
    before = snapshot(seeded)
    with pytest.raises((cn.ConvexFunctionError, cn.InvalidValueError)) as info:
        seeded.run(write_then(lambda ctx: bad(ctx, seeded.ids)))
    assert phrase in str(info.value), f"{phrase!r} not in {str(info.value)!r}"
    assert snapshot(seeded) == before


def test_limits_just_inside_are_accepted(app):
    app.run(lambda ctx: ctx.db.insert("t", {"a": nested_arrays(15)}))
    app.run(lambda ctx: ctx.db.insert("t", {"a": [0.0] * 8192, "b": {f"k{i}": 1 for i in range(1024)}}))
    app.run(lambda ctx: ctx.db.insert("t", {"a": 2**53, "b": -(2**53), "c": Int64(2**63 - 1)}))
    assert app.count("t") == 3


# -- through registered functions -----------------------------------------------------------------
@pytest.fixture
def fns(app):
    @app.mutation(args={"text": v.string(), "n": v.optional(v.int64())})
    def add(ctx, text, n=None):
        return ctx.db.insert("t", {"text": text})

    @app.mutation
    def add_any(ctx, value):
        return ctx.db.insert("t", {"value": value})

    @app.mutation(returns=v.string())
    def returns_wrong(ctx):
        ctx.db.insert("t", {})
        return 3

    @app.mutation
    def returns_set(ctx):
        ctx.db.insert("t", {})
        return {1, 2}

    return app


@pytest.mark.parametrize(
    "path, args, phrase",
    [
        ("add", {"text": 1}, ".text"),
        ("add", {}, "text"),
        ("add", {"text": "x", "extra": True}, "extra"),
        ("add", {"text": "x", "n": 1.5}, ".n"),
        ("add", ["x"], "must be a dict"),
        ("add_any", {"value": {1, 2}}, "Python set"),
        ("add_any", {"value": 2**60}, "Int64"),
    ],
)
def test_argument_validation_fails_before_writing(fns, path, args, phrase):
    with pytest.raises(cn.ValidationError) as info:
        fns.mutation(path, args)
    assert "ArgumentValidationError" in str(info.value) or "Arguments" in str(info.value)
    assert phrase in str(info.value)
    assert fns.count("t") == 0


def test_bad_return_values_roll_the_mutation_back(fns):
    with pytest.raises(cn.ValidationError, match="Return value validation failed"):
        fns.mutation("returns_wrong")
    with pytest.raises(cn.ConvexFunctionError, match="not a Convex value"):
        fns.mutation("returns_set")
    with pytest.raises(cn.ConvexFunctionError, match="set"):
        fns.run(lambda ctx: (ctx.db.insert("t", {}), {1})[1])
    assert fns.count("t") == 0
