"""ctx.run_mutation inside a mutation is a sub-transaction; ctx.run_query shares the snapshot."""

from __future__ import annotations

import pytest

import convex_notebook as cn
from convex_notebook import v


@pytest.fixture
def fns(app):
    @app.internal_mutation(args={"text": v.string(), "fail": v.optional(v.boolean())})
    def add(ctx, text, fail=False):
        doc_id = ctx.db.insert("items", {"text": text})
        if fail:
            raise cn.ConvexError({"failed": text})
        return doc_id

    @app.internal_query
    def texts(ctx):
        return [d["text"] for d in ctx.db.query("items").collect()]

    return {"add": add, "texts": texts}


def test_caught_failure_rolls_back_only_its_own_writes(app, fns):
    @app.mutation
    def outer(ctx):
        ctx.db.insert("items", {"text": "before"})
        try:
            ctx.run_mutation("add", {"text": "inner", "fail": True})
        except cn.ConvexError as exc:
            caught = exc.data
        ctx.db.insert("items", {"text": "after"})
        return caught

    assert app.mutation("outer") == {"failed": "inner"}
    assert app.run("texts") == ["before", "after"]


def test_caught_ordinary_exception_rolls_back_inner_writes(app, fns):
    @app.internal_mutation
    def messy(ctx, existing):
        ctx.db.insert("items", {"text": "messy"})
        ctx.db.insert("other_table", {"x": 1})
        ctx.db.patch(existing, {"text": "patched by messy"})
        ctx.db.delete(existing)
        raise RuntimeError("messy failed")

    @app.mutation
    def outer(ctx):
        existing = ctx.db.insert("items", {"text": "kept"})
        try:
            ctx.run_mutation("messy", {"existing": existing})
        except cn.ConvexFunctionError as exc:
            assert isinstance(exc.__cause__, RuntimeError)
        return ctx.db.get(existing)["text"]

    assert app.mutation("outer") == "kept"
    assert app.run("texts") == ["kept"]
    assert app.count("other_table") == 0
    assert "other_table" not in app.table_names()  # implicit table creation rolled back too


def test_successful_sub_mutation_writes_are_visible_to_parent(app, fns):
    @app.mutation
    def outer(ctx):
        inner_id = ctx.run_mutation("add", {"text": "inner"})
        doc = ctx.db.get(inner_id)
        ctx.db.patch(inner_id, {"text": doc["text"] + "+outer"})
        return ctx.run_query("texts")

    assert app.mutation("outer") == ["inner+outer"]
    assert app.run("texts") == ["inner+outer"]


def test_sub_mutation_sees_parent_pending_writes(app, fns):
    @app.internal_mutation
    def count_and_add(ctx):
        n = len(ctx.db.query("items").collect())
        ctx.db.insert("items", {"text": f"n={n}"})

    @app.mutation
    def outer(ctx):
        ctx.db.insert("items", {"text": "p1"})
        ctx.db.insert("items", {"text": "p2"})
        ctx.run_mutation("count_and_add")

    app.mutation("outer")
    assert app.run("texts") == ["p1", "p2", "n=2"]


def test_parent_failure_rolls_back_committed_sub_mutations(app, fns):
    @app.mutation
    def outer(ctx):
        ctx.run_mutation("add", {"text": "sub"})
        raise cn.ConvexError("parent fails")

    with pytest.raises(cn.ConvexError):
        app.mutation("outer")
    assert app.run("texts") == []


def test_nested_sub_transactions(app, fns):
    @app.internal_mutation
    def middle(ctx):
        ctx.db.insert("items", {"text": "middle"})
        try:
            ctx.run_mutation("add", {"text": "deepest", "fail": True})
        except cn.ConvexError:
            pass
        ctx.run_mutation("add", {"text": "deep ok"})
        raise RuntimeError("middle fails after its children")

    @app.internal_mutation
    def middle_ok(ctx):
        ctx.db.insert("items", {"text": "middle ok"})
        try:
            ctx.run_mutation("add", {"text": "deepest", "fail": True})
        except cn.ConvexError:
            pass

    @app.mutation
    def top(ctx):
        ctx.db.insert("items", {"text": "top"})
        try:
            ctx.run_mutation("middle")
        except cn.ConvexFunctionError:
            pass
        ctx.run_mutation("middle_ok")

    app.mutation("top")
    assert app.run("texts") == ["top", "middle ok"]


def test_uncaught_sub_failure_fails_the_whole_mutation(app, fns):
    @app.mutation
    def outer(ctx):
        ctx.db.insert("items", {"text": "outer"})
        ctx.run_mutation("add", {"text": "inner", "fail": True})

    with pytest.raises(cn.ConvexError) as info:
        app.mutation("outer")
    assert info.value.data == {"failed": "inner"}
    assert app.run("texts") == []


def test_run_mutation_in_inline_run(app, fns):
    def body(ctx):
        try:
            ctx.run_mutation("add", {"text": "x", "fail": True})
        except cn.ConvexError:
            pass
        ctx.run_mutation("add", {"text": "y"})

    app.run(body)
    assert app.run("texts") == ["y"]


def test_run_query_in_query(app, fns):
    app.run(lambda ctx: [ctx.db.insert("items", {"text": t}) for t in "ab"])

    @app.query(args={"prefix": v.string()})
    def decorated(ctx, prefix):
        return [prefix + t for t in ctx.run_query("texts")]

    @app.query
    def twice(ctx):
        return [ctx.run_query("decorated", {"prefix": "1"}), ctx.run_query(decorated, {"prefix": "2"})]

    assert app.query("twice") == [["1a", "1b"], ["2a", "2b"]]


def test_run_query_in_query_validates(app, fns):
    @app.internal_query(args={"n": v.number()}, returns=v.number())
    def inner(ctx, n):
        return n

    @app.query
    def outer(ctx, n):
        return ctx.run_query("inner", {"n": n})

    assert app.query("outer", {"n": 1}) == 1
    with pytest.raises(cn.ValidationError):
        app.query("outer", {"n": "x"})


def test_run_query_in_mutation_sees_pending_writes(app, fns):
    @app.mutation
    def outer(ctx):
        ctx.db.insert("items", {"text": "pending"})
        return ctx.run_query("texts")

    assert app.mutation("outer") == ["pending"]


def test_kind_checked_for_ctx_run(app, fns):
    @app.mutation
    def wrong(ctx):
        return ctx.run_query("add", {"text": "x"})

    with pytest.raises(cn.ConvexFunctionError, match="mutation"):
        app.mutation("wrong")
    assert app.run("texts") == []


def test_ctx_run_unknown_function(app, fns):
    @app.mutation
    def wrong(ctx):
        return ctx.run_mutation("nope:nothing")

    with pytest.raises(cn.FunctionNotFound, match="nope:nothing"):
        app.mutation("wrong")


@pytest.mark.parametrize("persisted", [False, True])
def test_table_created_in_rolled_back_sub_mutation_can_be_recreated(tmp_path, persisted):
    app = cn.Backend(tmp_path / "db.sqlite3" if persisted else None, echo_logs=False)
    try:
        @app.internal_mutation
        def create_and_fail(ctx):
            ctx.db.insert("fresh", {"n": 1})
            raise RuntimeError("rolled back")

        @app.mutation
        def outer(ctx):
            ctx.db.insert("existing", {})
            try:
                ctx.run_mutation("create_and_fail")
            except cn.ConvexFunctionError:
                pass
            assert ctx.db.query("fresh").collect() == []
            return ctx.db.insert("fresh", {"n": 2})

        doc_id = app.mutation("outer")
        assert sorted(app.table_names()) == ["existing", "fresh"]
        assert app.run(lambda ctx: [d["n"] for d in ctx.db.query("fresh").collect()]) == [2]
        assert app.run(lambda ctx: ctx.db.get(doc_id)["n"]) == 2
    finally:
        app.close()
    if persisted:
        with cn.Backend(tmp_path / "db.sqlite3", echo_logs=False) as again:
            assert sorted(again.table_names()) == ["existing", "fresh"]
            assert again.count("fresh") == 1
