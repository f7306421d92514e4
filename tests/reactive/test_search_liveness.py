"""Live searches are precise: a search reads its terms (the last as a prefix) and its first
filter value, so a write whose old and new documents hold none of them neither re-runs a live
search nor conflicts with a mutation that searched; one that holds a term does both."""

from __future__ import annotations

from typing import Any

import pytest

import convex_notebook as cn
from convex_notebook import v
from convex_notebook.engine.database import OccConflict
from convex_notebook.engine.query import Query


@pytest.fixture
def app() -> Any:
    backend = cn.Backend(echo_logs=False, schema=cn.define_schema({
        "messages": cn.define_table({"body": v.string(), "channel": v.optional(v.string())})
        .search_index("search_body", search_field="body", filter_fields=["channel"]),
    }))
    runs: list[str] = []

    @backend.query
    def search(ctx: Any, text: str, channel: str | None = None) -> list[str]:
        runs.append(text)

        def plan(q: Any) -> Any:
            q = q.search("body", text)
            return q.eq("channel", channel) if channel is not None else q
        return [m["body"] for m in ctx.db.query("messages").with_search_index("search_body", plan).take(10)]

    @backend.mutation
    def send(ctx: Any, body: str, channel: str | None = None) -> str:
        return ctx.db.insert("messages", {"body": body} if channel is None else {"body": body, "channel": channel})

    backend.runs = runs  # type: ignore[attr-defined]
    yield backend
    backend.close()


def test_a_write_holding_no_term_does_not_rerun_a_live_search(app: Any) -> None:
    sub = app.subscribe("search", {"text": "rabbit hol"})
    assert sub.value == [] and app.runs == ["rabbit hol"]
    app.mutation("send", {"body": "nothing to see"})
    app.mutation("send", {"body": "a rabbi and a hole"})  # "hole" extends the last term, "hol"
    assert app.runs == ["rabbit hol", "rabbit hol"] and sub.value == ["a rabbi and a hole"]
    app.mutation("send", {"body": "holes everywhere"})  # the last term is a prefix
    assert len(app.runs) == 3 and sub.value == ["holes everywhere", "a rabbi and a hole"]
    doc = app.mutation("send", {"body": "carrots"})
    assert len(app.runs) == 3
    app.run(lambda ctx: ctx.db.patch(doc, {"body": "a rabbit"}))  # the new version holds a term
    assert len(app.runs) == 4 and sub.value[0] == "a rabbit"
    app.run(lambda ctx: ctx.db.patch(doc, {"body": "carrots again"}))  # the old version held one
    assert len(app.runs) == 5 and "a rabbit" not in sub.value
    sub.unsubscribe()


def test_filtered_live_search_watches_its_filter_value(app: Any) -> None:
    sub = app.subscribe("search", {"text": "deploy", "channel": "ops"})
    runs = len(app.runs)
    app.mutation("send", {"body": "deploy now", "channel": "dev"})  # the term, another channel
    assert len(app.runs) == runs and sub.value == []
    app.mutation("send", {"body": "deploy now", "channel": "ops"})
    assert len(app.runs) == runs + 1 and sub.value == ["deploy now"]
    sub.unsubscribe()


def test_a_large_import_reruns_every_live_search_on_the_table(app: Any) -> None:
    from convex_notebook.engine import bulk

    sub = app.subscribe("search", {"text": "zebra"})
    runs = len(app.runs)
    with app.database.write(exclusive=True) as txn:
        bulk.insert_documents(txn, "messages", [{"body": f"row {i}"} for i in range(1_500)] + [{"body": "zebra"}])
    assert len(app.runs) == runs + 1 and sub.value == ["zebra"]
    sub.unsubscribe()


def _search(txn: Any, text: str) -> list[dict]:
    return Query(txn, "messages").with_search_index("search_body", lambda q: q.search("body", text)).collect()


@pytest.mark.parametrize("body, conflicts", [("an unrelated message", False), ("a matching message", True)])
def test_a_mutation_that_searched_conflicts_only_with_matching_writes(app: Any, body: str, conflicts: bool) -> None:
    db = app.database
    app.mutation("send", {"body": "first matching words"})
    scope = db.write()
    txn = scope.__enter__()
    assert len(_search(txn, "matching")) == 1
    txn.insert("messages", {"body": "written after the search"})
    app.mutation("send", {"body": body})  # commits first
    if conflicts:
        with pytest.raises(OccConflict):
            scope.__exit__(None, None, None)
    else:
        scope.__exit__(None, None, None)
        assert txn.commit_ts is not None
