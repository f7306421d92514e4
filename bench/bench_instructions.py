"""Instructions per operation on the hot paths, counted by valgrind (callgrind).

Timings on a shared machine move by a factor of two from one minute to the next; instruction
counts do not (they vary by well under 1% between runs). This module counts the user-space
instructions of one operation as the difference between a child process that does ``n`` of
them and one that does none (same start-up, same warm-up), divided by ``n``:

a. a durable single-document insert mutation (``app.mutation("add", doc)``, file backend);
b. the same on an in-memory backend;
c. a read-modify-write mutation with one live query watching its document (the server's
   reactive path without the network: the mutation, its commit and the live re-run),

each against raw sqlite3's insert+commit of the same document (the baseline of
``bench_engine`` a). Kernel time (system calls: WAL writes, file locks) is not counted, so
these ratios are not the timed ones; they say where CPU goes and make an A/B of a code change
readable on a busy machine. Needs ``valgrind`` (``apt-get install valgrind``); without it the
figures are reported as not measured.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bench._common import ROOT, Result, make_result

GROUP = "hot paths in instructions (valgrind callgrind)"
RAW = "raw sqlite3 insert+commit (file), instructions per insert"


def _child(kind: str, n: int) -> None:
    """The measured process: warm up, then ``n`` operations of ``kind``, then exit at once."""
    from bench.bench_engine import make_app, make_doc, raw_insert_one, raw_open

    docs = [make_doc(i, f"k{i % 100}") for i in range(max(n, 1))]
    directory = tempfile.mkdtemp()
    if kind == "raw":
        con = raw_open(os.path.join(directory, "raw.sqlite3"))
        for _ in range(200):
            raw_insert_one(con, make_doc(-1, "warm"))
        for doc in docs[:n]:
            raw_insert_one(con, doc)
        os._exit(0)
    app = make_app(None if kind == "memory" else os.path.join(directory, "app.sqlite3"))
    if kind == "rmw":
        @app.query
        def counter(ctx: Any) -> Any:
            return ctx.db.query("docs").with_index("by_k", lambda q: q.eq("k", "hot")).unique()

        @app.mutation
        def bump(ctx: Any) -> None:
            doc = ctx.db.query("docs").with_index("by_k", lambda q: q.eq("k", "hot")).unique()
            ctx.db.patch(doc["_id"], {"n": doc["n"] + 1})

        app.mutation("add", make_doc(0, "hot"))
        seen: list[Any] = []
        app.subscribe("counter", {}, on_update=seen.append)  # re-run by every bump's commit
        for _ in range(200):
            app.mutation("bump", {})
        for _ in range(n):
            app.mutation("bump", {})
        assert len(seen) > n, "the live query did not re-run on each commit"
        os._exit(0)
    for _ in range(200):
        app.mutation("add", make_doc(-1, "warm"))
    mutate = app.mutation
    for doc in docs[:n]:
        mutate("add", doc)
    os._exit(0)


def _instructions(kind: str, n: int) -> int:
    """Instructions callgrind collected over a whole child process."""
    out = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
         sys.executable, "-m", "bench.bench_instructions", "--child", kind, str(n)],
        check=False, cwd=ROOT, capture_output=True, text=True, timeout=1800,
    )
    for line in out.stderr.splitlines():
        if "Collected" in line:
            return int(line.split(":")[-1].strip().replace(",", ""))
    raise RuntimeError(f"callgrind reported no count for {kind}: {out.stderr[-400:]}")


def per_operation(kind: str, n: int) -> float:
    """Instructions of one operation: (a run of n) minus (a run of none), over n."""
    with ThreadPoolExecutor(2) as pool:  # the two runs side by side (they are independent)
        none, many = pool.map(lambda k: _instructions(kind, k), (0, n))
    return (many - none) / n


def run(quick: bool) -> list[Result]:
    n = 200 if quick else 1000
    names = {
        "file": "a. durable single-document insert mutation (file backend)",
        "memory": "b. single-document insert mutation, in memory",
        "rmw": "c. read-modify-write mutation with one live query re-run (in memory, no network)",
    }
    if shutil.which("valgrind") is None:
        why = "valgrind is not installed (apt-get install valgrind): not measured"
        return [make_result(name, None, "instr", None, RAW, goal="report", group=GROUP, note=why)
                for name in names.values()]
    raw = per_operation("raw", n)
    out = []
    for kind, name in names.items():
        value = per_operation(kind, n)
        out.append(make_result(
            name, value, "instr", raw, RAW, goal="report", group=GROUP,
            note=(f"{n:,} operations after 200 warm-ups, minus a run with none; user-space "
                  "instructions of every thread (the watchdog's and the checkpointer's too)"),
        ))
    return out


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        _child(sys.argv[2], int(sys.argv[3]))
    else:
        print("usage: python -m bench.bench_instructions --child KIND N (run by bench/run.py)", file=sys.stderr)
        sys.exit(2)
