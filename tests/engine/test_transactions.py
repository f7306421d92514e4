"""Transactions (conformance §3.4): atomicity, own writes, sub-transactions, read sets."""

from __future__ import annotations

import pytest

import convex_notebook as cn
from convex_notebook import define_schema, define_table, v
from convex_notebook.engine import Database, KeyRange, Query, VirtualClock

from engine_helpers import all_docs


class Boom(Exception):
    pass


def test_an_exception_rolls_back_every_write(app):
    keep = app.run(lambda ctx: ctx.db.insert("t", {"n": 1}))
    gone = app.run(lambda ctx: ctx.db.insert("t", {"n": 2}))
    before = all_docs(app, "t")

    def fail(ctx):
        ctx.db.insert("t", {"n": 3})
        ctx.db.insert("brand_new", {"x": 1})
        ctx.db.patch(keep, {"n": 100})
        ctx.db.replace(gone, {"other": True})
        ctx.db.delete(gone)
        raise Boom("no")

    with pytest.raises(cn.ConvexFunctionError, match="no") as info:
        app.run(fail)
    assert isinstance(info.value.__cause__, Boom)
    assert all_docs(app, "t") == before
    assert app.table_names() == ["t"]
    # the backend keeps working, and a later insert can create the table for real
    app.run(lambda ctx: ctx.db.insert("brand_new", {"x": 2}))
    assert [d["x"] for d in all_docs(app, "brand_new")] == [2.0]


def test_convex_error_rolls_back_and_keeps_its_data(app):
    @app.mutation
    def refuse(ctx):
        ctx.db.insert("t", {})
        raise cn.ConvexError({"code": "nope", "n": 1})

    with pytest.raises(cn.ConvexError) as info:
        app.mutation("refuse")
    assert info.value.data == {"code": "nope", "n": 1}
    assert app.count("t") == 0


def test_failed_mutation_does_not_advance_creation_times(app):
    a = app.run(lambda ctx: ctx.db.insert("t", {}))

    def fail(ctx):
        ctx.db.insert("t", {})
        raise Boom()

    with pytest.raises(cn.ConvexFunctionError):
        app.run(fail)
    b = app.run(lambda ctx: ctx.db.insert("t", {}))
    ta, tb = (app.run(lambda ctx, i=i: ctx.db.get(i))["_creationTime"] for i in (a, b))
    assert ta < tb


def test_reads_see_the_transactions_own_writes(app):
    def work(ctx):
        doc_id = ctx.db.insert("t", {"n": 1})
        seen = [ctx.db.get(doc_id)["n"]]
        ctx.db.patch(doc_id, {"n": 2})
        seen.append(ctx.db.get(doc_id)["n"])
        seen.append([d["n"] for d in ctx.db.query("t").collect()])
        ctx.db.delete(doc_id)
        seen.append(ctx.db.get(doc_id))
        seen.append(ctx.db.query("t").collect())
        return seen

    assert app.run(work) == [1.0, 2.0, [2.0], None, []]


def test_read_modify_write_reads_the_document_from_the_store_once(app):
    """A patch, delete or get after a query found the document takes the row the query read
    (one snapshot: it cannot have changed) and sees the transaction's own writes over it."""
    doc_id = app.run(lambda ctx: ctx.db.insert("t", {"n": 1, "k": "a"}))
    statements: list[str] = []
    reader = app._db.store.reader()  # (this thread's snapshot connection)
    reader.conn.set_trace_callback(statements.append)

    def work(ctx):
        [doc] = ctx.db.query("t").collect()
        ctx.db.patch(doc["_id"], {"n": doc["n"] + 1})
        after_patch = ctx.db.get(doc_id)["n"]
        ctx.db.delete(doc_id)
        return after_patch, ctx.db.get(doc_id)

    try:
        assert app.run(work) == [2.0, None]  # (a tuple comes back as an array)
    finally:
        reader.conn.set_trace_callback(None)
    assert [s for s in statements if s.startswith("SELECT") and "FROM documents" in s and "key = " in s] == []
    assert app.run(lambda ctx: ctx.db.get(doc_id)) is None


def test_caught_sub_mutation_failure_rolls_back_only_the_sub_transaction(app):
    @app.internal_mutation
    def child(ctx, fail):
        ctx.db.insert("t", {"who": "child"})
        ctx.db.insert("child_only", {})
        if fail:
            raise Boom("child failed")
        return "ok"

    @app.mutation
    def parent(ctx):
        ctx.db.insert("t", {"who": "parent-before"})
        assert ctx.run_mutation(child, {"fail": False}) == "ok"
        try:
            ctx.run_mutation(child, {"fail": True})
        except cn.ConvexFunctionError:
            pass
        ctx.db.insert("t", {"who": "parent-after"})
        return [d["who"] for d in ctx.db.query("t").collect()]

    seen = app.mutation("parent")
    assert seen == ["parent-before", "child", "parent-after"]
    assert [d["who"] for d in all_docs(app, "t")] == seen
    assert app.count("child_only") == 1


def test_rolled_back_sub_transaction_drops_the_table_it_created(app):
    @app.internal_mutation
    def child(ctx):
        ctx.db.insert("created_by_child", {})
        raise Boom()

    @app.mutation
    def parent(ctx):
        try:
            ctx.run_mutation(child)
        except cn.ConvexFunctionError:
            pass
        return ctx.db.query("created_by_child").collect()

    assert app.mutation("parent") == []
    assert "created_by_child" not in app.table_names()


def test_committed_sub_transaction_rolls_back_with_its_parent(app):
    @app.internal_mutation
    def child(ctx):
        ctx.db.insert("t", {"who": "child"})

    @app.mutation
    def parent(ctx):
        ctx.run_mutation(child)
        raise cn.ConvexError("parent failed")

    with pytest.raises(cn.ConvexError):
        app.mutation("parent")
    assert app.count("t") == 0


def test_nested_sub_transactions(app):
    @app.internal_mutation
    def leaf(ctx, fail):
        ctx.db.insert("t", {"who": "leaf"})
        if fail:
            raise Boom()

    @app.internal_mutation
    def middle(ctx):
        ctx.db.insert("t", {"who": "middle"})
        ctx.run_mutation(leaf, {"fail": False})
        try:
            ctx.run_mutation(leaf, {"fail": True})
        except cn.ConvexFunctionError:
            pass
        raise Boom()  # undoes middle and its committed leaf

    @app.mutation
    def top(ctx):
        ctx.db.insert("t", {"who": "top"})
        try:
            ctx.run_mutation(middle)
        except cn.ConvexFunctionError:
            pass
        ctx.run_mutation(leaf, {"fail": False})

    app.mutation("top")
    assert [d["who"] for d in all_docs(app, "t")] == ["top", "leaf"]


def test_mutation_in_a_query_is_refused(app):
    @app.internal_mutation
    def write(ctx):
        ctx.db.insert("t", {})

    @app.query
    def sneaky(ctx):
        return ctx.run_mutation(write)

    with pytest.raises(cn.ConvexFunctionError, match="run_mutation"):
        app.query("sneaky")
    assert app.count("t") == 0


# -- read sets, through the Database API --------------------------------------------------------
@pytest.fixture
def db():
    database = Database(clock=VirtualClock())
    database.set_schema(define_schema({"r": define_table({"rank": v.number()}).index("by_rank", ["rank"])}))
    with database.write() as txn:
        for rank in (1, 2, 3, 4):
            txn.insert("r", {"rank": rank})
    yield database
    database.close()


def writes_of(db: Database, fn):
    """The write set of running ``fn(txn)``, rolled back afterwards."""
    class Undo(Exception):
        pass

    captured = []
    try:
        with db.write() as txn:
            fn(txn)
            captured.append(txn.writes)
            raise Undo()
    except Undo:
        pass
    return captured[0]


def test_read_set_covers_only_what_take_read(db):
    with db.read() as txn:
        docs = Query(txn, "r").with_index("by_rank", lambda q: q.gt("rank", 0)).take(2)
        reads = txn.reads
    assert [d["rank"] for d in docs] == [1.0, 2.0]
    assert [(r.table, r.index) for r in reads.ranges] == [("r", "by_rank")]
    assert reads.intersects(writes_of(db, lambda t: t.insert("r", {"rank": 1.5})))
    assert not reads.intersects(writes_of(db, lambda t: t.insert("r", {"rank": 2.5})))
    assert not reads.intersects(writes_of(db, lambda t: t.insert("r", {"rank": 0})))
    assert not reads.intersects(writes_of(db, lambda t: t.insert("other", {"rank": 1.5})))


def test_empty_range_read_covers_the_whole_range(db):
    with db.read() as txn:
        assert Query(txn, "r").with_index("by_rank", lambda q: q.gt("rank", 10).lt("rank", 20)).collect() == []
        reads = txn.reads
    assert len(reads.ranges) == 1 and not reads.ranges[0].empty
    assert reads.intersects(writes_of(db, lambda t: t.insert("r", {"rank": 15})))
    assert not reads.intersects(writes_of(db, lambda t: t.insert("r", {"rank": 25})))


def test_point_read_and_writes_that_move_a_document_out_of_a_range(db):
    with db.read() as txn:
        first = Query(txn, "r").with_index("by_rank", lambda q: q.eq("rank", 1)).unique()
    with db.read() as txn:
        assert txn.get(first["_id"])["rank"] == 1.0
        point = txn.reads
    with db.read() as txn:
        Query(txn, "r").with_index("by_rank", lambda q: q.lt("rank", 2)).collect()
        low = txn.reads
    others = writes_of(db, lambda t: t.insert("r", {"rank": 7}))
    assert not point.intersects(others) and not low.intersects(others)
    moved = writes_of(db, lambda t: t.patch(first["_id"], {"rank": 9}))
    assert point.intersects(moved)
    assert low.intersects(moved)  # through the old key


def test_reading_a_missing_table_is_recorded(db):
    with db.read() as txn:
        assert Query(txn, "later").collect() == []
        assert Query(txn, "later").first() is None
        reads = txn.reads
    assert all(isinstance(r, KeyRange) and r.table == "later" for r in reads.ranges)
    assert reads.intersects(writes_of(db, lambda t: t.insert("later", {})))


def test_full_scan_records_the_whole_table(db):
    with db.read() as txn:
        Query(txn, "r").collect()
        reads = txn.reads
    assert reads.intersects(writes_of(db, lambda t: t.insert("r", {"rank": 100})))


def test_read_transactions_cannot_write(db):
    with db.read() as txn:
        with pytest.raises(cn.DatabaseError, match="queries are read-only"):
            txn.insert("r", {"rank": 1})


def test_database_write_block_commits_or_rolls_back(db):
    with pytest.raises(RuntimeError):
        with db.write() as txn:
            txn.insert("r", {"rank": 50})
            raise RuntimeError()
    with db.read() as txn:
        assert Query(txn, "r").with_index("by_rank", lambda q: q.eq("rank", 50)).collect() == []
    with db.write() as txn:
        txn.insert("r", {"rank": 50})
    with db.read() as txn:
        assert len(Query(txn, "r").with_index("by_rank", lambda q: q.eq("rank", 50)).collect()) == 1


def test_commit_listeners_receive_the_write_set(db):
    seen = []
    db.commit_listeners.append(lambda writes, ts: seen.append((sorted(writes.tables), writes.documents, ts)))
    with db.write() as txn:
        txn.insert("r", {"rank": 8})
    with db.read() as txn:
        Query(txn, "r").collect()
    with db.write():  # writes nothing
        pass
    assert len(seen) == 1 and seen[0][:2] == (["r"], 1)


def test_subqueries_see_the_mutations_pending_writes(app):
    @app.internal_query
    def count_t(ctx):
        return len(ctx.db.query("t").collect())

    @app.mutation
    def work(ctx):
        ctx.db.insert("t", {})
        ctx.db.insert("t", {})
        return ctx.run_query(count_t)

    assert app.mutation("work") == 2


def test_a_transaction_lists_its_own_new_tables_and_makes_system_tables_only_exclusively(app):
    """The catalog as a transaction sees it (what imports plan table numbers from)."""
    app.run(lambda ctx: ctx.db.insert("old", {"n": 1}))
    db = app.database
    with db.write() as txn:
        txn.insert("fresh", {"n": 2})
        assert txn.table_names() == ["fresh", "old"]
        assert db.table_names() == ["old"]  # not the catalog's until the commit
        with pytest.raises(cn.DatabaseError, match="exclusive transaction"):
            txn.system_table("_storage")
    with db.write(exclusive=True) as txn:
        assert txn.system_table("_storage").name == "_storage"
    assert db.table("_storage") is not None
