"""Scheduled functions: ``ctx.scheduler.run_after / run_at / cancel`` and the runner.

A scheduled call is a document of the ``_scheduled_functions`` system table, written in the
scheduling transaction (a mutation that fails schedules nothing; an action's scheduling is its
own small transaction), as Convex keeps them:

    {"name": "tasks:cleanup", "args": [{...}], "scheduledTime": ms,
     "state": {"kind": "pending" | "inProgress" | "success" | "failed" | "canceled", "error"?},
     "completedTime"?: ms}

Running one is a commit like any other (subscriptions see it). A mutation runs **exactly once**:
in one transaction that re-reads the job, runs the function in a savepoint and records the
outcome (a failure rolls back its writes, and the job records the error). An action runs **at
most once**: a transaction claims it (``inProgress``), the action runs, another records the
outcome; an action that was in progress when the process stopped is marked failed on restart.

With the system clock a background thread runs jobs when they are due. With a
``VirtualClock`` nothing runs on its own: ``app.advance_time(ms)`` runs what became due and
``app.finish_scheduled_functions()`` runs everything pending, moving time forward to each job.
"""

from __future__ import annotations

import contextvars
import datetime as _dt
import json as _json
import math
import threading
import time
from typing import TYPE_CHECKING, Any

from ..engine import bulk
from ..engine.clock import VirtualClock
from ..engine.transaction import DatabaseError, Transaction
from ..errors import ConvexFunctionError
from ..values import (
    convex_value,
    decode_id,
    encode_value,
    from_json,
    prefix_end,
    to_json,
    value_size,
)
from . import logs
from .crons import BoundCronJobs, CronJob
from .limits import LimitError, check_size, user_code
from .occ import run_optimistic

if TYPE_CHECKING:
    from .app import Backend

__all__ = ["SCHEDULED_TABLE", "Scheduler", "SchedulerRunner"]

SCHEDULED_TABLE = "_scheduled_functions"
MAX_JOBS_PER_FINISH = 10_000  # finish_scheduled_functions() stops a runaway chain here
MAX_SCHEDULED_PER_CALL = 1000  # Convex's limit per calling function
INLINE_ARGS_BYTES = 512 * 1024  # larger arguments live beside the job's document (1 MiB at most)
RETENTION_MS = 7 * 24 * 3600 * 1000  # finished jobs are kept this long, then deleted (as Convex)
# The job whose function is running in this context: what it schedules is canceled with it.
_running_job: contextvars.ContextVar[str | None] = contextvars.ContextVar("convex_running_job", default=None)


def _when_ms(when: Any) -> float:
    if isinstance(when, _dt.datetime):
        if when.tzinfo is None:
            raise ValueError("run_at(datetime): give a timezone-aware datetime (e.g. tzinfo=timezone.utc)")
        return when.timestamp() * 1000
    if isinstance(when, bool) or not isinstance(when, (int, float)) or math.isnan(when):
        raise ValueError(f"run_at() takes a time in ms since the epoch or a datetime, got {when!r}")
    return float(when)


def schedule(backend: Backend, txn: Transaction, when_ms: float, ref: Any, args: Any) -> str:
    """Write a pending job in ``txn``; returns its id. The function must be a mutation or action."""
    definition = backend._resolve(ref, None, admin=True)
    if definition.kind == "query":
        raise ConvexFunctionError(f"Cannot schedule {definition.path}: it is a query (schedule a mutation or action)")
    if args is None:
        args = {}
    if not isinstance(args, dict):
        raise ConvexFunctionError(f"Arguments of a scheduled {definition.path} must be a dict, got {type(args).__name__}")
    count = getattr(txn, "scheduled_count", 0) + 1
    if count > MAX_SCHEDULED_PER_CALL:
        raise ConvexFunctionError(f"Too many functions scheduled by one call (the limit is {MAX_SCHEDULED_PER_CALL})")
    txn.scheduled_count = count  # type: ignore[attr-defined]
    state = {"kind": "pending"}
    parent = _running_job.get()
    if parent is not None:  # a canceled action's descendants never run
        parent_job = txn.get(parent)
        if parent_job is not None and parent_job["state"]["kind"] == "canceled":
            state = {"kind": "canceled"}
    value = convex_value(args)
    size = value_size(value)
    check_size(value, backend.limits.argument_bytes, f"Arguments of the scheduled {definition.path}", "argument_bytes")
    total = getattr(txn, "scheduled_bytes", 0) + size
    if backend.limits.argument_bytes is not None and total > backend.limits.argument_bytes:
        raise LimitError(
            f"The arguments of the functions scheduled by one call total {total} bytes; the limit is "
            f"{backend.limits.argument_bytes} bytes (argument_bytes)"
        )
    txn.scheduled_bytes = total  # type: ignore[attr-defined]
    stored = size > INLINE_ARGS_BYTES
    job_id = txn.insert_system(SCHEDULED_TABLE, {
        "name": definition.path,
        "args": [] if stored else [value],
        "scheduledTime": when_ms,
        "state": state,
        **({"argsStored": True} if stored else {}),
    })
    if stored:  # too large for a document (1 MiB): kept beside it, written in the same transaction
        txn.put_file(job_id, _json.dumps(to_json(value), separators=(",", ":")).encode())
    return job_id


def job_args(backend: Backend, job: dict, txn: Transaction | None = None) -> dict:
    """A job's arguments (those too large for its document are kept beside it)."""
    if job.get("argsStored"):
        if txn is None:
            with backend.database.read() as reader:
                raw = reader.get_file(job["_id"])
        else:
            raw = txn.get_file(job["_id"])
        if raw is None:
            raise ConvexFunctionError(f"The arguments of scheduled function {job['_id']} are missing")
        return from_json(_json.loads(raw))
    return job["args"][0]


def _forget_args(backend: Backend, txn: Transaction, job: dict) -> None:
    if job.get("argsStored"):
        txn.delete_file(job["_id"])


def cancel(txn: Transaction, job_id: Any) -> None:
    """Cancel a job (see the comment below for one that has started)."""
    decoded = decode_id(job_id) if isinstance(job_id, str) else None
    info = txn.db.table(SCHEDULED_TABLE)
    if decoded is None or info is None or decoded[0] != info.number:
        raise DatabaseError(f"scheduler.cancel() takes the id of a scheduled function, got {job_id!r}")
    job = txn.get(job_id)
    # Not started: it never runs. An action in progress runs on, but what it schedules from
    # now on is canceled with it. Finished: nothing to do.
    if job is not None and job["state"]["kind"] in ("pending", "inProgress"):
        txn.patch(job_id, {"state": {"kind": "canceled"}, "completedTime": txn.now_ms})


class Scheduler:
    """``ctx.scheduler``. In a mutation, scheduling is part of its transaction; in an action
    (``in_transaction`` None) each call commits on its own."""

    def __init__(self, backend: Backend, txn: Transaction | None) -> None:
        self._backend = backend
        self._txn = txn

    def _write(self, fn: Any) -> Any:
        if self._txn is not None:
            return fn(self._txn)
        return run_optimistic(self._backend.database, fn)[0]

    def run_after(self, delay_ms: float, ref: Any, args: dict | None = None) -> str:
        """Run ``ref`` (a mutation or action) ``delay_ms`` from now; returns the job's id."""
        if isinstance(delay_ms, bool) or not isinstance(delay_ms, (int, float)) or math.isnan(delay_ms):
            raise ValueError(f"run_after() takes a delay in ms, got {delay_ms!r}")
        if delay_ms < 0:
            raise ValueError(f"`delayMs` must be non-negative (run_after() got {delay_ms!r})")
        if delay_ms == float("inf"):
            raise ValueError("`delayMs` must be finite (run_after() got inf)")
        now = self._txn.now_ms if self._txn is not None else self._backend.database.clock.now_ms()
        return self._write(lambda txn: schedule(self._backend, txn, now + float(delay_ms), ref, args))

    def run_at(self, when: Any, ref: Any, args: dict | None = None) -> str:
        """Run ``ref`` at ``when`` (ms since the epoch, or an aware datetime); returns the job's id."""
        when_ms = _when_ms(when)
        return self._write(lambda txn: schedule(self._backend, txn, when_ms, ref, args))

    def cancel(self, job_id: str) -> None:
        self._write(lambda txn: cancel(txn, job_id))


class SchedulerRunner:
    """Runs due jobs: on a thread with the system clock, on request with a virtual one."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopped = False
        self._virtual = isinstance(backend.database.clock, VirtualClock)
        self._cron_lock = threading.Lock()
        self.crons = BoundCronJobs(self._crons_changed)  # app.crons
        backend.database.commit_listeners.append(self._on_commit)
        self._recover()

    def _crons_changed(self) -> None:
        """New or redefined crons start their schedule now; the thread (if any) re-plans."""
        now = self._backend.database.clock.now_ms()
        for job in list(self.crons.jobs.values()):
            if not job.next_run_ms:
                job.next_run_ms = job.first_run(now)
        self._ensure_thread()
        with self._wake:
            self._wake.notify_all()

    def _due_crons(self, now: float) -> list[CronJob]:
        return sorted((j for j in list(self.crons.jobs.values()) if j.next_run_ms <= now), key=lambda j: j.next_run_ms)

    def _next_cron(self) -> CronJob | None:
        jobs = list(self.crons.jobs.values())
        return min(jobs, key=lambda j: j.next_run_ms) if jobs else None

    # -- reading jobs -------------------------------------------------------------------------
    def _in_state(self, txn: Any, kind: str) -> list[dict]:
        """The jobs in state ``kind``, by scheduled time (then creation): the by_state index."""
        prefix = encode_value(kind)
        return bulk.index_documents(txn, SCHEDULED_TABLE, "by_state", prefix, prefix_end(prefix))

    def _pending(self) -> list[dict]:
        """Pending jobs by time (finished ones past their retention are deleted on the way).

        Index reads (the runner's own: no transaction limits): the finished jobs kept for a
        week are not read on every wake.
        """
        db = self._backend.database
        if db.table(SCHEDULED_TABLE) is None:
            return []
        expired_before = db.clock.now_ms() - RETENTION_MS
        with db.read() as txn:
            expired = bulk.index_documents(
                txn, SCHEDULED_TABLE, "by_completed_time", encode_value(-math.inf), encode_value(expired_before)
            )
            pending = self._in_state(txn, "pending")
        if expired:  # (finished jobs: never pending, so the list above stands)
            def forget(txn: Transaction) -> None:
                for job in expired:
                    if txn.get(job["_id"]) is not None:
                        txn.delete(job["_id"])
                        _forget_args(self._backend, txn, job)

            run_optimistic(db, forget)
        return pending

    def _recover(self) -> None:
        """Actions in progress when the process stopped failed (at most once); pending jobs resume."""
        db = self._backend.database
        if db.table(SCHEDULED_TABLE) is None:
            return
        def fail_interrupted(txn: Transaction) -> None:
            for job in self._in_state(txn, "inProgress"):
                txn.patch(job["_id"], {
                    "state": {"kind": "failed", "error": "Transient error while executing action (the process stopped)"},
                    "completedTime": txn.now_ms,
                })

        run_optimistic(db, fail_interrupted)
        if self._pending():
            self._ensure_thread()

    # -- waking -------------------------------------------------------------------------------
    def _on_commit(self, writes: Any, ts: int) -> None:
        if SCHEDULED_TABLE in writes.tables and not self._virtual:
            self._ensure_thread()
            with self._wake:
                self._wake.notify_all()

    def _ensure_thread(self) -> None:
        if self._virtual or self._stopped or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._loop, name="convex-scheduler", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        clock = self._backend.database.clock
        while not self._stopped:
            try:
                ran = self.run_due()
                pending = self._pending()
            except Exception:  # noqa: BLE001 - the database is closing
                return
            if ran:
                continue
            times = [pending[0]["scheduledTime"]] if pending else []
            cron = self._next_cron()
            if cron is not None:
                times.append(cron.next_run_ms)
            wait = (min(times) - clock.now_ms()) / 1000 if times else 60.0
            with self._wake:
                if not self._stopped and wait > 0:
                    self._wake.wait(timeout=min(wait, 60.0))

    def stop(self) -> None:
        self._stopped = True
        try:
            self._backend.database.commit_listeners.remove(self._on_commit)
        except ValueError:
            pass
        with self._wake:
            self._wake.notify_all()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(5)

    # -- running ------------------------------------------------------------------------------
    def run_due(self) -> int:
        """Run every job and cron due now (and what they schedule for now), in time order;
        returns how many ran."""
        ran = 0
        while not self._stopped:
            now = self._backend.database.clock.now_ms()
            events = [(j["scheduledTime"], 0, j["_id"]) for j in self._pending() if j["scheduledTime"] <= now]
            events += [(c.next_run_ms, 1, c) for c in self._due_crons(now)]
            if not events:
                break
            for when, is_cron, what in sorted(events, key=lambda e: (e[0], e[1])):
                ran += self._run_cron(what, now) if is_cron else self.run_job(what)
        return ran

    def run_until(self, target_ms: float) -> int:
        """Virtual clock: step time through every job and cron tick up to ``target_ms``, running
        each at its own time (so ``ctx.now()`` is the time it was due), then stop there."""
        clock = self._backend.database.clock
        assert isinstance(clock, VirtualClock)
        ran = 0
        while True:
            pending = self._pending()
            times = [pending[0]["scheduledTime"]] if pending else []
            cron = self._next_cron()
            if cron is not None:
                times.append(cron.next_run_ms)
            upcoming = min(times) if times else None
            if upcoming is None or upcoming > target_ms:
                break
            if upcoming > clock.now_ms():
                clock.set(upcoming)
            ran += self.run_due()
            if ran > MAX_JOBS_PER_FINISH:
                raise ConvexFunctionError(f"More than {MAX_JOBS_PER_FINISH} runs while advancing time: a job reschedules itself forever?")
        if target_ms > clock.now_ms():
            clock.set(target_ms)
            self._pending()  # (deletes what expired by then)
        return ran

    def finish(self) -> int:
        """Run every pending scheduled function, in time order, until none is left (a virtual
        clock moves to each one's time, running crons due on the way; with the system clock this
        waits for them); returns how many ran."""
        clock = self._backend.database.clock
        ran = 0
        while ran < MAX_JOBS_PER_FINISH:
            pending = self._pending()
            if not pending:
                return ran
            due_at = pending[0]["scheduledTime"]
            if isinstance(clock, VirtualClock):
                ran += self.run_until(max(due_at, clock.now_ms()))
                continue
            delay = (due_at - clock.now_ms()) / 1000
            if delay > 0:
                time.sleep(delay)
            ran += self.run_due()
        raise ConvexFunctionError(
            f"finish_scheduled_functions() ran {MAX_JOBS_PER_FINISH} jobs and more keep coming: "
            "a scheduled function probably reschedules itself forever"
        )

    def _run_cron(self, job: CronJob, now: float) -> int:
        """One run of a cron (skipped if its previous run is still going); plans the next."""
        backend = self._backend
        with self._cron_lock:
            if job.running or self.crons.jobs.get(job.name) is not job:
                return 0
            job.running = True
            following = job.following(job.next_run_ms)
            job.next_run_ms = following if following > now else job.following(now)  # missed runs are skipped
        definition = backend.registry.lookup(job.ref) if isinstance(job.ref, str) else getattr(job.ref, "definition", None)
        kind = definition.kind if definition is not None else "mutation"
        path = definition.path if definition is not None else str(job.ref)
        started = time.perf_counter()
        error: str | None = None
        with logs.capture() as cap, backend._measured() as usage:
            try:
                if kind == "query":
                    raise ConvexFunctionError(f"Cron {job.name!r}: {path} is a query (a cron runs a mutation or action)")
                backend._call(job.ref, job.args, kind=None, identity=None, admin=True, top=False)
            except Exception as exc:  # noqa: BLE001 - logged; the cron keeps its schedule
                error = str(exc)
            finally:
                job.running = False
                job.runs += 1
        backend._record_call(path, kind, cap.lines, started, error, usage)
        return 1

    def run_job(self, job_id: str) -> int:
        """Run one job if it is still pending (1), else nothing (0)."""
        backend = self._backend
        db = backend.database
        with db.read() as txn:
            job = txn.get(job_id)
        if job is None or job["state"]["kind"] != "pending":
            return 0
        definition = backend.registry.lookup(job["name"])
        if definition is not None and definition.kind == "action":
            return self._run_action(job_id)
        return self._run_mutation(job_id)

    def _run_mutation(self, job_id: str) -> int:
        backend = self._backend
        started = time.perf_counter()
        with logs.capture() as cap:

            def run(txn: Transaction) -> tuple[dict | None, str | None]:
                job = txn.get(job_id)
                if job is None or job["state"]["kind"] != "pending":
                    return None, None  # canceled, or run by someone else meanwhile
                error: str | None = None
                token = _running_job.set(job_id)
                try:
                    limit = backend.limits.query_seconds
                    with user_code(limit, "mutation", job["name"], limit_name="query_seconds"):
                        backend._run_in_transaction(job["name"], job_args(backend, job, txn), txn, None, kind="mutation")
                    state: dict = {"kind": "success"}
                except Exception as exc:  # noqa: BLE001 - recorded in the job; its writes were rolled back
                    error = str(exc)
                    state = {"kind": "failed", "error": error}
                finally:
                    _running_job.reset(token)
                txn.patch(job_id, {"state": state, "completedTime": txn.now_ms})
                return job, error

            mark = len(cap.lines)

            def forget_attempt(_retry: int) -> None:
                del cap.lines[mark:]

            (job, error), txn, retries = run_optimistic(backend.database, run, on_retry=forget_attempt)
        if job is None:
            return 0
        usage = txn.usage | {"occ_retries": retries}  # (the job's own state update included)
        backend._record_call(job["name"], "mutation", cap.lines, started, error, usage)
        return 1

    def _run_action(self, job_id: str) -> int:
        backend = self._backend
        def claim(txn: Transaction) -> dict | None:  # at most once
            job = txn.get(job_id)
            if job is None or job["state"]["kind"] != "pending":
                return None
            txn.patch(job_id, {"state": {"kind": "inProgress"}})
            return job

        job = run_optimistic(backend.database, claim)[0]
        if job is None:
            return 0
        started = time.perf_counter()
        error: str | None = None
        token = _running_job.set(job_id)
        with logs.capture() as cap, backend._measured() as usage:
            try:
                backend._call(job["name"], job_args(backend, job), kind="action", identity=None, admin=True, top=False)
                state: dict = {"kind": "success"}
            except Exception as exc:  # noqa: BLE001 - recorded in the job
                error = str(exc)
                state = {"kind": "failed", "error": error}
            finally:
                _running_job.reset(token)
        def finish(txn: Transaction) -> None:
            current = txn.get(job_id)
            if current is not None and current["state"]["kind"] == "inProgress":  # not canceled meanwhile
                txn.patch(job_id, {"state": state, "completedTime": txn.now_ms})

        run_optimistic(backend.database, finish)
        backend._record_call(job["name"], "action", cap.lines, started, error, usage)
        return 1
