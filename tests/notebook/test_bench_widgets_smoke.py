"""The widget benchmark runs and reports (no timing assertions)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def test_bench_quick_widgets_writes_report(tmp_path: Path) -> None:
    out = tmp_path / "R.md"
    proc = subprocess.run(
        [sys.executable, "bench/run.py", "--quick", "--only", "widgets", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-5000:]
    assert "live widgets (kernel bridge)" in out.read_text()
    results = json.loads(out.with_suffix(".json").read_text())["results"]["widgets"]
    by_prefix = {r["name"][:2]: r for r in results}
    assert set(by_prefix) == {"g.", "h."}
    for r in results:
        assert isinstance(r["value"], float) and math.isfinite(r["value"]) and r["value"] > 0
        assert r["baseline_value"] > 0
    runs = by_prefix["g."]["extra"]["runs"]
    # the bridge coalesced: it applied far fewer renders than it was posted updates
    assert all(run["applied"] <= run["posts"] for run in runs)
