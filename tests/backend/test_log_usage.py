"""Every log book entry carries the call's usage, whoever ran it: a cell, the scheduler, a
cron, an HTTP action, or a live query's re-run after another call's commit."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

import convex_notebook as cn

USAGE_KEYS = {"documents_read", "bytes_read", "index_ranges", "documents_written", "bytes_written", "occ_retries"}
START = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc).timestamp() * 1000


@pytest.fixture
def app() -> Any:
    backend = cn.Backend(clock=cn.VirtualClock(start_ms=START), echo_logs=False)

    @backend.mutation
    def note(ctx: Any, text: str) -> str:
        return ctx.db.insert("notes", {"text": text})

    @backend.action
    def relay(ctx: Any, text: str) -> str:
        return ctx.run_mutation("note", {"text": text})

    @backend.query
    def listing(ctx: Any) -> list:
        print("listing")  # a re-run is logged only when it prints or fails
        return [d["text"] for d in ctx.db.query("notes").collect()]

    @backend.http.route(path="/note", method="POST")
    def post_note(ctx: Any, request: cn.HttpRequest) -> str:
        return ctx.run_mutation("note", {"text": request.json()["text"]})

    yield backend
    backend.close()


def last(app: Any, path: str) -> dict[str, int]:
    entry = [e for e in app.logs if e.path == path][-1]
    assert set(entry.usage) == USAGE_KEYS
    return entry.usage


def test_a_scheduled_mutation_and_action_report_their_writes(app: Any) -> None:
    app.run(lambda ctx: ctx.scheduler.run_after(0, "note", {"text": "later"}))
    app.run(lambda ctx: ctx.scheduler.run_after(0, "relay", {"text": "relayed"}))
    app.finish_scheduled_functions()
    assert last(app, "note")["documents_written"] >= 1
    usage = last(app, "relay")
    assert usage["documents_written"] == 1 and usage["bytes_written"] > len("relayed")


def test_a_cron_run_reports_its_writes(app: Any) -> None:
    app.crons.interval("every hour", {"hours": 1}, "relay", {"text": "tick"})
    app.advance_time(1)
    assert last(app, "relay")["documents_written"] == 1


def test_an_http_action_reports_the_mutations_it_ran(app: Any) -> None:
    assert app.fetch("/note", method="POST", json={"text": "over http"}).status == 200
    assert last(app, "POST /note")["documents_written"] == 1


def test_a_live_query_rerun_reports_what_it_read(app: Any) -> None:
    sub = app.subscribe("listing", on_update=lambda value: None)
    try:
        app.mutation("note", {"text": "a"})
        app.mutation("note", {"text": "b"})
        assert last(app, "listing")["documents_read"] == 2
    finally:
        sub.unsubscribe()
