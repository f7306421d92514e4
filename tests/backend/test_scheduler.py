"""Scheduled functions: ctx.scheduler.run_after / run_at / cancel, the _scheduled_functions
system table, exactly-once mutations, at-most-once actions, virtual and system clocks, restarts."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

import pytest

import convex_notebook as cn


def jobs(app: cn.Backend) -> list[tuple[str, str]]:
    docs = app.run(lambda ctx: ctx.db.system.query("_scheduled_functions").collect())
    return [(j["name"], j["state"]["kind"]) for j in docs]


def wait_until(predicate: Any, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


@pytest.fixture
def app() -> Any:
    backend = cn.Backend(clock=cn.VirtualClock(), echo_logs=False)

    @backend.internal_mutation
    def record(ctx: Any, n: float) -> None:
        print("record", n)
        ctx.db.insert("log", {"n": n})

    @backend.mutation
    def chain(ctx: Any, n: float) -> None:
        ctx.db.insert("log", {"n": n})
        if n < 3:
            ctx.scheduler.run_after(1000, "chain", {"n": n + 1})

    @backend.mutation
    def fails(ctx: Any) -> None:
        ctx.db.insert("log", {"n": -1.0})
        raise cn.ConvexError("no")

    @backend.action
    def act(ctx: Any, n: float) -> float:
        ctx.run_mutation("record", {"n": n})
        return n

    @backend.action
    def act_fails(ctx: Any) -> None:
        raise RuntimeError("action broke")

    yield backend
    backend.close()


def logged(app: cn.Backend) -> list[float]:
    return sorted(d["n"] for d in app.run(lambda ctx: ctx.db.query("log").collect()))


def test_run_after_runs_when_the_virtual_clock_gets_there(app: cn.Backend) -> None:
    job = app.run(lambda ctx: ctx.scheduler.run_after(500, "record", {"n": 1}))
    doc = app.run(lambda ctx: ctx.db.system.get(job))
    assert doc["name"] == "record" and doc["args"] == [{"n": 1.0}] and doc["state"] == {"kind": "pending"}
    assert doc["scheduledTime"] == app.clock.now_ms() + 500
    app.advance_time(499)
    assert logged(app) == []
    app.advance_time(1)
    assert logged(app) == [1.0]
    done = app.run(lambda ctx: ctx.db.system.get(job))
    assert done["state"] == {"kind": "success"} and done["completedTime"] == app.clock.now_ms()
    entry = next(e for e in app.logs if e.path == "record")
    assert entry.kind == "mutation" and entry.ok and entry.lines == ["[LOG] record 1.0"]


def test_finish_runs_chains_in_time_order(app: cn.Backend) -> None:
    start = app.clock.now_ms()
    app.mutation("chain", {"n": 0})
    assert app.finish_scheduled_functions() == 3
    assert logged(app) == [0.0, 1.0, 2.0, 3.0]
    assert app.clock.now_ms() == start + 3000  # moved to each job's time, no further
    assert jobs(app) == [("chain", "success")] * 3


def test_scheduling_is_part_of_the_mutations_transaction(app: cn.Backend) -> None:
    @app.mutation
    def schedule_then_fail(ctx: Any) -> None:
        ctx.scheduler.run_after(0, "record", {"n": 5})
        raise cn.ConvexError("rolled back")

    with pytest.raises(cn.ConvexError):
        app.mutation("schedule_then_fail")
    assert jobs(app) == [] and app.finish_scheduled_functions() == 0
    # The first schedule made the system table: the rollback takes it out of the catalog too.
    assert app.database.table("_scheduled_functions") is None
    app.run(lambda ctx: ctx.scheduler.run_after(0, "record", {"n": 2}))
    app.advance_time(1)
    assert logged(app) == [2.0]


def test_a_failing_mutation_job_records_the_error_and_writes_nothing(app: cn.Backend) -> None:
    app.run(lambda ctx: ctx.scheduler.run_after(0, "fails"))
    app.finish_scheduled_functions()
    state = app.run(lambda ctx: ctx.db.system.query("_scheduled_functions").first())["state"]
    assert state["kind"] == "failed" and "no" in state["error"]
    assert logged(app) == []


def test_actions_run_at_most_once_and_record_their_outcome(app: cn.Backend) -> None:
    app.run(lambda ctx: ctx.scheduler.run_after(10, "act", {"n": 7}))
    app.run(lambda ctx: ctx.scheduler.run_after(20, "act_fails"))
    assert app.finish_scheduled_functions() == 2
    assert logged(app) == [7.0]
    assert jobs(app) == [("act", "success"), ("act_fails", "failed")]
    # An action schedules through its own small transaction.
    @app.action
    def later(ctx: Any) -> str:
        return ctx.scheduler.run_after(5, "record", {"n": 8})

    job = app.action("later")
    assert app.run(lambda ctx: ctx.db.system.get(job))["state"]["kind"] == "pending"
    app.finish_scheduled_functions()
    assert logged(app) == [7.0, 8.0]


def test_run_at_and_cancel(app: cn.Backend) -> None:
    at = app.clock.now_ms() + 60_000
    job = app.run(lambda ctx: ctx.scheduler.run_at(at, "record", {"n": 1}))
    when = dt.datetime.fromtimestamp((at + 1000) / 1000, tz=dt.timezone.utc)
    other = app.run(lambda ctx: ctx.scheduler.run_at(when, "record", {"n": 2}))
    app.run(lambda ctx: ctx.scheduler.cancel(job))
    assert app.finish_scheduled_functions() == 1
    assert logged(app) == [2.0]
    assert app.run(lambda ctx: ctx.db.system.get(job))["state"]["kind"] == "canceled"
    app.run(lambda ctx: ctx.scheduler.cancel(other))  # finished: nothing to cancel
    assert app.run(lambda ctx: ctx.db.system.get(other))["state"]["kind"] == "success"


@pytest.mark.parametrize("body, message", [
    (lambda ctx: ctx.scheduler.run_after(0, "nope:missing"), "Could not find"),
    (lambda ctx: ctx.scheduler.run_after("soon", "record", {"n": 1}), "delay in ms"),
    (lambda ctx: ctx.scheduler.run_at(dt.datetime(2030, 1, 1), "record", {"n": 1}), "timezone-aware"),
    (lambda ctx: ctx.scheduler.run_after(0, "record", [1]), "must be a dict"),
    (lambda ctx: ctx.scheduler.run_after(0, "record", {"n": {1, 2}}), "set"),
    (lambda ctx: ctx.scheduler.cancel("not an id"), "id of a scheduled function"),
])
def test_bad_scheduling_is_a_clear_error_and_schedules_nothing(app: cn.Backend, body: Any, message: str) -> None:
    @app.query
    def q(ctx: Any) -> None:
        return None

    with pytest.raises(Exception, match=message):
        app.run(body)
    with pytest.raises(Exception, match="query"):
        app.run(lambda ctx: ctx.scheduler.run_after(0, "q"))
    assert jobs(app) == []


def test_system_tables_are_read_only_and_apart(app: cn.Backend) -> None:
    job = app.run(lambda ctx: ctx.scheduler.run_after(0, "record", {"n": 1}))
    assert app.table_names() == []  # the system table is not a user table
    for body in (lambda ctx: ctx.db.get(job), lambda ctx: ctx.db.patch(job, {"x": 1}),
                 lambda ctx: ctx.db.delete(job), lambda ctx: ctx.db.query("_scheduled_functions").collect(),
                 lambda ctx: ctx.db.insert("_scheduled_functions", {})):
        with pytest.raises(cn.ConvexFunctionError, match="(?i)system"):
            app.run(body)
    with pytest.raises(cn.ConvexFunctionError, match="not a system table"):
        app.run(lambda ctx: ctx.db.system.query("log").collect())
    assert jobs(app) == [("record", "pending")]


def test_a_subscription_to_the_system_table_follows_the_jobs(app: cn.Backend) -> None:
    @app.query
    def states(ctx: Any) -> list[str]:
        return [j["state"]["kind"] for j in ctx.db.system.query("_scheduled_functions").collect()]

    sub = app.subscribe("states")
    app.run(lambda ctx: ctx.scheduler.run_after(0, "record", {"n": 1}))
    assert sub.value == ["pending"]
    app.finish_scheduled_functions()
    assert sub.value == ["success"]
    sub.unsubscribe()


def test_the_system_clock_runs_jobs_on_a_thread() -> None:
    with cn.Backend(echo_logs=False) as app:
        @app.mutation
        def hit(ctx: Any) -> None:
            ctx.db.insert("hits", {})

        @app.action
        def hit_twice(ctx: Any) -> None:
            ctx.run_mutation("hit")
            ctx.run_mutation("hit")

        app.run(lambda ctx: ctx.scheduler.run_after(0, "hit"))
        app.run(lambda ctx: ctx.scheduler.run_after(30, "hit_twice"))
        assert wait_until(lambda: app.count("hits") == 3)
        assert wait_until(lambda: jobs(app) == [("hit", "success"), ("hit_twice", "success")])


def test_jobs_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "app.sqlite3"
    source = "@app.mutation\ndef hit(ctx):\n    ctx.db.insert('hits', {})\n"

    def open_app() -> cn.Backend:
        app = cn.Backend(path, echo_logs=False)
        exec(source, {"app": app})
        return app

    app = open_app()
    app.run(lambda ctx: ctx.scheduler.run_after(300, "hit"))
    app.close()  # before it was due
    app = open_app()
    try:
        assert wait_until(lambda: app.count("hits") == 1)
        assert jobs(app) == [("hit", "success")]
    finally:
        app.close()


def test_an_action_in_progress_when_the_process_stopped_fails_on_restart(tmp_path: Path) -> None:
    path = tmp_path / "app.sqlite3"
    app = cn.Backend(path, clock=cn.VirtualClock(), echo_logs=False)

    @app.action
    def slow(ctx: Any) -> None:
        return None

    job = app.run(lambda ctx: ctx.scheduler.run_after(0, "slow"))
    # The claim an interrupted run leaves behind:
    with app.database.write() as txn:
        txn.patch(job, {"state": {"kind": "inProgress"}})
    app.close()
    app = cn.Backend(path, clock=cn.VirtualClock(), echo_logs=False)
    try:
        state = app.run(lambda ctx: ctx.db.system.get(job))["state"]
        assert state["kind"] == "failed" and "process stopped" in state["error"]
    finally:
        app.close()


def test_canceling_a_running_action_cancels_what_it_schedules_next(app: cn.Backend) -> None:
    jobs_seen: dict[str, str] = {}

    @app.action
    def parent(ctx: Any) -> None:
        jobs_seen["before"] = ctx.scheduler.run_after(0, "record", {"n": 1})
        me = ctx.run_query("my_job")
        ctx.scheduler.cancel(me)  # as the dashboard would, while it runs
        jobs_seen["after"] = ctx.scheduler.run_after(0, "record", {"n": 2})

    @app.query
    def my_job(ctx: Any) -> str:
        return next(j["_id"] for j in ctx.db.system.query("_scheduled_functions").collect() if j["name"] == "parent")

    job = app.run(lambda ctx: ctx.scheduler.run_after(0, "parent"))
    app.finish_scheduled_functions()
    assert logged(app) == [1.0]  # scheduled before the cancel: runs; after: never
    get = lambda i: app.run(lambda ctx: ctx.db.system.get("_scheduled_functions", i))["state"]["kind"]  # noqa: E731
    assert (get(job), get(jobs_seen["before"]), get(jobs_seen["after"])) == ("canceled", "success", "canceled")


def test_finished_jobs_are_deleted_after_seven_days(app: cn.Backend) -> None:
    app.run(lambda ctx: ctx.scheduler.run_after(0, "record", {"n": 1}))
    app.finish_scheduled_functions()
    app.run(lambda ctx: ctx.scheduler.run_after(8 * 24 * 3600 * 1000, "record", {"n": 2}))
    app.advance_time(7 * 24 * 3600 * 1000 + 1)
    assert jobs(app) == [("record", "pending")]  # the finished one is gone, the pending one stays


def test_at_most_a_thousand_schedules_per_call(app: cn.Backend) -> None:
    with pytest.raises(cn.ConvexFunctionError, match="Too many functions scheduled"):
        app.run(lambda ctx: [ctx.scheduler.run_after(0, "record", {"n": i}) for i in range(1001)])
    assert jobs(app) == []


def test_the_runner_reads_pending_jobs_through_an_index(app: cn.Backend, monkeypatch: Any) -> None:
    """Finished jobs are kept a week; finding what is due reads only the pending ones."""
    from convex_notebook.engine import transaction

    for i in range(300):
        app.run(lambda ctx, i=i: ctx.scheduler.run_after(0, "record", {"n": float(i)}))
    app.advance_time(1)  # all 300 done, kept
    app.run(lambda ctx: [ctx.scheduler.run_after(1000 * k, "record", {"n": -1.0}) for k in (1, 2, 3)])
    decoded = []
    real = transaction.load_rows
    monkeypatch.setattr(transaction, "load_rows", lambda rows, *a: decoded.append(len(rows)) or real(rows, *a))
    pending = app._scheduler._pending()
    assert [j["scheduledTime"] for j in pending] == sorted(j["scheduledTime"] for j in pending) and len(pending) == 3
    assert sum(decoded) == 3  # not the 303 jobs of the table


def test_the_system_indexes_outlive_schema_pushes_and_old_files(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    app = cn.Backend(path, clock=cn.VirtualClock(), echo_logs=False)
    app.mutation(lambda ctx: ctx.scheduler.run_after(5000, "nothing", {}), name="later")
    app.mutation(lambda ctx: None, name="nothing")
    app.mutation("later", {})
    info = app.database.table("_scheduled_functions")
    assert {"by_state", "by_completed_time"} <= set(info.indexes)
    app.set_schema(cn.define_schema({"t": cn.define_table({})}))
    assert {"by_state", "by_completed_time"} <= set(app.database.table("_scheduled_functions").indexes)
    store = app.database.store  # a file from before these indexes: drop them
    for name in ("by_state", "by_completed_time"):
        store.drop_index(info.indexes[name].index_id)
    app.close()
    app = cn.Backend(path, clock=cn.VirtualClock(), echo_logs=False)
    try:
        assert {"by_state", "by_completed_time"} <= set(app.database.table("_scheduled_functions").indexes)
        app.mutation(lambda ctx: None, name="nothing")
        assert app.finish_scheduled_functions() == 1
    finally:
        app.close()

