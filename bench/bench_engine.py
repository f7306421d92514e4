"""Issue 2's benchmark: the embedded engine against raw sqlite3 and against convex-test.

Figures (each a ratio against a baseline measured in this same run):

a. durable single-document insert mutations/s on ``cn.Backend(file)`` vs raw sqlite3
   insert+commit of the same JSON document (WAL, synchronous=NORMAL, one indexed column).
   Goal: >= 0.5x the raw rate.
b. ``with_index`` eq query returning 100 of 1,000,000 documents (file backend) vs raw sqlite3
   indexed SELECT of 100 rows + ``json.loads`` of each. Goal: <= 2x the raw latency.
   (Also reported, without a goal: the bulk-load rate used to build the table.)
c. memory (RSS growth) of a 1,000,000-document table on ``cn.Backend()`` and
   ``cn.Backend(file)``, each built in its own child process, vs the same documents held
   as a Python list of dicts (also in a child process). Informational.
d. side by side with convex-test (bench/node/convex_test_bench.mjs): in-memory insert
   mutations/s (goal >= 1x convex-test's) and the 100-of-10,000 ``with_index`` eq query
   latency (goal: >= 10x faster, i.e. ratio <= 0.1).

Every side stores the same document (bench._common.make_doc) and, on the engine, goes
through the public API: a registered, argument-validated function called by name, with a
schema that validates every write and declares the ``by_k`` index.

Child-process mode (used by c):  python -m bench.bench_engine --mem-child KIND N [PATH]
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import (
    NODE_DIR,
    ROOT,
    Result,
    key_for,
    make_doc,
    make_result,
    median,
    peak_rss_bytes,
    rate_per_s,
    rss_bytes,
    time_call,
)

MB = 1024 * 1024


@dataclass(frozen=True)
class Sizes:
    insert_n: int  # inserts per timed repeat (a)
    insert_repeats: int
    insert_warmup: int
    query_docs: int  # table size for (b)
    query_hits: int  # documents per key
    queries: int  # timed queries per side (b and d)
    query_warmup: int
    bulk_batch: int  # documents per bulk-load transaction
    mem_docs: int  # table size for (c)
    ct_inserts: int  # inserts per timed repeat (d)
    ct_repeats: int
    ct_warmup: int
    ct_docs: int  # table size for the convex-test query (d)
    ct_rounds: int  # (d) alternates convex-test and the engine this many times


FULL = Sizes(
    insert_n=5000, insert_repeats=7, insert_warmup=1,
    query_docs=1_000_000, query_hits=100, queries=300, query_warmup=30, bulk_batch=10_000,
    mem_docs=1_000_000,
    ct_inserts=5000, ct_repeats=7, ct_warmup=2, ct_docs=10_000, ct_rounds=3,
)
QUICK = Sizes(
    insert_n=300, insert_repeats=3, insert_warmup=1,
    query_docs=20_000, query_hits=100, queries=30, query_warmup=5, bulk_batch=10_000,
    mem_docs=20_000,
    ct_inserts=300, ct_repeats=2, ct_warmup=1, ct_docs=2_000, ct_rounds=1,
)

GROUP_SQLITE = "engine vs raw sqlite3"
GROUP_MEMORY = "engine memory"
GROUP_CT = "engine vs convex-test (in memory)"


# --------------------------------------------------------------------------- the engine side


def engine_import_error() -> str | None:
    try:
        import convex_notebook as cn

        cn.Backend  # noqa: B018
        cn.define_schema  # noqa: B018
        from convex_notebook import v  # noqa: F401
    except Exception as exc:  # noqa: BLE001
        return f"{type(exc).__name__}: {exc}"
    return None


def make_app(path: str | None = None):
    """A Backend with the benchmark schema and functions ("add", "by_k").

    The query cache is off: every figure measures a real execution (repeated keys would
    otherwise be served from the cache, which neither raw sqlite3 nor convex-test has).
    """
    import convex_notebook as cn
    from convex_notebook import v

    fields = {
        "k": v.string(),
        "n": v.number(),
        "text": v.string(),
        "tags": v.array(v.string()),
        "score": v.number(),
        "done": v.boolean(),
    }
    schema = cn.define_schema({"docs": cn.define_table(dict(fields)).index("by_k", ["k"])})
    app = cn.Backend(path, schema=schema, query_cache_size=0)

    @app.mutation(args=dict(fields))
    def add(ctx, k, n, text, tags, score, done):
        return ctx.db.insert("docs", {"k": k, "n": n, "text": text, "tags": tags, "score": score, "done": done})

    @app.query(args={"k": v.string()})
    def by_k(ctx, k):
        return ctx.db.query("docs").with_index("by_k", lambda q: q.eq("k", k)).collect()

    return app


def close_app(app: Any) -> None:
    for name in ("close", "shutdown", "stop"):
        fn = getattr(app, name, None)
        if callable(fn):
            with contextlib.suppress(Exception):
                fn()
            return


def engine_bulk_load(app: Any, n_docs: int, n_keys: int, batch: int) -> None:
    """Fill "docs" through inline mutations of `batch` documents each (app.run(lambda ctx: ...))."""
    for start in range(0, n_docs, batch):
        end = min(n_docs, start + batch)

        def fill(ctx, start=start, end=end):
            insert = ctx.db.insert
            for i in range(start, end):
                insert("docs", make_doc(i, key_for(i, n_keys)))

        app.run(fill)


# --------------------------------------------------------------------------- the raw sqlite3 side


def raw_open(path: str) -> sqlite3.Connection:
    con = sqlite3.connect(path, isolation_level=None)  # explicit BEGIN/COMMIT below
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=NORMAL")
    con.execute("CREATE TABLE IF NOT EXISTS docs (id TEXT PRIMARY KEY, k TEXT, json TEXT)")
    con.execute("CREATE INDEX IF NOT EXISTS docs_by_k ON docs(k)")
    return con


def raw_new_id() -> str:
    return os.urandom(16).hex()


def raw_insert_one(con: sqlite3.Connection, doc: dict[str, Any]) -> None:
    con.execute("BEGIN")
    con.execute("INSERT INTO docs (id, k, json) VALUES (?, ?, ?)", (raw_new_id(), doc["k"], json.dumps(doc)))
    con.execute("COMMIT")


def raw_bulk_load(con: sqlite3.Connection, n_docs: int, n_keys: int, batch: int) -> None:
    for start in range(0, n_docs, batch):
        end = min(n_docs, start + batch)
        rows = []
        for i in range(start, end):
            doc = make_doc(i, key_for(i, n_keys))
            rows.append((raw_new_id(), doc["k"], json.dumps(doc)))
        con.execute("BEGIN")
        con.executemany("INSERT INTO docs (id, k, json) VALUES (?, ?, ?)", rows)
        con.execute("COMMIT")


def raw_query(con: sqlite3.Connection, k: str) -> list[dict[str, Any]]:
    return [json.loads(row[0]) for row in con.execute("SELECT json FROM docs WHERE k = ?", (k,))]


# --------------------------------------------------------------------------- helpers


def _query_keys(n: int, n_keys: int) -> list[str]:
    # A fixed pseudo-random walk over the keys (same keys for every side).
    return [f"k{(i * 7919 + 13) % n_keys}" for i in range(n)]


def _section(name: str, fn: Callable[[], list[Result]], fallback: Callable[[str], list[Result]]) -> list[Result]:
    """Run one figure's measurement; an exception becomes a 'not measured' row, never a crash."""
    try:
        return fn()
    except Exception as exc:  # noqa: BLE001
        traceback.print_exc()
        return fallback(f"ERROR in {name}: {type(exc).__name__}: {exc}")


def _no_engine(rows: list[tuple[str, str, float | None, str, str, str]], why: str) -> list[Result]:
    return [
        make_result(name, None, unit, base, base_name, goal=goal, group=group, note=f"engine not measured: {why}")
        for (name, unit, base, base_name, goal, group) in rows
    ]


# --------------------------------------------------------------------------- a. durable inserts


def _engine_insert_rate(path: str | None, docs: list[dict[str, Any]]) -> float:
    """``app.mutation("add", doc)`` for each doc on a fresh backend (``path`` None: in
    memory), after one warm-up mutation: mutations/s."""
    app = make_app(path)
    app.mutation("add", make_doc(-1, "warm"))

    def loop(app: Any = app) -> None:
        mutate = app.mutation
        for d in docs:
            mutate("add", d)

    dt = time_call(loop)
    close_app(app)
    return rate_per_s(len(docs), dt)


def bench_durable_inserts(sz: Sizes, engine_error: str | None) -> list[Result]:
    docs = [make_doc(i, key_for(i, 1000)) for i in range(sz.insert_n)]
    raw_rates: list[float] = []
    eng_rates: list[float] = []
    eng_err = engine_error
    tmp = tempfile.mkdtemp(prefix="cn-bench-insert-")
    try:
        for rep in range(sz.insert_warmup + sz.insert_repeats):
            # raw sqlite3, fresh file each repeat
            con = raw_open(os.path.join(tmp, f"raw{rep}.sqlite3"))
            raw_insert_one(con, make_doc(-1, "warm"))

            def raw_loop(con=con):
                for d in docs:
                    raw_insert_one(con, d)

            dt = time_call(raw_loop)
            con.close()
            if rep >= sz.insert_warmup:
                raw_rates.append(rate_per_s(len(docs), dt))

            # engine, fresh file each repeat (interleaved with raw to share any drift)
            if eng_err is None:
                try:
                    rate = _engine_insert_rate(os.path.join(tmp, f"engine{rep}.sqlite3"), docs)
                    if rep >= sz.insert_warmup:
                        eng_rates.append(rate)
                except Exception as exc:  # noqa: BLE001
                    traceback.print_exc()
                    eng_err = f"ERROR: {type(exc).__name__}: {exc}"
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    raw = median(raw_rates)
    note = (
        f"{sz.insert_n} sequential one-document transactions per repeat, median of {sz.insert_repeats} repeats "
        f"(+{sz.insert_warmup} warm-up), fresh file each repeat. Engine: `app.mutation(\"add\", doc)` on "
        "`cn.Backend(path, schema=...)` (args + schema validated, `by_k` index). Raw: `BEGIN; INSERT (id, k, json); "
        "COMMIT` with `json.dumps`, WAL, synchronous=NORMAL, index on k."
    )
    if eng_err is not None:
        note = f"engine not measured: {eng_err}. " + note
    return [
        make_result(
            "a. durable single-document insert mutations (file backend)",
            median(eng_rates) if eng_rates and eng_err is None else None,
            "tx/s",
            raw,
            "raw sqlite3 insert+commit",
            goal="≥ 0.5x",
            check=lambda r: r >= 0.5,
            group=GROUP_SQLITE,
            note=note,
            extra={"engine_rates": eng_rates, "raw_rates": raw_rates},
        )
    ]


# --------------------------------------------------------------------------- b. 100 of 1M query


def bench_query_1m(sz: Sizes, engine_error: str | None) -> list[Result]:
    n_keys = sz.query_docs // sz.query_hits
    keys = _query_keys(sz.query_warmup + sz.queries, n_keys)
    tmp = tempfile.mkdtemp(prefix="cn-bench-query-")
    out: list[Result] = []
    try:
        con = raw_open(os.path.join(tmp, "raw.sqlite3"))
        raw_load_s = time_call(lambda: raw_bulk_load(con, sz.query_docs, n_keys, sz.bulk_batch))
        assert len(raw_query(con, "k0")) == sz.query_hits

        app = None
        eng_err = engine_error
        eng_load_s = None
        if eng_err is None:
            try:
                app = make_app(os.path.join(tmp, "engine.sqlite3"))
                eng_load_s = time_call(lambda: engine_bulk_load(app, sz.query_docs, n_keys, sz.bulk_batch))
                got = app.query("by_k", {"k": "k0"})
                if len(got) != sz.query_hits:
                    raise AssertionError(f"by_k returned {len(got)} documents, expected {sz.query_hits}")
            except Exception as exc:  # noqa: BLE001
                traceback.print_exc()
                eng_err = f"ERROR: {type(exc).__name__}: {exc}"
                app = None

        raw_lat: list[float] = []
        eng_lat: list[float] = []
        gc.collect()
        for i, k in enumerate(keys):
            t0 = time.perf_counter()
            rows = raw_query(con, k)
            t1 = time.perf_counter()
            if len(rows) != sz.query_hits:
                raise AssertionError(f"raw query returned {len(rows)} rows")
            if i >= sz.query_warmup:
                raw_lat.append(t1 - t0)
            if app is not None:
                t0 = time.perf_counter()
                docs = app.query("by_k", {"k": k})
                t1 = time.perf_counter()
                if len(docs) != sz.query_hits:
                    raise AssertionError(f"engine query returned {len(docs)} documents")
                if i >= sz.query_warmup:
                    eng_lat.append(t1 - t0)
        con.close()
        if app is not None:
            close_app(app)
            del app
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    size = f"{sz.query_docs:,}"
    note_q = (
        f"{sz.query_hits} of {size} documents ({n_keys:,} distinct `k`), median of {sz.queries} queries on "
        f"different keys (+{sz.query_warmup} warm-up), sides interleaved. Engine: `app.query(\"by_k\", {{\"k\": ...}})` "
        "on the file backend (`with_index(\"by_k\", eq).collect()`). Raw: `SELECT json FROM docs WHERE k = ?` + "
        "`json.loads` of each row. The raw side runs on SQLite's default settings; the engine's store "
        "sets a 64 MiB page cache and reads the file through a 1 GiB memory map (`PRAGMA mmap_size`)."
    )
    if eng_err is not None:
        note_q = f"engine not measured: {eng_err}. " + note_q
    out.append(
        make_result(
            f"b. with_index eq query, {sz.query_hits} of {size} docs (file backend)",
            median(eng_lat) if eng_lat else None,
            "s",
            median(raw_lat),
            "raw sqlite3 indexed SELECT + json.loads",
            goal="≤ 2x",
            check=lambda r: r <= 2.0,
            group=GROUP_SQLITE,
            note=note_q,
            extra={"engine_latencies_s": eng_lat, "raw_latencies_s": raw_lat},
        )
    )
    out.append(
        make_result(
            f"bulk load of {size} docs ({sz.bulk_batch:,} per transaction, file backend)",
            rate_per_s(sz.query_docs, eng_load_s) if eng_load_s else None,
            "docs/s",
            rate_per_s(sz.query_docs, raw_load_s),
            "raw sqlite3 executemany",
            goal="",
            group=GROUP_SQLITE,
            note="informational: how the table for b. was built (engine: `app.run(lambda ctx: ...)` inserting "
            f"{sz.bulk_batch:,} documents per call).",
        )
    )
    return out


# --------------------------------------------------------------------------- c. memory


def _mem_child(kind: str, n: int, path: str | None) -> dict[str, Any]:
    """Runs in a child process: RSS growth of holding n documents in `kind`."""
    n_keys = max(1, n // 100)
    keep: Any = None
    if kind in ("memory", "file"):
        # Import and set up everything before the first RSS reading, so only the data counts.
        app = make_app(path if kind == "file" else None)
        app.mutation("add", make_doc(-1, "warm"))
        gc.collect()
        before = rss_bytes()
        engine_bulk_load(app, n, n_keys, 10_000)
        keep = app
        assert len(app.query("by_k", {"k": "k0"})) == 100 or n < 100
    elif kind == "list":
        gc.collect()
        before = rss_bytes()
        docs = []
        t0 = time.time() * 1000
        for i in range(n):
            d = make_doc(i, key_for(i, n_keys))
            d["_id"] = os.urandom(16).hex()
            d["_creationTime"] = t0 + i
            docs.append(d)
        keep = docs
    else:
        raise SystemExit(f"unknown kind {kind!r}")
    gc.collect()
    after = rss_bytes()
    peak = peak_rss_bytes()
    res = {
        "kind": kind,
        "n": n,
        "rss_before": before,
        "rss_after": after,
        "growth": after - before,
        "peak": peak,
        "peak_growth": peak - before,
    }
    if kind == "file" and path:
        res["file_bytes"] = sum(
            os.path.getsize(p) for p in (path, path + "-wal", path + "-shm") if os.path.exists(p)
        )
    del keep
    return res


def _run_mem_child(kind: str, n: int, path: str | None = None) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "bench.bench_engine", "--mem-child", kind, str(n)]
    if path:
        cmd.append(path)
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    proc = subprocess.run(cmd, check=False, cwd=ROOT, env=env, capture_output=True, text=True, timeout=3600)
    if proc.returncode != 0:
        raise RuntimeError(f"memory child {kind} failed (exit {proc.returncode}): {proc.stderr.strip()[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def bench_memory(sz: Sizes, engine_error: str | None) -> list[Result]:
    n = sz.mem_docs
    base = _run_mem_child("list", n)
    base_mb = base["growth"] / MB
    base_name = "same docs as a Python list of dicts"
    size = f"{n:,}"
    out: list[Result] = []
    for kind, label in (("memory", "cn.Backend() in memory"), ("file", "cn.Backend(path) file")):
        name = f"c. RSS growth, {size}-doc table, {label}"
        if engine_error is not None:
            out.append(make_result(name, None, "MB", base_mb, base_name, group=GROUP_MEMORY,
                                   note=f"engine not measured: {engine_error}"))
            continue
        tmp = tempfile.mkdtemp(prefix="cn-bench-mem-")
        try:
            path = os.path.join(tmp, "engine.sqlite3") if kind == "file" else None
            try:
                res = _run_mem_child(kind, n, path)
            except Exception as exc:  # noqa: BLE001
                out.append(make_result(name, None, "MB", base_mb, base_name, group=GROUP_MEMORY,
                                       note=f"engine not measured: {exc}"))
                continue
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        note = (
            f"resident growth after building the table and `gc.collect()` (child process; peak growth "
            f"{res['peak_growth'] / MB:,.0f} MB vs {base['peak_growth'] / MB:,.0f} MB for the list)"
        )
        if "file_bytes" in res:
            note += f"; database file {res['file_bytes'] / MB:,.0f} MB on disk"
        out.append(
            make_result(name, res["growth"] / MB, "MB", base_mb, base_name, goal="informational",
                        group=GROUP_MEMORY, note=note, extra={"child": res, "baseline_child": base})
        )
    return out


# --------------------------------------------------------------------------- d. vs convex-test


def run_convex_test_bench(args: list[str], timeout: float = 1800) -> dict[str, Any]:
    """Run bench/node/convex_test_bench.mjs and return its JSON. Raises if Node or deps are missing."""
    node = shutil.which("node")
    if node is None:
        raise FileNotFoundError("node not found on PATH")
    if not (NODE_DIR / "node_modules" / "convex-test").is_dir():
        raise FileNotFoundError(f"{NODE_DIR}/node_modules missing: run `npm ci` in bench/node (scripts/bench does)")
    proc = subprocess.run([node, "convex_test_bench.mjs", *args], check=False, cwd=NODE_DIR, capture_output=True,
                          text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"convex_test_bench.mjs failed (exit {proc.returncode}): {proc.stderr.strip()[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _engine_insert_rates(docs: list[dict[str, Any]], repeats: int, warmup: int) -> list[float]:
    """(d) in-memory insert mutations/s: a fresh ``cn.Backend()`` per repeat."""
    rates = [_engine_insert_rate(None, docs) for _ in range(warmup + repeats)]
    return rates[warmup:]


def _engine_query_latencies(app: Any, keys: list[str], hits: int) -> list[float]:
    """(d) ``app.query("by_k", ...)`` latency for each key."""
    lats = []
    for k in keys:
        t0 = time.perf_counter()
        got = app.query("by_k", {"k": k})
        t1 = time.perf_counter()
        if len(got) != hits:
            raise AssertionError(f"engine query returned {len(got)} documents, expected {hits}")
        lats.append(t1 - t0)
    return lats


def bench_vs_convex_test(sz: Sizes, engine_error: str | None) -> list[Result]:
    """convex-test and the engine in alternating rounds (each round a share of the repeats and
    queries; convex-test warms up again in each of its processes), so that both sides share
    the machine's drift; medians over every round's samples."""
    hits = 100
    n_keys = sz.ct_docs // hits
    rounds = sz.ct_rounds
    repeats = -(-sz.ct_repeats // rounds)
    queries = -(-sz.queries // rounds)
    keys = _query_keys(sz.query_warmup + rounds * queries, n_keys)
    docs = [make_doc(i, key_for(i, 1000)) for i in range(sz.ct_inserts)]
    ct_rates: list[float] = []
    ct_lats: list[float] = []
    rates: list[float] = []
    lats: list[float] = []
    eng_err = engine_error
    query_app = None
    try:
        for rnd in range(rounds):
            ct = run_convex_test_bench([
                "--inserts", str(sz.ct_inserts), "--repeats", str(repeats), "--warmup", str(sz.ct_warmup),
                "--query-docs", str(sz.ct_docs), "--query-hits", str(hits), "--queries", str(queries),
            ])
            ct_rates += ct["insert_rates_per_s"]
            ct_lats += ct["query_latencies_s"]
            if eng_err is not None:
                continue
            try:
                rates += _engine_insert_rates(docs, repeats, sz.ct_warmup)
                if query_app is None:
                    query_app = make_app(None)
                    engine_bulk_load(query_app, sz.ct_docs, n_keys, 1000)
                    _engine_query_latencies(query_app, keys[: sz.query_warmup], hits)
                    gc.collect()
                start = sz.query_warmup + rnd * queries
                lats += _engine_query_latencies(query_app, keys[start : start + queries], hits)
            except Exception as exc:  # noqa: BLE001
                traceback.print_exc()
                eng_err = f"ERROR: {type(exc).__name__}: {exc}"
    finally:
        if query_app is not None:
            close_app(query_app)
    ct_rate, ct_lat = median(ct_rates), median(ct_lats)
    ct_name = f"convex-test {ct['convex_test']} (convex {ct['convex']}, Node {ct['node']})"
    eng_rate = median(rates) if eng_err is None else None
    eng_q = median(lats) if eng_err is None else None

    prefix = f"engine not measured: {eng_err}. " if eng_err else ""
    return [
        make_result(
            "d. insert mutations, in memory",
            eng_rate, "tx/s", ct_rate, ct_name,
            goal="≥ 1x", check=lambda r: r >= 1.0, group=GROUP_CT,
            note=prefix + f"{sz.ct_inserts} sequential `mutation(\"add\", doc)` calls per repeat on a fresh "
            f"`cn.Backend()` / `convexTest(schema, modules)`, median of {rounds * repeats} per side, in {rounds} "
            f"round{'s' if rounds != 1 else ''} alternating the sides (+{sz.ct_warmup} warm-up a round); both validate args and schema.",
            extra={"engine_rates": rates, "convex_test_rates": ct_rates, "convex_test": ct},
        ),
        make_result(
            f"d. with_index eq query, {hits} of {sz.ct_docs:,} docs, in memory",
            eng_q, "s", ct_lat, ct_name,
            goal="≤ 0.1x (≥ 10x faster)", check=lambda r: r <= 0.1, group=GROUP_CT,
            note=prefix + f"median of {rounds * queries} queries on different keys per side, in the same "
            "alternating rounds (+warm-up); "
            "`app.query(\"by_k\", ...)` vs `await t.query(api.bench.byK, ...)`"
            + (f"; engine is {ct_lat / eng_q:,.1f}x faster" if eng_q else ""),
            extra={"engine_latencies_s": lats},
        ),
    ]


# --------------------------------------------------------------------------- entry points


def run(quick: bool) -> list[Result]:
    sz = QUICK if quick else FULL
    err = engine_import_error()
    if err is not None:
        print(f"[bench engine] convex_notebook engine not importable, measuring baselines only: {err}",
              file=sys.stderr)
    results: list[Result] = []
    results += _section("a", lambda: bench_durable_inserts(sz, err), lambda why: [
        make_result("a. durable single-document insert mutations (file backend)", None, "tx/s", None,
                    "raw sqlite3 insert+commit", goal="≥ 0.5x", group=GROUP_SQLITE, note=why)])
    results += _section("b", lambda: bench_query_1m(sz, err), lambda why: [
        make_result(f"b. with_index eq query, 100 of {sz.query_docs:,} docs (file backend)", None, "s", None,
                    "raw sqlite3 indexed SELECT + json.loads", goal="≤ 2x", group=GROUP_SQLITE, note=why)])
    results += _section("c", lambda: bench_memory(sz, err), lambda why: [
        make_result(f"c. RSS growth, {sz.mem_docs:,}-doc table", None, "MB", None,
                    "same docs as a Python list of dicts", group=GROUP_MEMORY, note=why)])
    results += _section("d", lambda: bench_vs_convex_test(sz, err), lambda why: [
        make_result("d. insert mutations, in memory", None, "tx/s", None, "convex-test", goal="≥ 1x",
                    group=GROUP_CT, note=why),
        make_result(f"d. with_index eq query, 100 of {sz.ct_docs:,} docs, in memory", None, "s", None,
                    "convex-test", goal="≤ 0.1x (≥ 10x faster)", group=GROUP_CT, note=why)])
    return results


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "--mem-child":
        kind, n = sys.argv[2], int(sys.argv[3])
        path = sys.argv[4] if len(sys.argv) > 4 else None
        print(json.dumps(_mem_child(kind, n, path)))
    else:
        from bench.run import main

        sys.exit(main(["--only", "engine", *sys.argv[1:]]))
