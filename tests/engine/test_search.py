"""Full-text search: tokenizing, last-term prefix, eq filters, BM25 ranking with newest-first
ties, read-your-writes, liveness, pagination, the 1024 cap, and clear errors."""

from __future__ import annotations

from typing import Any

import pytest

import convex_notebook as cn
from convex_notebook import v
from convex_notebook.engine.search import tokenize

from engine_helpers import fails


@pytest.fixture
def app() -> Any:
    backend = cn.Backend(echo_logs=False, schema=cn.define_schema({
        "messages": cn.define_table({"body": v.string(), "channel": v.optional(v.string())})
        .search_index("search_body", search_field="body", filter_fields=["channel"]),
    }))

    @backend.mutation
    def send(ctx: Any, body: str, channel: str | None = None) -> str:
        return ctx.db.insert("messages", {"body": body} if channel is None else {"body": body, "channel": channel})

    @backend.query
    def search(ctx: Any, text: str, channel: Any = None, n: float = 10) -> list[str]:
        def plan(q: Any) -> Any:
            q = q.search("body", text)
            if channel == "<missing>":
                return q.eq("channel", cn.MISSING)
            return q.eq("channel", channel) if channel is not None else q
        return [m["body"] for m in ctx.db.query("messages").with_search_index("search_body", plan).take(int(n))]

    yield backend
    backend.close()


def send_all(app: cn.Backend, *bodies: str, channel: str | None = None) -> None:
    for body in bodies:
        app.mutation("send", {"body": body} if channel is None else {"body": body, "channel": channel})


def test_tokenize_like_convex() -> None:
    assert tokenize("Hello, World! it's 2024-01-02 snake_case") == ["hello", "world", "it", "s", "2024", "01", "02", "snake", "case"]
    assert tokenize("x" * 33 + " ok") == ["ok"]  # terms over 32 characters are dropped


def test_any_term_matches_and_only_the_last_is_a_prefix(app: cn.Backend) -> None:
    send_all(app, "send request now", "say hi to the rabbit", "requests pile up", "nothing here")
    assert sorted(app.query("search", {"text": "r"})) == ["requests pile up", "say hi to the rabbit", "send request now"]
    assert sorted(app.query("search", {"text": "request"})) == ["requests pile up", "send request now"]
    assert sorted(app.query("search", {"text": "requ"})) == ["requests pile up", "send request now"]
    assert app.query("search", {"text": "requ now"}) == ["send request now"]  # "requ" is not last: exact
    assert app.query("search", {"text": "stake"}) == []  # no fuzzy matching
    assert app.query("search", {"text": "   "}) == []


def test_ranking_bm25_then_newest_first(app: cn.Backend) -> None:
    send_all(app, "apple banana cherry date elderberry fig", "apple apple apple", "apple pie")
    assert app.query("search", {"text": "apple"}) == [
        "apple apple apple", "apple pie", "apple banana cherry date elderberry fig"]
    send_all(app, "kiwi one", "kiwi two")  # the same score: the newer first
    assert app.query("search", {"text": "kiwi"}) == ["kiwi two", "kiwi one"]


def test_eq_filters_including_missing(app: cn.Backend) -> None:
    send_all(app, "deploy now", channel="ops")
    send_all(app, "deploy later", channel="dev")
    send_all(app, "deploy never")
    assert app.query("search", {"text": "deploy", "channel": "ops"}) == ["deploy now"]
    assert app.query("search", {"text": "deploy", "channel": "<missing>"}) == ["deploy never"]


def test_read_your_writes_and_live_results(app: cn.Backend) -> None:
    found = app.run(lambda ctx: (
        ctx.db.insert("messages", {"body": "fresh words"}),
        [m["body"] for m in ctx.db.query("messages").with_search_index(
            "search_body", lambda q: q.search("body", "fresh")).collect()],
    )[1])
    assert found == ["fresh words"]  # the mutation's own write
    sub = app.subscribe("search", {"text": "live"})
    assert sub.value == []
    send_all(app, "live update")
    assert sub.value == ["live update"]
    sub.unsubscribe()


def test_post_filters_pagination_and_the_1024_cap(app: cn.Backend) -> None:
    app.run(lambda ctx: [ctx.db.insert("messages", {"body": f"item {i}", "channel": "odd" if i % 2 else "even"})
                         for i in range(1030)])

    def query(ctx: Any) -> Any:
        return ctx.db.query("messages").with_search_index("search_body", lambda q: q.search("body", "item"))

    fails(app, lambda ctx: query(ctx).collect(), "at most 1024 matches")
    # .filter() works on the best 1024 matches (equal scores: the newest, items 6..1029).
    odd = app.run(lambda ctx: query(ctx).filter(lambda q: q.eq(q.field("channel"), "odd")).take(1000))
    assert len(odd) == 512 and all(m["channel"] == "odd" for m in odd)
    first = app.run(lambda ctx: query(ctx).paginate({"numItems": 1000, "cursor": None}))
    assert len(first["page"]) == 1000 and not first["isDone"]
    rest = app.run(lambda ctx: query(ctx).paginate({"numItems": 1000, "cursor": first["continueCursor"]}))
    assert len(rest["page"]) == 24 and rest["isDone"]  # the search considers 1024 results
    assert {m["_id"] for m in first["page"]}.isdisjoint(m["_id"] for m in rest["page"])


@pytest.mark.parametrize("build, phrase", [
    (lambda q: q.search("channel", "x"), "searches 'body'"),
    (lambda q: q.search("body", "x").eq("body", "y"), "not a filter field"),
    (lambda q: q.eq("channel", "x"), "starts with q.search"),
    (lambda q: q.search("body", "x").search("body", "y"), "exactly one q.search"),
    (lambda q: q.search("body", " ".join(f"t{i}" for i in range(17))), "at most 16 terms"),
    (lambda q: q.search("body", 5), "must be a string"),
    (lambda q: None, "must return q.search"),
])
def test_bad_search_filters(app: cn.Backend, build: Any, phrase: str) -> None:
    fails(app, lambda ctx: ctx.db.query("messages").with_search_index("search_body", build).collect(), phrase)


def test_bad_search_queries(app: cn.Backend) -> None:
    search = lambda q: q.search("body", "x")  # noqa: E731
    fails(app, lambda ctx: ctx.db.query("messages").with_search_index("nope", search).collect(), "not found")
    fails(app, lambda ctx: ctx.db.query("messages").with_search_index("search_body", search).order("desc"), "relevance")
    fails(app, lambda ctx: ctx.db.query("messages").order("desc").with_search_index("search_body", search), "must come before")
    fails(app, lambda ctx: ctx.db.query("messages").with_index("by_creation_time").with_search_index("search_body", search),
          "with_search_index")
