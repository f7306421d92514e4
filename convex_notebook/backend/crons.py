"""Cron jobs, as ``convex/crons.ts`` declares them.

    crons = cn.CronJobs()
    crons.interval("clear stale", {"minutes": 5}, "tasks:clear_stale")
    crons.cron("monthly report", "0 16 1 * *", "reports:send", {"to": "team"})   # UTC
    crons.daily("digest", {"hourUTC": 17, "minuteUTC": 30}, "digest:send")
    app.set_crons(crons)             # or app.crons.interval(...) straight from a notebook cell

Like functions, cron definitions live in the process that defines them (a functions file's
top-level ``crons`` is applied by ``convex-notebook serve``). An interval job first runs when it
is defined, then every period; a cron-string job at its next matching minute (UTC, parsed by
croniter). A run that is still going when the next is due makes that one skipped, as in Convex.
Runs appear in the logs like scheduled functions; the runner is the scheduler's.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["CronJob", "CronJobs"]

DAYS = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")
_UNITS = {"seconds": 1, "minutes": 60, "hours": 3600}


@dataclass
class CronJob:
    """One cron: what to run and when (``interval_s`` or a 5-field UTC ``cron`` string)."""

    name: str
    ref: Any
    args: dict
    interval_s: float | None = None
    cron: str | None = None
    next_run_ms: float = 0.0
    running: bool = False
    runs: int = field(default=0, compare=False)

    def first_run(self, now_ms: float) -> float:
        return now_ms if self.interval_s is not None else self.following(now_ms)

    def following(self, after_ms: float) -> float:
        """The next run strictly after ``after_ms``."""
        if self.interval_s is not None:
            return after_ms + self.interval_s * 1000
        from croniter import croniter  # (imported when first used: it is slow to load)

        start = _dt.datetime.fromtimestamp(after_ms / 1000, tz=_dt.UTC)
        return croniter(self.cron, start).get_next(float) * 1000


def _check_time(value: Any, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value) or not low <= value <= high:
        raise ValueError(f"{name} must be a whole number from {low} to {high}, got {value!r}")
    return int(value)


class CronJobs:
    """A set of cron jobs (``cronJobs()`` in Convex); apply it with ``app.set_crons(crons)``."""

    def __init__(self) -> None:
        self.jobs: dict[str, CronJob] = {}

    def __repr__(self) -> str:
        return f"CronJobs({', '.join(self.jobs) or 'none'})"

    def _add(self, job: CronJob) -> CronJob:
        if not isinstance(job.name, str) or not job.name:
            raise ValueError(f"A cron job needs a name (a non-empty string), got {job.name!r}")
        if job.name in self.jobs:
            raise ValueError(f"Cron identifier {job.name!r} registered twice")
        if job.args is None:
            job.args = {}
        if not isinstance(job.args, dict):
            raise ValueError(  # noqa: TRY004 - a cron definition error, as for its name
                f"Arguments of cron {job.name!r} must be a dict, got {type(job.args).__name__}"
            )
        self.jobs[job.name] = job
        return job

    def interval(self, name: str, schedule: dict, ref: Any, args: dict | None = None) -> CronJob:
        """Every ``{"seconds"|"minutes"|"hours": n}`` (first run: now)."""
        if not isinstance(schedule, dict) or not schedule or set(schedule) - set(_UNITS):
            raise ValueError(f"interval() takes {{'seconds'|'minutes'|'hours': n}}, got {schedule!r}")
        seconds = 0.0
        for unit, amount in schedule.items():
            if isinstance(amount, bool) or not isinstance(amount, (int, float)) or amount < 0:
                raise ValueError(f"interval(): {unit} must be a non-negative number, got {amount!r}")
            seconds += amount * _UNITS[unit]
        if seconds <= 0:
            raise ValueError("interval(): the period must be positive")
        return self._add(CronJob(name, ref, args or {}, interval_s=seconds))

    def cron(self, name: str, expression: str, ref: Any, args: dict | None = None) -> CronJob:
        """A classic 5-field cron string in UTC, e.g. ``"0 16 1 * *"``."""
        from croniter import croniter

        if not isinstance(expression, str) or len(expression.split()) != 5 or not croniter.is_valid(expression):
            raise ValueError(f"cron() takes a 5-field cron string (minute hour day month weekday), got {expression!r}")
        return self._add(CronJob(name, ref, args or {}, cron=expression))

    def hourly(self, name: str, at: dict, ref: Any, args: dict | None = None) -> CronJob:
        minute = _check_time(at.get("minuteUTC"), "minuteUTC", 0, 59)
        return self.cron(name, f"{minute} * * * *", ref, args)

    def daily(self, name: str, at: dict, ref: Any, args: dict | None = None) -> CronJob:
        hour, minute = _check_time(at.get("hourUTC"), "hourUTC", 0, 23), _check_time(at.get("minuteUTC"), "minuteUTC", 0, 59)
        return self.cron(name, f"{minute} {hour} * * *", ref, args)

    def weekly(self, name: str, at: dict, ref: Any, args: dict | None = None) -> CronJob:
        day = str(at.get("dayOfWeek", "")).lower()
        if day not in DAYS:
            raise ValueError(f"weekly(): dayOfWeek is a day name such as 'Tuesday', got {at.get('dayOfWeek')!r}")
        hour, minute = _check_time(at.get("hourUTC"), "hourUTC", 0, 23), _check_time(at.get("minuteUTC"), "minuteUTC", 0, 59)
        return self.cron(name, f"{minute} {hour} * * {DAYS.index(day)}", ref, args)

    def monthly(self, name: str, at: dict, ref: Any, args: dict | None = None) -> CronJob:
        """On ``day`` of each month (a month without that day is skipped)."""
        day = _check_time(at.get("day"), "day", 1, 31)
        hour, minute = _check_time(at.get("hourUTC"), "hourUTC", 0, 23), _check_time(at.get("minuteUTC"), "minuteUTC", 0, 59)
        return self.cron(name, f"{minute} {hour} {day} * *", ref, args)


class BoundCronJobs(CronJobs):
    """``app.crons``: defining a job deploys it at once; redefining one (re-running a cell)
    replaces it instead of failing."""

    def __init__(self, on_change: Callable[[], None]) -> None:
        super().__init__()
        self._on_change = on_change

    def _add(self, job: CronJob) -> CronJob:
        self.jobs.pop(job.name, None)
        added = super()._add(job)
        self._on_change()
        return added

    def remove(self, name: str) -> None:
        if self.jobs.pop(name, None) is not None:
            self._on_change()

    def replace_all(self, crons: CronJobs) -> None:
        self.jobs = dict(crons.jobs)
        self._on_change()
