"""Property tests (hypothesis, seeded): random programs of concurrent mutations are serializable,
and old revisions never make an index ``take(n)`` come back short.

Serializability oracle: threads run random mutations (increment, move a value between documents,
insert, delete) over a few keys side by side on one Backend. Each call records its result and its
commit timestamp (``app.invoke(...).ts``: every mutation here writes, so each has its own commit).
Replaying the committed calls one at a time in commit order on a fresh Backend must give every
call the same result and the same final state. Calls refused after repeated conflicts
(``cn.ConvexFunctionError``) must have written nothing: the replay leaves them out.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

import convex_notebook as cn
from convex_notebook import v

from mvcc_helpers import WAIT, Worker

# A timeout here ends the run with every thread's stack (pytest-timeout's thread method): the
# default (a signal) raises inside hypothesis's example, which then shrinks for a long time.
pytestmark = pytest.mark.timeout(300, method="thread")

NAMES = ["a", "b", "c"]
PROPERTY = settings(max_examples=40, deadline=None, database=None, derandomize=False,
                    suppress_health_check=[HealthCheck.too_slow])

name_st = st.sampled_from(NAMES)
op_st = st.one_of(
    st.tuples(st.just("inc"), name_st, st.integers(1, 5)),
    st.tuples(st.just("move"), name_st, name_st, st.integers(1, 5)),
    st.tuples(st.just("insert"), name_st),
    st.tuples(st.just("delete"), name_st),
)
program_st = st.lists(st.lists(op_st, min_size=1, max_size=6), min_size=2, max_size=4)


def bank() -> cn.Backend:
    schema = cn.define_schema({
        "accts": cn.define_table({"name": v.string(), "serial": v.number(), "value": v.number()})
        .index("by_name", ["name", "serial"]),
        "journal": cn.define_table({"token": v.number()}),
    })
    app = cn.Backend(schema=schema, echo_logs=False, query_cache_size=0)

    def first(ctx: Any, name: str) -> Any:
        return ctx.db.query("accts").with_index("by_name", lambda q: q.eq("name", name)).first()

    @app.mutation
    def apply(ctx: Any, op: list, token: float) -> Any:
        """One operation; returns what it saw ([serial, value] of each document it used)."""
        kind = op[0]
        out: Any = None
        if kind == "inc":
            d = first(ctx, op[1])
            if d is not None:
                ctx.db.patch(d["_id"], {"value": d["value"] + op[2]})
                out = [d["serial"], d["value"]]
        elif kind == "move":
            s, t = first(ctx, op[1]), first(ctx, op[2])
            if s is not None and t is not None and s["_id"] != t["_id"]:
                ctx.db.patch(s["_id"], {"value": s["value"] - op[3]})
                ctx.db.patch(t["_id"], {"value": t["value"] + op[3]})
                out = [[s["serial"], s["value"]], [t["serial"], t["value"]]]
        elif kind == "insert":
            ctx.db.insert("accts", {"name": op[1], "serial": token, "value": 0})
        elif kind == "delete":
            d = first(ctx, op[1])
            if d is not None:
                ctx.db.delete(d["_id"])
                out = [d["serial"], d["value"]]
        ctx.db.insert("journal", {"token": token})  # every call writes: its own commit ts
        return out

    for i, name in enumerate(NAMES):
        app.run(lambda ctx, i=i, name=name: ctx.db.insert("accts", {"name": name, "serial": -1 - i, "value": 10}))
    return app


def state(app: cn.Backend) -> tuple[list, list]:
    accts = sorted((d["name"], d["serial"], d["value"]) for d in app.run(lambda ctx: ctx.db.query("accts").collect()))
    tokens = sorted(d["token"] for d in app.run(lambda ctx: ctx.db.query("journal").collect()))
    return accts, tokens


def run_concurrently(app: cn.Backend, program: list[list[tuple]]) -> list[dict]:
    start = threading.Barrier(len(program), timeout=WAIT)
    records: list[dict] = []
    lock = threading.Lock()

    def thread(t: int, ops: list[tuple]) -> None:
        start.wait()
        for i, op in enumerate(ops):
            token = float(t * 100 + i)
            inv = app.invoke("apply", {"op": list(op), "token": token}, kind="mutation")
            with lock:
                records.append({"thread": t, "i": i, "op": list(op), "token": token, "ts": inv.ts,
                                "value": inv.value, "error": inv.error})

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # switch threads often: more interleavings per example
    try:
        workers = [Worker(lambda t=t, ops=ops: thread(t, ops), f"t{t}") for t, ops in enumerate(program)]
        for w in workers:
            w.result(timeout=120)
    finally:
        sys.setswitchinterval(old)
    return records


@pytest.mark.slow
@seed(20261206)
@PROPERTY
@given(program=program_st)
def test_concurrent_mutations_equal_a_serial_replay_in_commit_order(program):
    app = bank()
    try:
        records = run_concurrently(app, program)
        final = state(app)
    finally:
        app.close()
    committed = [r for r in records if r["error"] is None]
    for r in records:
        if r["error"] is not None:  # only "too many conflicts" may refuse a call
            assert isinstance(r["error"], cn.ConvexFunctionError), r
            assert "accts" in str(r["error"]) or "journal" in str(r["error"]), r
    stamps = [r["ts"] for r in committed]
    assert len(set(stamps)) == len(stamps), "two commits share a timestamp"
    for t in range(len(program)):  # a thread's calls commit in its program order
        mine = [r["ts"] for r in sorted(committed, key=lambda r: r["i"]) if r["thread"] == t]
        assert mine == sorted(mine)

    replay = bank()
    try:
        for r in sorted(committed, key=lambda r: r["ts"]):
            assert replay.mutation("apply", {"op": r["op"], "token": r["token"]}) == r["value"], r
        assert state(replay) == final
    finally:
        replay.close()
    assert final[1] == sorted(r["token"] for r in committed)  # refused calls left no journal row


# --------------------------------------------------------------------------- take(n) over old revisions

GROUPS = 3
START = 60
step_st = st.tuples(st.sampled_from(["move", "bump", "delete", "insert"]), st.integers(0, START - 1),
                    st.integers(0, GROUPS - 1))


def ranked() -> cn.Backend:
    schema = cn.define_schema({
        "items": cn.define_table({"g": v.number(), "rank": v.number(), "v": v.number()}).index("by_g", ["g", "rank"]),
    })
    app = cn.Backend(schema=schema, echo_logs=False, query_cache_size=0)

    @app.query
    def top(ctx: Any, g: float, n: float, desc: bool) -> Any:
        q = ctx.db.query("items").with_index("by_g", lambda r: r.eq("g", g))
        return [d["rank"] for d in (q.order("desc") if desc else q).take(int(n))]

    return app


def churn(app: cn.Backend, steps: list[tuple], on_step: Any = None) -> dict[str, tuple[float, float]]:
    """Apply ``steps`` one commit each; return the model: id -> (group, rank)."""
    ids = app.run(lambda ctx: [ctx.db.insert("items", {"g": float(i % GROUPS), "rank": float(i), "v": 0})
                               for i in range(START)])
    model = {id_: (float(i % GROUPS), float(i)) for i, id_ in enumerate(ids)}
    for k, (kind, which, group) in enumerate(steps):
        target = ids[which]
        if kind == "insert":
            new = app.run(lambda ctx, k=k, group=group: ctx.db.insert("items", {"g": float(group), "rank": 2000.0 + k, "v": 0}))
            model[new] = (float(group), 2000.0 + k)
        elif target in model:
            if kind == "move":  # a new index key: the old entry becomes an old revision
                app.run(lambda ctx, k=k, group=group, target=target: ctx.db.patch(target, {"g": float(group), "rank": 1000.0 + k}))
                model[target] = (float(group), 1000.0 + k)
            elif kind == "bump":  # same key, new document revision
                app.run(lambda ctx, target=target: ctx.db.patch(target, {"v": ctx.db.get(target)["v"] + 1}))
            else:
                app.run(lambda ctx, target=target: ctx.db.delete(target))
                del model[target]
        if on_step is not None:
            on_step(k, dict(model))
    return model


def expected_top(model: dict[str, tuple[float, float]], g: int, n: int, desc: bool) -> list[float]:
    ranks = sorted((r for (grp, r) in model.values() if grp == g), reverse=desc)
    return ranks[:n]


@seed(20261207)
@PROPERTY
@given(steps=st.lists(step_st, min_size=10, max_size=150))
def test_take_n_never_comes_back_short_after_updates_and_deletes(steps):
    app = ranked()
    try:
        model = churn(app, steps)
        for g in range(GROUPS):
            for n in (1, 2, 5, 19, 20, 21, 100):
                for desc in (False, True):
                    assert app.query("top", {"g": g, "n": n, "desc": desc}) == expected_top(model, g, n, desc), (g, n, desc)
    finally:
        app.close()


@seed(20261208)
@PROPERTY
@given(steps=st.lists(step_st, min_size=10, max_size=120), at=st.floats(0, 1))
def test_take_n_at_a_past_timestamp_is_the_past_prefix(steps, at):
    app = ranked()
    marks: list[tuple[int, dict]] = []
    try:
        midpoint = int(at * (len(steps) - 1))
        churn(app, steps, on_step=lambda k, model: marks.append((app.latest_ts(), model)) if k == midpoint else None)
        ts, model = marks[0]
        for g in range(GROUPS):
            for n in (1, 5, 20, 100):
                for desc in (False, True):
                    got = app.query("top", {"g": g, "n": n, "desc": desc}, at=ts)
                    assert got == expected_top(model, g, n, desc), (g, n, desc)
    finally:
        app.close()
