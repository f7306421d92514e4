"""Per-transaction limits: exceeding one fails the function and writes nothing."""

from __future__ import annotations

import pytest

import convex_notebook as cn

from engine_helpers import fails


@pytest.fixture
def small():
    limits = cn.TransactionLimits(
        documents_read=5, bytes_read=100_000, index_ranges=10, documents_written=3, bytes_written=10_000
    )
    backend = cn.Backend(clock=cn.VirtualClock(), echo_logs=False, limits=limits)
    yield backend
    backend.close()


def test_documents_written(small):
    small.run(lambda ctx: [ctx.db.insert("t", {}) for _ in range(3)])
    fails(small, lambda ctx: [ctx.db.insert("t", {}) for _ in range(4)], "Wrote too many documents in one transaction (limit: 3)")
    assert small.count("t") == 3


def test_bytes_written(small):
    fails(small, lambda ctx: ctx.db.insert("t", {"x": "y" * 20_000}), "Wrote too much data in one transaction")
    assert small.count("t") == 0


def test_documents_read(small):
    small.run(lambda ctx: [ctx.db.insert("t", {}) for _ in range(3)])
    small.run(lambda ctx: [ctx.db.insert("t", {}) for _ in range(3)])
    assert len(small.run(lambda ctx: ctx.db.query("t").take(5))) == 5
    fails(small, lambda ctx: ctx.db.query("t").collect(), "Scanned too many documents in one transaction (limit: 5)")

    @small.query
    def everything(ctx):
        return ctx.db.query("t").collect()

    with pytest.raises(cn.ConvexFunctionError, match="Scanned too many documents"):
        small.query("everything")


def test_filtered_out_documents_count_as_read(small):
    small.run(lambda ctx: [ctx.db.insert("t", {"n": i}) for i in range(3)])
    small.run(lambda ctx: [ctx.db.insert("t", {"n": i}) for i in range(3, 6)])
    fails(small, lambda ctx: ctx.db.query("t").filter(lambda q: q.eq(q.field("n"), 5)).first(), "Scanned too many documents")


def test_index_ranges(small):
    small.run(lambda ctx: [ctx.db.query("empty").first() for _ in range(10)])
    fails(small, lambda ctx: [ctx.db.query("empty").first() for _ in range(11)], "Too many index ranges read")


def test_limits_are_per_transaction(small):
    for _ in range(4):
        small.run(lambda ctx: [ctx.db.insert("t", {}) for _ in range(3)])
    assert small.count("t") == 12
