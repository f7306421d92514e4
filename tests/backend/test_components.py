"""Components (API.md §10): tables isolated both ways, functions unreachable from clients,
identity kept out, ConvexError crossing, sub-transaction rollback, namespacing, persistence."""

from __future__ import annotations

from typing import Any

import pytest

import convex_notebook as cn
from convex_notebook import v


def make_counter() -> cn.Component:
    counter = cn.Component("counter", schema=cn.define_schema({
        "counts": cn.define_table({"name": v.string(), "value": v.number()}).index("by_name", ["name"]),
        "notes": cn.define_table({"count": v.id("counts")}),
    }))
    public = counter.module("public")

    @public.mutation(args={"name": v.string()})
    def add(ctx: Any, name: str) -> Any:
        row = ctx.db.query("counts").with_index("by_name", lambda q: q.eq("name", name)).unique()
        if row is None:
            ctx.db.insert("counts", {"name": name, "value": 1})
        else:
            ctx.db.patch(row["_id"], {"value": row["value"] + 1})
        return ctx.auth.get_user_identity()

    @public.query(args={"name": v.string()})
    def get(ctx: Any, name: str) -> float:
        row = ctx.db.query("counts").with_index("by_name", lambda q: q.eq("name", name)).unique()
        return row["value"] if row else 0

    @public.mutation
    def fail(ctx: Any) -> None:
        ctx.db.insert("counts", {"name": "doomed", "value": 1})
        raise cn.ConvexError({"code": "NOPE", "n": cn.Int64(7)})

    @public.mutation(args={"name": v.string()})
    def add_twice(ctx: Any, name: str) -> None:
        ctx.run_mutation("public:add", {"name": name})  # a string path names the component's own
        ctx.run_mutation("public:add", {"name": name})

    @public.mutation(args={"id": v.id("counts")})
    def note(ctx: Any, id: str) -> str:
        return ctx.db.insert("notes", {"count": id})

    @public.query(args={"doc_id": v.string()})
    def peek(ctx: Any, doc_id: str) -> Any:
        return ctx.db.get(doc_id)

    @public.query
    def outside(ctx: Any) -> Any:
        return ctx.db.query("posts").collect()

    @public.query
    def env(ctx: Any) -> Any:
        return dict(ctx.env)

    return counter


@pytest.fixture
def app() -> Any:
    backend = cn.Backend(echo_logs=False, env={"SECRET": "app-only"})
    counter = make_counter()
    backend.use(counter)
    backend.use(counter, name="likes")

    @backend.mutation(args={"post": v.string()})
    def like(ctx: Any, post: str) -> Any:
        ctx.db.insert("posts", {"title": post})
        return ctx.run_mutation(backend.components.likes.public.add, {"name": post})

    @backend.mutation
    def like_then_fail(ctx: Any) -> Any:
        ctx.run_mutation(backend.components.likes.public.add, {"name": "kept"})
        try:
            ctx.run_mutation(backend.components.likes.public.fail, {})
        except cn.ConvexError as exc:
            return exc.data
        return None

    @backend.query
    def sneak(ctx: Any) -> Any:
        return ctx.db.query("likes/counts").collect()

    @backend.query(args={"doc_id": v.string()})
    def sneak_id(ctx: Any, doc_id: str) -> Any:
        return ctx.db.get(doc_id)

    yield backend
    backend.close()


def count(app: cn.Backend, mount: str, name: str) -> float:
    return app.query(getattr(app.components, mount).public.get, {"name": name})


def test_each_mount_has_its_own_tables(app: cn.Backend) -> None:
    app.mutation("like", {"post": "p1"})
    app.mutation(app.components.counter.public.add, {"name": "p1"})  # a cell calls a component directly
    app.mutation(app.components.counter.public.add, {"name": "p1"})
    assert count(app, "likes", "p1") == 1 and count(app, "counter", "p1") == 2
    assert app.table_names() == ["counter/counts", "counter/notes", "likes/counts", "likes/notes", "posts"]
    assert list(app.df("likes/counts")["value"]) == [1.0]


def test_tables_are_isolated_both_ways(app: cn.Backend) -> None:
    app.mutation("like", {"post": "p1"})
    post = app.run(lambda ctx: ctx.db.query("posts").first())["_id"]
    assert app.run("likes:public:get", {"name": "p1"}) == 1  # app.run is an admin call
    with pytest.raises(cn.ConvexFunctionError, match="belongs to a component"):
        app.query("sneak")
    mine = app.df("likes/counts")["_id"][0]
    with pytest.raises(cn.ConvexFunctionError, match="id of a component's table"):
        app.query("sneak_id", {"doc_id": mine})
    with pytest.raises(cn.ConvexFunctionError, match="belongs to a component"):
        app.run(lambda ctx: ctx.db.insert("likes/counts", {"name": "x", "value": 1}))
    with pytest.raises(cn.ConvexFunctionError, match="not an id of a table of component likes"):
        app.query(app.components.likes.public.peek, {"doc_id": post})  # the app's ids are not its own
    with pytest.raises(cn.ConvexFunctionError, match="not an id of a table of component counter"):
        app.query(app.components.counter.public.peek, {"doc_id": mine})  # nor another mount's
    assert app.query(app.components.likes.public.outside) == []  # "posts" there is its own (empty) table


def test_v_id_of_a_component_table_names_its_own_table(app: cn.Backend) -> None:
    app.mutation(app.components.likes.public.add, {"name": "p"})
    row = app.df("likes/counts")["_id"][0]
    note = app.mutation(app.components.likes.public.note, {"id": row})
    assert app.df("likes/notes")["count"][0] == row and isinstance(note, str)
    with pytest.raises(cn.ValidationError):
        app.mutation(app.components.counter.public.note, {"id": row})  # another mount's id


def test_functions_are_unreachable_from_clients(app: cn.Backend) -> None:
    with pytest.raises(cn.FunctionNotFound):
        app.query("likes:public:get", {"name": "p"})  # a client's string path
    assert app.invoke("likes:public:get", {"name": "p"}, admin=True).value == 0  # an admin may
    assert isinstance(app.invoke("likes:public:get", {"name": "p"}).error, cn.FunctionNotFound)
    paths = [f.path for f in app.functions()]
    assert "likes:public:add" in paths and "counter:public:get" in paths


def test_identity_does_not_cross_in(app: cn.Backend) -> None:
    user = app.with_identity({"subject": "ada"})
    assert user.mutation("like", {"post": "p"}) is None  # from the app's function: no identity
    direct = user.mutation(app.components.likes.public.add, {"name": "p"})
    assert direct["subject"] == "ada"  # called directly from a cell: the cell's identity (as convex-test)


def test_convex_error_crosses_and_only_the_failed_call_rolls_back(app: cn.Backend) -> None:
    assert app.mutation("like_then_fail") == {"code": "NOPE", "n": cn.Int64(7)}
    assert count(app, "likes", "kept") == 1 and count(app, "likes", "doomed") == 0
    with pytest.raises(cn.ConvexError) as info:
        app.mutation(app.components.likes.public.fail)
    assert info.value.data == {"code": "NOPE", "n": cn.Int64(7)}


def test_string_paths_inside_a_component_name_its_own_functions(app: cn.Backend) -> None:
    app.mutation(app.components.likes.public.add_twice, {"name": "x"})
    assert count(app, "likes", "x") == 2 and count(app, "counter", "x") == 0


def test_live_queries_on_component_functions(app: cn.Backend) -> None:
    sub = app.subscribe(app.components.likes.public.get, {"name": "p"})
    assert sub.value == 0
    app.mutation("like", {"post": "p"})
    assert sub.value == 1


def test_components_see_no_environment_variables(app: cn.Backend) -> None:
    assert app.query(app.components.likes.public.env) == {}


def test_component_schema_is_enforced(app: cn.Backend) -> None:
    comp = cn.Component("strict", schema=cn.define_schema({"t": cn.define_table({"n": v.number()})}))

    @comp.module("m").mutation
    def bad(ctx: Any) -> None:
        ctx.db.insert("t", {"n": "not a number"})

    @comp.module("m").mutation
    def undeclared(ctx: Any) -> None:
        ctx.db.insert("other", {})

    app.use(comp)
    with pytest.raises(cn.ConvexFunctionError, match="n"):
        app.mutation(app.components.strict.m.bad)
    with pytest.raises(cn.ConvexFunctionError, match="declared in its schema"):
        app.mutation(app.components.strict.m.undeclared)
    assert app.count("strict/t") == 0


def test_mounting_checks(app: cn.Backend) -> None:
    with pytest.raises(ValueError, match="already mounted"):
        app.use(cn.Component("counter"))
    with pytest.raises(ValueError, match="identifier"):
        app.use(make_counter(), name="bad name")
    with pytest.raises(TypeError):
        app.use("counter")  # type: ignore[arg-type]
    with pytest.raises(AttributeError, match="No component mounted as 'nope'"):
        app.components.nope
    with pytest.raises(ValueError, match="belong to components"):
        app.set_schema(cn.define_schema({"likes/counts": cn.define_table({})}))


def test_app_schema_and_components_together(app: cn.Backend) -> None:
    app.set_schema(cn.define_schema({"posts": cn.define_table({"title": v.string()})}))
    app.mutation("like", {"post": "p"})
    assert count(app, "likes", "p") == 1
    assert set(app.schema.tables) == {"posts"}  # the app's own schema
    with pytest.raises(cn.ConvexFunctionError):
        app.run(lambda ctx: ctx.db.insert("posts", {"title": 5}))


def test_persisted_and_exported(tmp_path: Any) -> None:
    path = tmp_path / "app.sqlite3"
    first = cn.Backend(path, echo_logs=False)
    first.use(make_counter(), name="likes")
    first.mutation(first.components.likes.public.add, {"name": "p"})
    first.close()
    again = cn.Backend(path, echo_logs=False)  # reopened: the merged schema reads back
    again.use(make_counter(), name="likes")
    assert again.query(again.components.likes.public.get, {"name": "p"}) == 1
    snapshot = again.export_snapshot(tmp_path / "snap.zip")
    import zipfile

    names = zipfile.ZipFile(snapshot).namelist()
    assert "_components/likes/counts/documents.jsonl" in names  # Convex's layout
    assert "_components/likes/_tables/documents.jsonl" in names and "likes/counts/documents.jsonl" not in names
    again.close()
    restored = cn.Backend(echo_logs=False)
    with pytest.raises(cn.ImportFileError, match="mount it first"):
        restored.import_snapshot(snapshot)  # nothing written
    assert restored.table_names() == []
    restored.use(make_counter(), name="likes")
    assert restored.import_snapshot(snapshot) == {"likes/counts": 1, "likes/notes": 0}
    assert restored.query(restored.components.likes.public.get, {"name": "p"}) == 1
    restored.close()
