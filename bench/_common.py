"""Shared pieces of the benchmark harness: the Result record, timing helpers, test data.

Every figure is reported as a ratio against a baseline measured in the same run
(``ratio = value / baseline_value``). Timings use ``time.perf_counter``, warm-ups, and
medians over repeats. Nothing here asserts on timings: the harness reports, it never fails
because something was slow.
"""

from __future__ import annotations

import gc
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
NODE_DIR = BENCH_DIR / "node"


@dataclass
class Result:
    """One benchmark figure, next to the baseline it is compared with."""

    name: str
    value: float | None
    unit: str
    baseline_value: float | None
    baseline_name: str
    ratio: float | None = None
    goal: str = ""
    met: bool | None = None
    group: str = ""  # table heading in RESULTS.md (defaults to the module name)
    note: str = ""  # sizes, repeats, how it was measured, or why it was skipped
    extra: dict[str, Any] = field(default_factory=dict)  # raw samples etc. (JSON only)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def ratio_of(value: float | None, baseline: float | None) -> float | None:
    if value is None or baseline is None or baseline == 0:
        return None
    return value / baseline


def make_result(
    name: str,
    value: float | None,
    unit: str,
    baseline_value: float | None,
    baseline_name: str,
    *,
    goal: str = "",
    check: Callable[[float], bool] | None = None,
    group: str = "",
    note: str = "",
    extra: dict[str, Any] | None = None,
) -> Result:
    """Build a Result; ``check(ratio)`` decides ``met`` (None when there is no goal or no figure)."""
    r = ratio_of(value, baseline_value)
    met = None if (check is None or r is None) else bool(check(r))
    return Result(
        name=name,
        value=value,
        unit=unit,
        baseline_value=baseline_value,
        baseline_name=baseline_name,
        ratio=r,
        goal=goal,
        met=met,
        group=group,
        note=note,
        extra=extra or {},
    )


def skipped(name: str, unit: str, baseline_name: str, goal: str, why: str, group: str = "") -> Result:
    return Result(
        name=name,
        value=None,
        unit=unit,
        baseline_value=None,
        baseline_name=baseline_name,
        ratio=None,
        goal=goal,
        met=None,
        group=group,
        note=f"not measured: {why}",
    )


# --------------------------------------------------------------------------- timing


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def time_call(fn: Callable[[], Any]) -> float:
    """Seconds taken by one call of ``fn``. Collects garbage first; GC stays enabled while
    timing (the engine's own garbage is part of its cost)."""
    gc.collect()
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def rate_per_s(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else float("inf")


# --------------------------------------------------------------------------- data

# The document every benchmark writes, on every side (raw sqlite3, cn.Backend, convex-test
# in bench/node/convex_test_bench.mjs: keep the shapes identical).


def make_doc(i: int, k: str) -> dict[str, Any]:
    return {
        "k": k,
        "n": i,
        "text": f"document number {i}",
        "tags": ["a", "b", "c"],
        "score": i * 0.5,
        "done": False,
    }


def key_for(i: int, n_keys: int) -> str:
    return f"k{i % n_keys}"


# --------------------------------------------------------------------------- memory


def rss_bytes() -> int:
    """Current resident set size of this process (Linux /proc/self/statm)."""
    with open("/proc/self/statm") as f:
        resident_pages = int(f.read().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE")


def peak_rss_bytes() -> int:
    """Peak resident set size of this process (VmHWM)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


# --------------------------------------------------------------------------- formatting


def fmt_value(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit == "s":
        if value < 1e-3:
            return f"{value * 1e6:,.0f} µs"
        if value < 1:
            return f"{value * 1e3:,.2f} ms"
        return f"{value:,.2f} s"
    if unit == "MB":
        return f"{value:,.1f} MB"
    if abs(value) >= 100:
        return f"{value:,.0f} {unit}".strip()
    return f"{value:,.3g} {unit}".strip()


def fmt_ratio(r: float | None) -> str:
    if r is None:
        return "—"
    if r >= 100:
        return f"{r:,.0f}x"
    if r >= 10:
        return f"{r:.1f}x"
    if r >= 0.01:
        return f"{r:.2f}x"
    return f"{r:.4f}x"
