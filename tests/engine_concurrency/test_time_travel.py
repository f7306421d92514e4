"""API.md §7: time travel. ``app.query(name, args, at=ts)`` and ``app.df(table, at=ts)`` read the
snapshot at ``ts`` (an int from ``app.latest_ts()``, a datetime, or a timedelta ago); history is
kept for ``cn.Backend(..., history=...)``, survives restarts, and an older ts (or a future one)
is refused with an error; with a ``cn.VirtualClock`` timestamps and the window follow it."""

from __future__ import annotations

import datetime as dt

import pytest

import convex_notebook as cn
from convex_notebook import v
from convex_notebook.engine.history import HistoryError

from mvcc_helpers import datetime_of_ms, refusal, times_named_in

STEP_MS = 1000


def define(app: cn.Backend) -> None:
    @app.query
    def names(ctx):
        return [d["name"] for d in ctx.db.query("people").with_index("by_name").collect()]

    @app.query
    def one(ctx, id):
        doc = ctx.db.get(id)
        return None if doc is None else doc["name"]


def schema() -> cn.SchemaDefinition:
    return cn.define_schema({
        "people": cn.define_table({"name": v.string()}).index("by_name", ["name"]),
        "other": cn.define_table({"x": v.number()}),
    })


@pytest.fixture
def clock():
    return cn.VirtualClock()


@pytest.fixture
def app(clock):
    backend = cn.Backend(schema=schema(), clock=clock, echo_logs=False, query_cache_size=0)
    define(backend)
    yield backend
    backend.close()


def names_in(frame) -> list[str]:
    return sorted(frame["name"].tolist()) if "name" in frame.columns else []


def test_reads_through_an_update_a_delete_and_a_reinsert(app, clock):
    app.run(lambda ctx: ctx.db.insert("other", {"x": 1}))
    ts0 = app.latest_ts()
    clock.advance(STEP_MS)
    ada = app.run(lambda ctx: ctx.db.insert("people", {"name": "ada"}))
    app.run(lambda ctx: ctx.db.insert("people", {"name": "bob"}))
    ts1, ms1 = app.latest_ts(), clock.now_ms()
    clock.advance(STEP_MS)
    app.run(lambda ctx: ctx.db.patch(ada, {"name": "ada lovelace"}))
    ts2, ms2 = app.latest_ts(), clock.now_ms()
    clock.advance(STEP_MS)
    app.run(lambda ctx: ctx.db.delete(ada))
    ts3, ms3 = app.latest_ts(), clock.now_ms()
    clock.advance(STEP_MS)
    again = app.run(lambda ctx: ctx.db.insert("people", {"name": "ada"}))
    ts4 = app.latest_ts()
    clock.advance(STEP_MS)

    assert all(type(t) is int for t in (ts0, ts1, ts2, ts3, ts4))
    assert ts0 < ts1 < ts2 < ts3 < ts4
    # Timestamps follow the virtual clock (ns since the epoch).
    assert abs(ts2 - int(ms2 * 1_000_000)) < 1_000_000_000
    expected = {
        ts0: ([], None, None),
        ts1: (["ada", "bob"], "ada", None),
        ts2: (["ada lovelace", "bob"], "ada lovelace", None),
        ts3: (["bob"], None, None),
        ts4: (["ada", "bob"], None, "ada"),
    }
    for ts, (names, old, new) in expected.items():
        assert app.query("names", {}, at=ts) == names, ts
        assert app.query("one", {"id": ada}, at=ts) == old, ts
        assert app.query("one", {"id": again}, at=ts) == new, ts
        frame = app.df("people", at=ts)
        assert names_in(frame) == sorted(names), ts
        assert len(frame) == len(names)
    # Now is unchanged by all that reading.
    assert app.query("names", {}) == ["ada", "bob"]
    assert names_in(app.df("people")) == ["ada", "bob"]

    # A datetime: the state at that moment (half a step after each commit).
    assert app.query("names", {}, at=datetime_of_ms(ms1 + STEP_MS / 2)) == ["ada", "bob"]
    assert app.query("names", {}, at=datetime_of_ms(ms2 + STEP_MS / 2)) == ["ada lovelace", "bob"]
    assert app.query("names", {}, at=datetime_of_ms(ms3 + STEP_MS / 2)) == ["bob"]
    # A timedelta: that long before now (now = the last commit + one step).
    assert app.query("names", {}, at=dt.timedelta(milliseconds=STEP_MS * 1.5)) == ["bob"]
    assert app.query("names", {}, at=dt.timedelta(milliseconds=STEP_MS * 2.5)) == ["ada lovelace", "bob"]
    assert names_in(app.df("people", at=dt.timedelta(milliseconds=STEP_MS * 3.5))) == ["ada", "bob"]
    assert names_in(app.df("people", at=dt.timedelta(0))) == ["ada", "bob"]


def test_a_read_at_a_ts_between_commits_sees_the_earlier_one(app, clock):
    doc = app.run(lambda ctx: ctx.db.insert("people", {"name": "v1"}))
    first = app.latest_ts()
    clock.advance(STEP_MS)
    app.run(lambda ctx: ctx.db.patch(doc, {"name": "v2"}))
    second = app.latest_ts()
    assert app.query("one", {"id": doc}, at=first + (second - first) // 2) == "v1"
    assert app.query("one", {"id": doc}, at=second) == "v2"


def test_latest_ts_moves_with_each_commit_only(app, clock):
    app.run(lambda ctx: ctx.db.insert("other", {"x": 1}))
    ts = app.latest_ts()
    app.query("names", {})
    clock.advance(STEP_MS)
    assert app.latest_ts() == ts  # neither a query nor the passing of time commits
    app.run(lambda ctx: ctx.db.insert("other", {"x": 2}))
    assert app.latest_ts() > ts
    # Two commits at the same virtual moment still get distinct, increasing timestamps.
    app.run(lambda ctx: ctx.db.insert("other", {"x": 3}))
    t1 = app.latest_ts()
    app.run(lambda ctx: ctx.db.insert("other", {"x": 4}))
    assert app.latest_ts() > t1


def test_history_survives_a_restart(tmp_path):
    path = tmp_path / "app.sqlite3"
    with cn.Backend(path, schema=schema(), echo_logs=False) as app:
        define(app)
        doc = app.run(lambda ctx: ctx.db.insert("people", {"name": "before"}))
        before = app.latest_ts()
        app.run(lambda ctx: ctx.db.patch(doc, {"name": "after"}))
        patched = app.latest_ts()
        app.run(lambda ctx: ctx.db.insert("people", {"name": "zed"}))
    with cn.Backend(path, schema=schema(), echo_logs=False) as app:
        define(app)
        assert app.latest_ts() >= patched
        assert app.query("names", {}, at=before) == ["before"]
        assert app.query("one", {"id": doc}, at=before) == "before"
        assert app.query("names", {}, at=patched) == ["after"]
        assert names_in(app.df("people", at=before)) == ["before"]
        assert app.query("names", {}) == ["after", "zed"]
        # New commits after the restart come after the old ones.
        app.run(lambda ctx: ctx.db.delete(doc))
        assert app.latest_ts() > patched
        assert app.query("names", {}, at=patched) == ["after"]


def test_history_window_follows_the_virtual_clock_and_older_reads_are_refused():
    clock = cn.VirtualClock()
    window = dt.timedelta(minutes=5)
    app = cn.Backend(schema=schema(), clock=clock, history=window, echo_logs=False, query_cache_size=0)
    define(app)
    try:
        doc = app.run(lambda ctx: ctx.db.insert("people", {"name": "old"}))
        old = app.latest_ts()
        clock.advance(3 * 60_000)
        app.run(lambda ctx: ctx.db.patch(doc, {"name": "middle"}))
        middle = app.latest_ts()
        assert app.query("one", {"id": doc}, at=old) == "old"  # 3 minutes back: inside the window
        clock.advance(4 * 60_000)
        app.run(lambda ctx: ctx.db.insert("other", {"x": 1}))  # history moves on
        now_ns = int(clock.now_ms() * 1_000_000)

        assert app.query("one", {"id": doc}, at=middle) == "middle"  # 4 minutes back
        error = refusal(lambda: app.query("one", {"id": doc}, at=old))  # 7 minutes back
        named = times_named_in(str(error))
        assert any(old < t <= now_ns for t in named), f"the error names no readable time: {error}"
        refusal(lambda: app.query("names", {}, at=dt.timedelta(minutes=6)))
        refusal(lambda: app.df("people", at=old))
        # The oldest readable time it names is readable.
        oldest = min(t for t in named if old < t <= now_ns)
        assert app.query("one", {"id": doc}, at=oldest) in ("old", "middle")
    finally:
        app.close()


def test_a_timestamp_in_the_future_is_refused(app, clock):
    app.run(lambda ctx: ctx.db.insert("people", {"name": "x"}))
    ahead = int(clock.now_ms() * 1_000_000) + 60 * 1_000_000_000
    refusal(lambda: app.query("names", {}, at=ahead))
    refusal(lambda: app.query("names", {}, at=datetime_of_ms(clock.now_ms() + 60_000)))
    refusal(lambda: app.df("people", at=ahead))
    refusal(lambda: app.query("names", {}, at=app.latest_ts() + 10**12))


def test_default_history_is_an_hour():
    clock = cn.VirtualClock()
    app = cn.Backend(schema=schema(), clock=clock, echo_logs=False)
    define(app)
    try:
        app.run(lambda ctx: ctx.db.insert("people", {"name": "early"}))
        early = app.latest_ts()
        clock.advance(50 * 60_000)
        app.run(lambda ctx: ctx.db.insert("people", {"name": "later"}))
        assert app.query("names", {}, at=early) == ["early"]  # 50 minutes back
        clock.advance(20 * 60_000)
        app.run(lambda ctx: ctx.db.insert("other", {"x": 1}))
        refusal(lambda: app.query("names", {}, at=early))  # 70 minutes back
    finally:
        app.close()


def test_a_numpy_integer_timestamp_reads_like_an_int(app):
    """A timestamp taken from a DataFrame cell is a numpy.int64: it is a timestamp too."""
    np = pytest.importorskip("numpy")
    app.run(lambda ctx: ctx.db.insert("people", {"name": "ada"}))
    ts = app.latest_ts()
    app.run(lambda ctx: ctx.db.insert("people", {"name": "bob"}))
    assert len(app.df("people", at=np.int64(ts))) == len(app.df("people", at=ts)) == 1
    with pytest.raises(HistoryError, match="got bool"):
        app.df("people", at=np.bool_(True))
