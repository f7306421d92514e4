"""Smoke tests of the benchmark harness (bench/): they check that it runs and reports, never
how fast anything is (no timing assertions)."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NODE_DIR = ROOT / "bench" / "node"

pytestmark = pytest.mark.slow


def _positive(x: object) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x > 0


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_convex_test_node_script_prints_json():
    # scripts/test installs bench/node's npm packages; without them this fails (it must not skip).
    assert (NODE_DIR / "node_modules" / "convex-test").is_dir(), "run `npm ci` in bench/node (scripts/test does)"
    proc = subprocess.run(
        ["node", "convex_test_bench.mjs", "--inserts", "20", "--repeats", "1", "--warmup", "1",
         "--query-docs", "50", "--query-hits", "10", "--queries", "3"],
        cwd=NODE_DIR, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert _positive(out["insert_rate_per_s"])
    assert _positive(out["query_latency_s"])
    assert len(out["query_latencies_s"]) == 3 and all(_positive(x) for x in out["query_latencies_s"])
    assert out["convex_test"] and out["convex"]


def test_bench_quick_engine_writes_report(tmp_path):
    out = tmp_path / "RESULTS.md"
    results_md = ROOT / "bench" / "RESULTS.md"
    before = results_md.read_bytes() if results_md.exists() else None
    env = dict(os.environ)
    proc = subprocess.run(
        [sys.executable, "bench/run.py", "--quick", "--only", "engine", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=900, env=env,
    )
    assert proc.returncode == 0, proc.stderr[-5000:]
    text = out.read_text()
    assert "# Benchmark results" in text and "Quick mode" in text
    assert "nproc" in text and "SQLite" in text
    data = json.loads(out.with_suffix(".json").read_text())
    results = data["results"]["engine"]
    names = [r["name"] for r in results]
    for prefix in ("a.", "b.", "c.", "d."):
        assert any(n.startswith(prefix) for n in names), names
    for r in results:
        # Every baseline is measured in the same run (convex-test's too: node is present in CI).
        assert _positive(r["baseline_value"]), r
        # Engine figures: measured, with a ratio, whenever the engine is importable.
        assert _positive(r["value"]), r
        assert _positive(r["ratio"]), r
        assert r["met"] in (True, False, None)
    # The committed report is left alone.
    after = results_md.read_bytes() if results_md.exists() else None
    assert before == after


def test_bench_quick_concurrency_writes_report(tmp_path):
    """Issue 11's bench (bench/bench_concurrency.py) at tiny sizes, WebSocket runs of ~1 s.
    A figure that needs the history API is ``n/a: <reason>`` only while the engine lacks it."""
    import convex_notebook as cn

    out = tmp_path / "RESULTS.md"
    env = dict(os.environ, CN_BENCH_WS_SECONDS="1")
    proc = subprocess.run(
        [sys.executable, "bench/run.py", "--quick", "--only", "concurrency", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=600, env=env,
    )
    assert proc.returncode == 0, proc.stderr[-5000:]
    data = json.loads(out.with_suffix(".json").read_text())
    assert data["errors"] == {}
    results = data["results"]["concurrency"]
    names = [r["name"] for r in results]
    for prefix in ("a.", "b.", "c.", "d."):
        assert any(n.startswith(prefix) for n in names), names
    has_history = callable(getattr(cn.Backend, "latest_ts", None))
    for r in results:
        assert not r["note"].startswith("error:"), r
        if r["note"].startswith("n/a:"):
            assert r["name"].startswith("c.") and not has_history, r
            assert r["value"] is None and r["met"] is None
            continue
        assert _positive(r["value"]), r
        assert _positive(r["baseline_value"]), r
        assert _positive(r["ratio"]), r
        assert r["met"] in (True, False, None)
    assert "concurrency" in out.read_text()


def test_bench_quick_fairness_writes_report(tmp_path):
    """Issue 14's bench (bench/bench_fairness.py) at tiny sizes: 10 clients for ~1 s per run,
    a hostile client sending 2,000 QueryAdds, a 2,000-query batch, 20 short actions. The server
    may refuse an attack (the note says how); the bench must still report every row."""
    out = tmp_path / "RESULTS.md"
    env = dict(os.environ, CN_BENCH_FAIR_SECONDS="1")
    proc = subprocess.run(
        [sys.executable, "bench/run.py", "--quick", "--only", "fairness", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=600, env=env,
    )
    assert proc.returncode == 0, proc.stderr[-5000:]
    data = json.loads(out.with_suffix(".json").read_text())
    assert data["errors"] == {}
    results = data["results"]["fairness"]
    names = [r["name"] for r in results]
    assert any(n.startswith("baseline:") for n in names), names
    for prefix in ("a.", "b.", "c."):
        rows = [r for r in results if r["name"].startswith(prefix)]
        assert len(rows) == 4, names  # worst, p99, RSS during, RSS after
        worst = rows[0]
        assert worst["name"].endswith("worst latency") and worst["goal"] == "≤ 3x"
        assert "hostile:" in worst["note"], worst
    for r in results:
        assert not r["note"].startswith("error:"), r
        assert _positive(r["value"]), r
        assert _positive(r["baseline_value"]), r
        assert _positive(r["ratio"]), r
        assert r["met"] in (True, False, None)
    assert "fairness" in out.read_text()


@pytest.mark.parametrize("kind", ["raw", "file", "memory", "rmw"])
def test_instruction_count_workloads_run(kind):
    """bench/bench_instructions.py counts a child process's instructions under valgrind; the
    children themselves must run as written (valgrind is optional: here they run bare)."""
    proc = subprocess.run(
        [sys.executable, "-m", "bench.bench_instructions", "--child", kind, "20"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
