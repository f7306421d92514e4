"""The server benchmark runs and reports (no timing assertions)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from server_helpers import ROOT

pytestmark = pytest.mark.slow


def test_bench_server_quick_writes_report(tmp_path: Path) -> None:
    out = tmp_path / "R.md"
    proc = subprocess.run(
        [sys.executable, "bench/run.py", "--quick", "--only", "server", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-5000:]
    results = json.loads(out.with_suffix(".json").read_text())["results"]["server"]
    names = [r["name"] for r in results]
    assert any(n.startswith("a. reactive latency p50") for n in names)
    assert sum(n.startswith("b. mutations/s") for n in names) == 4
    for r in results:
        for key in ("value", "baseline_value", "ratio"):
            assert isinstance(r[key], float) and math.isfinite(r[key]) and r[key] > 0, r
