"""Durability under concurrency: a process whose threads commit mutations side by side is killed
with SIGKILL; on reopening, every mutation it acknowledged (printed after ``app.mutation``
returned) is there, whole, and the counter they all incremented agrees with them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import convex_notebook as cn

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX SIGKILL"),
]

ROOT = Path(__file__).resolve().parents[2]
THREADS = 4

CHILD = textwrap.dedent(
    """
    import sys, threading
    import convex_notebook as cn

    app = cn.Backend(sys.argv[1], echo_logs=False)
    run, threads = sys.argv[2], int(sys.argv[3])
    out = threading.Lock()

    @app.mutation
    def write(ctx, tag):
        first = ctx.db.insert("docs", {"tag": tag, "half": 0, "pad": "x" * 1500})
        ctx.db.insert("docs", {"tag": tag, "half": 1, "pad": "y" * 1500, "twin": first})
        counter = ctx.db.query("counter").first()  # every mutation conflicts on this
        if counter is None:
            ctx.db.insert("counter", {"n": 1})
        else:
            ctx.db.patch(counter["_id"], {"n": counter["n"] + 1})
        return first

    def writer(t):
        for i in range(1_000_000):
            doc_id = app.mutation("write", {"tag": f"{run}-{t}-{i}"})
            with out:
                print(doc_id, flush=True)

    print("ready", flush=True)
    for t in range(threads):
        threading.Thread(target=writer, args=(t,), daemon=True).start()
    threading.Event().wait()
    """
)


def run_and_kill(path: Path, run: str, acknowledged: int) -> list[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path), run, str(THREADS)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    acked: list[str] = []
    try:
        assert proc.stdout is not None and proc.stderr is not None
        first = proc.stdout.readline()
        assert first == "ready\n", first + proc.stderr.read()
        while len(acked) < acknowledged:
            line = proc.stdout.readline()
            assert line, "the writer died early: " + proc.stderr.read()
            acked.append(line.strip())
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL
        # Whatever it printed before the kill landed was acknowledged too.
        acked.extend(line.strip() for line in proc.stdout.read().splitlines() if line.strip())
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream:
                stream.close()
    return acked


def check(path: Path, acknowledged: list[str]) -> int:
    with cn.Backend(path, echo_logs=False) as app:
        docs = app.run(lambda ctx: ctx.db.query("docs").collect())
        by_id = {d["_id"]: d for d in docs}
        missing = [i for i in acknowledged if i not in by_id]
        assert missing == [], f"{len(missing)} acknowledged mutations lost"
        # No partial mutation: every first half has exactly one twin, and no twin is orphaned.
        firsts = {d["_id"] for d in docs if d["half"] == 0}
        twins = [d["twin"] for d in docs if d["half"] == 1]
        assert sorted(twins) == sorted(firsts)
        counter = app.run(lambda ctx: ctx.db.query("counter").unique())
        assert counter is not None and counter["n"] == len(firsts)
        # The database still takes writes.
        app.run(lambda ctx: ctx.db.insert("docs", {"tag": "after", "half": 2}))
        return len(firsts)


def test_kill_9_during_concurrent_mutations_loses_no_acknowledged_one(tmp_path: Path) -> None:
    path = tmp_path / "crash.sqlite3"
    total_acked: list[str] = []
    for run in range(3):
        acked = run_and_kill(path, f"r{run}", acknowledged=40)
        total_acked += acked
        committed = check(path, total_acked)
        assert committed >= len(total_acked)
