"""Helpers of the issue-11 tests (imported by name: the module name is unique across tests/).

These tests show concurrency by *ordering* (events, barriers), never by timing: every wait is
bounded (``WAIT`` seconds) so that an engine that serializes what should run side by side
makes a test fail, not hang.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
from typing import Any, Callable

import convex_notebook as cn

WAIT = 10.0  # seconds: the bound of every wait for something that should happen at once
HOLD = 60.0  # seconds: the bound of a wait inside a function body, which the test ends sooner

USAGE_KEYS = {"documents_read", "bytes_read", "index_ranges", "documents_written", "bytes_written", "occ_retries"}


class Worker:
    """Runs ``fn`` on a daemon thread; ``.done`` is set when it returns or raises."""

    def __init__(self, fn: Callable[[], Any], name: str = "worker") -> None:
        self.done = threading.Event()
        self.value: Any = None
        self.error: BaseException | None = None

        def body() -> None:
            try:
                self.value = fn()
            except BaseException as exc:  # noqa: BLE001 - handed to the test
                self.error = exc
            finally:
                self.done.set()

        self.thread = threading.Thread(target=body, name=name, daemon=True)
        self.thread.start()

    def result(self, timeout: float = 60.0) -> Any:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the worker thread did not finish"
        if self.error is not None:
            raise self.error
        return self.value


def entries_for(app: cn.Backend, path: str) -> list[Any]:
    """Log entries (``app.logs``) of the calls of ``path``, oldest first."""
    return [e for e in app.logs if e.path == path]


def usage_of(entry: Any) -> dict[str, int]:
    usage = entry.usage  # API.md §7: every call's log entry carries ``usage``
    assert isinstance(usage, dict), usage
    assert USAGE_KEYS <= set(usage), f"usage lacks {USAGE_KEYS - set(usage)}: {usage}"
    return usage


def refusal(fn: Callable[[], Any]) -> BaseException:
    """Call ``fn``, which must be refused with an error; return the error. An AttributeError or
    TypeError means the API itself is missing, which is not a refusal."""
    try:
        value = fn()
    except (AttributeError, TypeError):
        raise
    except Exception as exc:  # noqa: BLE001
        return exc
    raise AssertionError(f"expected a refusal, got {value!r}")


_ISO = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?")
_INT = re.compile(r"(?<![\d.])\d{13,19}(?![\d.])")


def times_named_in(text: str) -> list[int]:
    """Every point in time ``text`` names, in ns since the epoch: 19-digit ns, 16-digit µs or
    13-digit ms integers, and ISO-8601 datetimes (UTC when no offset is given)."""
    found: list[int] = []
    for m in _INT.finditer(text):
        s = m.group(0)
        n = int(s)
        found.append({19: n, 16: n * 1_000, 13: n * 1_000_000}.get(len(s), -1))
    for m in _ISO.finditer(text):
        s = m.group(0).replace("Z", "+00:00")
        try:
            when = dt.datetime.fromisoformat(s)
        except ValueError:
            continue
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.timezone.utc)
        found.append(int(when.timestamp() * 1e9))
    return [t for t in found if t > 0]


def datetime_of_ms(ms: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.timezone.utc)
