"""Cron jobs: interval and cron-string schedules (UTC), the named helpers, redefinition in a
notebook, skipped overlapping runs, and bad definitions."""

from __future__ import annotations

import datetime as dt
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import convex_notebook as cn

START = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc).timestamp() * 1000  # a Thursday, 00:00 UTC
HOUR = 3600 * 1000


@pytest.fixture
def app() -> Any:
    backend = cn.Backend(clock=cn.VirtualClock(start_ms=START), echo_logs=False)

    @backend.internal_mutation
    def tick(ctx: Any, label: str) -> None:
        ctx.db.insert("ticks", {"label": label, "at": ctx.now()})

    yield backend
    backend.close()


def ticks(app: cn.Backend, label: str | None = None) -> list[float]:
    docs = app.run(lambda ctx: ctx.db.query("ticks").collect())
    return [(d["at"] - START) / HOUR for d in docs if label is None or d["label"] == label]


def test_interval_runs_when_defined_then_every_period(app: cn.Backend) -> None:
    app.crons.interval("half-hourly", {"minutes": 30}, "tick", {"label": "i"})
    app.advance_time(2 * HOUR)
    assert ticks(app) == [0.0, 0.5, 1.0, 1.5, 2.0]  # each at its own time (ctx.now())
    assert [e.path for e in app.logs].count("tick") == 5


def test_cron_strings_and_named_helpers_are_utc(app: cn.Backend) -> None:
    app.crons.cron("at 16:00 on the 1st", "0 16 1 * *", "tick", {"label": "cron"})
    app.crons.hourly("hourly", {"minuteUTC": 15}, "tick", {"label": "hourly"})
    app.crons.daily("daily", {"hourUTC": 9, "minuteUTC": 30}, "tick", {"label": "daily"})
    app.crons.weekly("weekly", {"dayOfWeek": "Saturday", "hourUTC": 8, "minuteUTC": 0}, "tick", {"label": "weekly"})
    app.crons.monthly("monthly", {"day": 31, "hourUTC": 0, "minuteUTC": 0}, "tick", {"label": "monthly"})
    app.advance_time(59 * 24 * HOUR)  # January and February, to March 1st 00:00
    assert ticks(app, "cron") == [16.0, 31 * 24 + 16.0]
    assert ticks(app, "hourly")[:2] == [0.25, 1.25] and len(ticks(app, "hourly")) == 59 * 24
    assert ticks(app, "daily")[:2] == [9.5, 33.5]
    assert ticks(app, "weekly")[:2] == [2 * 24 + 8.0, 9 * 24 + 8.0]  # Jan 3rd was a Saturday
    assert ticks(app, "monthly") == [30 * 24.0]  # Jan 31st; February has no 31st: skipped


def test_redefining_replaces_and_remove_stops(app: cn.Backend) -> None:
    app.crons.interval("job", {"hours": 1}, "tick", {"label": "old"})
    app.advance_time(HOUR)
    app.crons.interval("job", {"hours": 1}, "tick", {"label": "new"})  # the cell ran again
    app.advance_time(HOUR)
    assert [t for t in ticks(app, "old")] == [0.0, 1.0] and ticks(app, "new") == [1.0, 2.0]
    app.crons.remove("job")
    app.advance_time(5 * HOUR)
    assert len(ticks(app)) == 4


def test_a_cron_set_replaces_the_deployed_crons(app: cn.Backend) -> None:
    app.crons.interval("old", {"hours": 1}, "tick", {"label": "old"})
    crons = cn.CronJobs()
    crons.interval("new", {"hours": 2}, "tick", {"label": "new"})
    app.set_crons(crons)
    app.advance_time(4 * HOUR)
    assert ticks(app, "old") == [] and ticks(app, "new") == [0.0, 2.0, 4.0]
    assert list(app.crons.jobs) == ["new"]


def test_a_failing_run_is_logged_and_the_schedule_goes_on(app: cn.Backend) -> None:
    @app.mutation
    def boom(ctx: Any) -> None:
        raise cn.ConvexError("cron failed")

    app.crons.interval("boom", {"hours": 1}, "boom")
    app.advance_time(2 * HOUR)
    errors = [e for e in app.logs if e.path == "boom"]
    assert len(errors) == 3 and all(not e.ok and "cron failed" in e.error for e in errors)


@pytest.mark.parametrize("define, message", [
    (lambda c: c.interval("x", {"minutes": 0}, "tick"), "positive"),
    (lambda c: c.interval("x", {"days": 1}, "tick"), "seconds"),
    (lambda c: c.cron("x", "every day", "tick"), "5-field"),
    (lambda c: c.cron("x", "61 * * * *", "tick"), "5-field"),
    (lambda c: c.daily("x", {"hourUTC": 24, "minuteUTC": 0}, "tick"), "hourUTC"),
    (lambda c: c.weekly("x", {"dayOfWeek": "Funday", "hourUTC": 1, "minuteUTC": 0}, "tick"), "dayOfWeek"),
    (lambda c: c.monthly("x", {"day": 0, "hourUTC": 1, "minuteUTC": 0}, "tick"), "day"),
    (lambda c: c.interval("", {"minutes": 1}, "tick"), "name"),
    (lambda c: c.interval("x", {"minutes": 1}, "tick", [1]), "dict"),
])
def test_bad_definitions_are_clear_errors(define: Any, message: str) -> None:
    crons = cn.CronJobs()
    with pytest.raises(ValueError, match=message):
        define(crons)
    assert crons.jobs == {}


def test_a_cron_id_is_unique_in_a_set() -> None:
    crons = cn.CronJobs()
    crons.interval("x", {"minutes": 1}, "tick")
    with pytest.raises(ValueError, match="registered twice"):
        crons.interval("x", {"minutes": 2}, "tick")


def test_overlapping_runs_are_skipped_on_the_system_clock() -> None:
    release = threading.Event()
    with cn.Backend(echo_logs=False) as app:
        @app.mutation
        def hit(ctx: Any) -> None:
            ctx.db.insert("hits", {})

        @app.action
        def slow(ctx: Any) -> None:
            ctx.run_mutation("hit")
            release.wait(2)

        app.crons.interval("slow", {"seconds": 0.05}, "slow")
        time.sleep(0.5)  # ten periods while the first run blocks
        release.set()
        deadline = time.monotonic() + 5
        while app.count("hits") < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        hits = app.count("hits")
        app.crons.remove("slow")
    assert hits >= 2 and hits < 10  # the missed periods were skipped, not queued up


def test_a_functions_file_deploys_its_crons(tmp_path: Path) -> None:
    from convex_notebook.server.cli import load_functions

    source = tmp_path / "jobs.py"
    source.write_text(
        "@app.mutation\ndef hit(ctx):\n    ctx.db.insert('hits', {})\n\n"
        "crons = cn.CronJobs()\ncrons.interval('hit', {'minutes': 1}, 'jobs:hit')\n"
    )
    with cn.Backend(clock=cn.VirtualClock(), echo_logs=False) as app:
        load_functions(app, source)
        assert list(app.crons.jobs) == ["hit"]
        app.advance_time(3 * 60 * 1000)
        assert app.count("hits") == 4
