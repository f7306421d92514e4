"""Pagination (conformance §3.3): no look-ahead, positional cursors bound to their query,
one paginate per function, end pinning, byte/row limits."""

from __future__ import annotations

import pytest

import convex_notebook as cn
from convex_notebook import v
from convex_notebook.values.validators import pagination_opts_validator

from engine_helpers import fails


def page(app, opts, table="t", order="asc", flt=None):
    def run(ctx):
        q = ctx.db.query(table).order(order)
        if flt is not None:
            q = q.filter(flt)
        return q.paginate(opts)

    return app.run(run)


def nums(result):
    return [int(d["n"]) for d in result["page"]]


def read_all(app, num_items, **extra):
    pages, cursor = [], None
    while True:
        result = page(app, {"numItems": num_items, "cursor": cursor, **extra})
        pages.append(nums(result))
        cursor = result["continueCursor"]
        if result["isDone"]:
            return pages
        assert len(pages) < 100


def insert(app, *ns):
    app.run(lambda ctx: [ctx.db.insert("t", {"n": n}) for n in ns])


def test_empty_table_and_the_done_cursor(app):
    first = page(app, {"numItems": 1, "cursor": None})
    assert first["page"] == [] and first["isDone"] is True
    assert isinstance(first["continueCursor"], str) and first["continueCursor"]
    done = first["continueCursor"]
    insert(app, 1, 2)
    again = page(app, {"numItems": 1, "cursor": done})
    assert again["page"] == [] and again["isDone"] is True  # the end of the table, even now
    assert isinstance(again["continueCursor"], str)


def test_no_look_ahead(app):
    insert(app, 1, 2)
    p1 = page(app, {"numItems": 1, "cursor": None})
    assert nums(p1) == [1] and p1["isDone"] is False
    p2 = page(app, {"numItems": 1, "cursor": p1["continueCursor"]})
    assert nums(p2) == [2] and p2["isDone"] is False
    p3 = page(app, {"numItems": 1, "cursor": p2["continueCursor"]})
    assert p3["page"] == [] and p3["isDone"] is True


def test_a_page_exactly_filling_num_items_is_not_done(app):
    insert(app, *range(6))
    p1 = page(app, {"numItems": 6, "cursor": None})
    assert nums(p1) == list(range(6)) and p1["isDone"] is False
    p2 = page(app, {"numItems": 6, "cursor": p1["continueCursor"]})
    assert p2 == {"page": [], "isDone": True, "continueCursor": p2["continueCursor"]}
    p = page(app, {"numItems": 7, "cursor": None})
    assert nums(p) == list(range(6)) and p["isDone"] is True


def test_pages_cover_everything_once_in_order(app):
    insert(app, *range(10))
    assert read_all(app, 3) == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]
    assert read_all(app, 5) == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9], []]


def test_descending_pages(app):
    insert(app, *range(5))
    p1 = page(app, {"numItems": 2, "cursor": None}, order="desc")
    p2 = page(app, {"numItems": 2, "cursor": p1["continueCursor"]}, order="desc")
    p3 = page(app, {"numItems": 2, "cursor": p2["continueCursor"]}, order="desc")
    assert [nums(p1), nums(p2), nums(p3)] == [[4, 3], [2, 1], [0]]
    assert p3["isDone"] is True


def test_filtered_pages_are_filled_to_num_items(app):
    insert(app, *range(20))
    odd = lambda q: q.eq(q.mod(q.field("n"), 2.0), 1.0)  # noqa: E731
    pages, cursor = [], None
    while True:
        result = page(app, {"numItems": 4, "cursor": cursor}, flt=odd)
        pages.append(nums(result))
        cursor = result["continueCursor"]
        if result["isDone"]:
            break
    assert pages == [[1, 3, 5, 7], [9, 11, 13, 15], [17, 19]]


def test_cursor_is_positional(app):
    insert(app, 1, 2, 3, 4)
    p1 = page(app, {"numItems": 2, "cursor": None})
    ids = app.run(lambda ctx: [d["_id"] for d in ctx.db.query("t").collect()])
    app.run(lambda ctx: ctx.db.delete(ids[2]))  # the first doc of the next page goes away
    insert(app, 0)  # a new doc at the end
    p2 = page(app, {"numItems": 5, "cursor": p1["continueCursor"]})
    assert nums(p2) == [4, 0]


@pytest.mark.parametrize(
    "other",
    [
        lambda ctx: ctx.db.query("t").order("desc"),
        lambda ctx: ctx.db.query("u"),
        lambda ctx: ctx.db.query("t").filter(lambda q: q.eq(q.field("n"), 1)),
        lambda ctx: ctx.db.query("t").with_index("by_id"),
    ],
)
def test_cursor_is_bound_to_its_query(app, other):
    insert(app, 1, 2, 3)
    app.run(lambda ctx: ctx.db.insert("u", {"n": 1}))
    cursor = page(app, {"numItems": 1, "cursor": None})["continueCursor"]
    fails(app, lambda ctx: other(ctx).paginate({"numItems": 1, "cursor": cursor}), "InvalidCursor")
    # the same query accepts it
    assert nums(page(app, {"numItems": 1, "cursor": cursor})) == [2]


def test_malformed_cursor(app):
    insert(app, 1)
    fails(app, lambda ctx: ctx.db.query("t").paginate({"numItems": 1, "cursor": "garbage!"}), "InvalidCursor")
    with pytest.raises(cn.InvalidCursorError):
        with app.database.read() as txn:
            from convex_notebook.engine import Query

            Query(txn, "t").paginate({"numItems": 1, "cursor": "bm90IGEgY3Vyc29y"})


@pytest.mark.parametrize("bad", [None, -1, "3", True, float("nan")])
def test_num_items_must_be_a_non_negative_number(app, bad):
    fails(app, lambda ctx: ctx.db.query("t").paginate({"numItems": bad, "cursor": None}), "numItems")


def test_one_paginated_query_per_function(app):
    insert(app, 1, 2)

    @app.query
    def two_pages(ctx):
        ctx.db.query("t").paginate({"numItems": 1, "cursor": None})
        return ctx.db.query("t").paginate({"numItems": 1, "cursor": None})

    with pytest.raises(cn.ConvexFunctionError, match="ran multiple paginated queries"):
        app.query("two_pages")
    fails(app, lambda ctx: [ctx.db.query("t").paginate({"numItems": 1, "cursor": None}) for _ in range(2)],
          "This query or mutation function ran multiple paginated queries")


def test_a_subquery_may_paginate_on_its_own(app):
    insert(app, 1, 2)

    @app.query
    def inner(ctx):
        return ctx.db.query("t").paginate({"numItems": 1, "cursor": None})["page"]

    @app.query
    def outer(ctx):
        mine = ctx.db.query("t").paginate({"numItems": 1, "cursor": None})["page"]
        return mine + ctx.run_query("inner")

    assert [d["n"] for d in app.query("outer")] == [1.0, 1.0]


def test_paginate_from_a_registered_query_with_the_validator(app):
    insert(app, *range(5))

    @app.query(args={"paginationOpts": pagination_opts_validator})
    def listing(ctx, paginationOpts):
        return ctx.db.query("t").paginate(paginationOpts)

    r1 = app.query("listing", {"paginationOpts": {"numItems": 3, "cursor": None}})
    r2 = app.query("listing", {"paginationOpts": {"numItems": 3, "cursor": r1["continueCursor"]}})
    assert [nums(r1), r1["isDone"], nums(r2), r2["isDone"]] == [[0, 1, 2], False, [3, 4], True]


def test_maximum_bytes_read_splits_pages(app):
    insert(app, *range(5))
    assert read_all(app, 100, maximumBytesRead=1) == [[0], [1], [2], [3], [4], []]
    assert read_all(app, 100, maximumBytesRead=10_000) == [[0, 1, 2, 3, 4]]
    first = page(app, {"numItems": 100, "cursor": None, "maximumBytesRead": 1})
    assert first["pageStatus"] == "SplitRequired" and isinstance(first["splitCursor"], str)


def test_maximum_rows_read_follows_the_scan(app):
    insert(app, *range(6))
    odd = lambda q: q.eq(q.mod(q.field("n"), 2.0), 1.0)  # noqa: E731
    pages, cursor = [], None
    while True:
        result = page(app, {"numItems": 10, "cursor": cursor, "maximumRowsRead": 2}, flt=odd)
        pages.append(nums(result))
        cursor = result["continueCursor"]
        if result["isDone"]:
            break
    assert [n for p in pages for n in p] == [1, 3, 5]
    assert len(pages) >= 3


def test_end_cursor_pins_the_page_end(app):
    insert(app, 1, 2, 3, 4)
    p1 = page(app, {"numItems": 2, "cursor": None})
    assert nums(p1) == [1, 2]
    ids = app.run(lambda ctx: [d["_id"] for d in ctx.db.query("t").collect()])
    # a doc inside [start, end) appears on a re-run with the end cursor; one after it doesn't
    app.run(lambda ctx: ctx.db.delete(ids[0]))
    insert(app, 5)
    again = page(app, {"numItems": 2, "cursor": None, "endCursor": p1["continueCursor"]})
    assert nums(again) == [2]
    assert again["continueCursor"] == p1["continueCursor"] and again["isDone"] is False
    # a new doc sorted inside the pinned page: desc order, newest first
    d1 = page(app, {"numItems": 2, "cursor": None}, order="desc")
    assert nums(d1) == [5, 4]
    insert(app, 6)
    d1_again = page(app, {"numItems": 2, "cursor": None, "endCursor": d1["continueCursor"]}, order="desc")
    assert nums(d1_again) == [6, 5, 4]


def test_zero_items_reads_nothing_and_is_not_done(app):
    insert(app, 1)
    r = page(app, {"numItems": 0, "cursor": None})
    assert r["page"] == [] and r["isDone"] is False
    nxt = page(app, {"numItems": 1, "cursor": r["continueCursor"]})
    assert nums(nxt) == [1]


def test_pagination_sees_the_transactions_own_writes(app):
    insert(app, 1, 2)

    def work(ctx):
        ctx.db.insert("t", {"n": 3})
        return ctx.db.query("t").paginate({"numItems": 10, "cursor": None})

    assert nums(app.run(work)) == [1, 2, 3]


def test_paginate_with_index_range(app):
    from convex_notebook import define_schema, define_table

    app.set_schema(define_schema({"t": define_table({"n": v.number()}).index("by_n", ["n"])}))
    insert(app, 5, 1, 4, 2, 3, 0)

    def run(cursor):
        return app.run(lambda ctx: ctx.db.query("t").with_index("by_n", lambda q: q.gte("n", 1).lt("n", 5))
                       .paginate({"numItems": 2, "cursor": cursor}))

    p1 = run(None)
    p2 = run(p1["continueCursor"])
    p3 = run(p2["continueCursor"])
    assert [nums(p1), nums(p2), nums(p3), p3["isDone"]] == [[1, 2], [3, 4], [], True]


@pytest.mark.parametrize("order", ["asc", "desc"])
def test_zero_items_then_the_rest_on_an_index_with_missing_fields(app, order):
    from convex_notebook import define_schema, define_table

    app.set_schema(define_schema({"t": define_table({"a": v.optional(v.any())}).index("by_a", ["a"])}))
    app.run(lambda ctx: [ctx.db.insert("t", d) for d in ({}, {"a": None}, {"a": 1})])

    def run(opts):
        return app.run(lambda ctx: ctx.db.query("t").with_index("by_a").order(order).paginate(opts))

    empty = run({"numItems": 0, "cursor": None})
    rest = run({"numItems": 5, "cursor": empty["continueCursor"]})
    expected = ["missing", None, 1.0]
    assert [d.get("a", "missing") for d in rest["page"]] == (expected if order == "asc" else expected[::-1])
    assert rest["isDone"] is True and empty["isDone"] is False


def test_a_pinned_page_that_grew_past_twice_its_size_recommends_a_split(app):
    insert(app, 1, 2, 3)
    first = page(app, {"numItems": 2, "cursor": None}, order="desc")
    assert nums(first) == [3, 2] and "pageStatus" not in first
    insert(app, 4, 5)
    grown = page(app, {"numItems": 2, "cursor": None, "endCursor": first["continueCursor"]}, order="desc")
    assert nums(grown) == [5, 4, 3, 2] and "pageStatus" not in grown  # twice its size: not yet
    insert(app, 6)
    grown = page(app, {"numItems": 2, "cursor": None, "endCursor": first["continueCursor"]}, order="desc")
    assert nums(grown) == [6, 5, 4, 3, 2] and grown["pageStatus"] == "SplitRecommended"
    # The split cursor ends the first half: both halves together are the page.
    head = page(app, {"numItems": 2, "cursor": None, "endCursor": grown["splitCursor"]}, order="desc")
    tail = page(app, {"numItems": 2, "cursor": grown["splitCursor"], "endCursor": first["continueCursor"]}, order="desc")
    assert nums(head) + nums(tail) == [6, 5, 4, 3, 2] and nums(head) == [6, 5]
