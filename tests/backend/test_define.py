"""Defining functions: decorator forms, internal functions, modules, paths, redefinition."""

from __future__ import annotations

import pytest

import convex_notebook as cn
from convex_notebook import v
from convex_notebook.backend import canonical_path


def paths(app: cn.Backend) -> dict[str, tuple[str, bool]]:
    return {d.path: (d.kind, d.internal) for d in app.functions()}


def test_bare_decorators_register_by_function_name(app):
    @app.query
    def q(ctx):
        return "q"

    @app.mutation
    def m(ctx):
        return "m"

    @app.action
    def a(ctx):
        return "a"

    assert isinstance(q, cn.RegisteredFunction)
    assert (q.path, q.kind) == ("q", "query")
    assert (m.path, m.kind) == ("m", "mutation")
    assert (a.path, a.kind) == ("a", "action")
    assert paths(app) == {"q": ("query", False), "m": ("mutation", False), "a": ("action", False)}
    assert app.query("q") == "q"
    assert app.mutation("m") == "m"
    assert app.action("a") == "a"


def test_empty_parens_and_keyword_forms(app):
    @app.query()
    def empty(ctx):
        return 1

    @app.mutation(args={"x": v.number()}, returns=v.number())
    def double(ctx, x):
        return x * 2

    @app.action(args={"s": v.string()}, returns=v.string())
    def shout(ctx, s):
        return s.upper()

    assert app.query("empty") == 1
    assert app.mutation("double", {"x": 21}) == 42
    assert app.action("shout", {"s": "hi"}) == "HI"
    defs = {d.path: d for d in app.functions()}
    assert defs["empty"].args is None and defs["empty"].returns is None
    assert defs["double"].args is not None and defs["double"].returns is not None


def test_decorated_function_is_still_a_plain_python_function(app):
    @app.mutation
    def add(ctx, text):
        return ctx.db.insert("tasks", {"text": text})

    @app.mutation
    def add_two(ctx):
        add(ctx, "a")  # a helper call in the same transaction
        return add(ctx, "b")

    app.mutation(add_two)
    assert app.count("tasks") == 2
    assert add.__name__ == "add"


def test_internal_forms(app):
    @app.internal_query
    def iq(ctx):
        return "iq"

    @app.internal_mutation()
    def im(ctx):
        return "im"

    @app.internal_action(args={"n": v.number()}, returns=v.number())
    def ia(ctx, n):
        return n + 1

    assert paths(app) == {"iq": ("query", True), "im": ("mutation", True), "ia": ("action", True)}
    assert "internal_" in repr(iq)
    assert app.run("iq") == "iq"
    assert app.run(im) == "im"
    assert app.run("ia", {"n": 1}) == 2


def test_internal_decorator_used_as_a_call_is_a_clear_error(app):
    @app.internal_query
    def iq(ctx):
        return 1

    with pytest.raises(TypeError, match="app.run"):
        app.internal_query("iq")


def test_module_prefixes_function_names(app):
    tasks = app.module("tasks")

    @tasks.query
    def list(ctx):  # noqa: A001 - shadowing is what users write
        return ["a"]

    @tasks.mutation(args={"text": v.string()})
    def add(ctx, text):
        return text

    @tasks.internal_mutation
    def purge(ctx):
        return "purged"

    assert list.path == "tasks:list"
    assert add.path == "tasks:add"
    assert paths(app)["tasks:purge"] == ("mutation", True)
    assert app.query("tasks:list") == ["a"]
    assert app.mutation("tasks:add", {"text": "x"}) == "x"
    # Calling through the module fills in the module name.
    assert tasks.query("list") == ["a"]
    assert app.run("tasks:purge") == "purged"


def test_nested_module_and_js_suffix_in_module_name(app):
    chat = app.module("chat/messages.js")

    @chat.query
    def recent(ctx):
        return "recent"

    assert recent.path == "chat/messages:recent"
    assert app.query("chat/messages.js:recent") == "recent"


@pytest.mark.parametrize("bad", ["", "a:b", 3])
def test_bad_module_names_rejected(app, bad):
    with pytest.raises(ValueError):
        app.module(bad)


def test_explicit_name(app):
    @app.query(name="m:f")
    def whatever(ctx):
        return "f"

    @app.mutation(name="solo")
    def other(ctx):
        return "solo"

    tasks = app.module("tasks")

    @tasks.query(name="count")
    def handler(ctx):
        return 0

    assert whatever.path == "m:f"
    assert other.path == "solo"
    assert handler.path == "tasks:count"
    assert app.query("m:f") == "f"
    assert app.mutation("solo") == "solo"
    assert app.query("tasks:count") == 0


def test_lambda_needs_a_name(app):
    with pytest.raises(TypeError, match="name"):
        app.query(lambda ctx: 1)
    ref = app.query(name="lam:one")(lambda ctx: 1)
    assert app.query(ref) == 1


def test_invalid_paths_rejected(app):
    with pytest.raises(ValueError, match="Invalid function path"):
        app.query(name="bad name")(lambda ctx: 1)
    with pytest.raises(ValueError, match="Invalid function path"):
        app.query(name="m:f-g")(lambda ctx: 1)


def test_async_query_or_mutation_rejected(app):
    with pytest.raises(TypeError, match="action"):
        @app.query
        async def q(ctx):
            return 1

    with pytest.raises(TypeError, match="action"):
        @app.mutation
        async def m(ctx):
            return 1


def test_returns_must_be_a_validator(app):
    with pytest.raises(TypeError, match="validator"):
        @app.query(returns=str)
        def q(ctx):
            return ""


def test_non_callable_target_rejected(app):
    with pytest.raises(TypeError):
        app.query(42)


@pytest.mark.parametrize(
    "given, expected",
    [
        ("tasks:list", "tasks:list"),
        ("tasks.js:list", "tasks:list"),
        ("tasks", "tasks"),
        ("tasks.js", "tasks"),
        ("dir/tasks.js:list", "dir/tasks:list"),
        ("bare", "bare"),
    ],
)
def test_canonical_path(given, expected):
    assert canonical_path(given) == expected


def test_module_alone_means_default(app):
    tasks = app.module("tasks")

    @tasks.query
    def default(ctx):
        return "default"

    assert default.path == "tasks:default"
    assert app.query("tasks") == "default"
    assert app.query("tasks.js") == "default"
    assert app.query("tasks.js:default") == "default"


def test_bare_names_callable_with_and_without_default(app):
    @app.query
    def hello(ctx):
        return "hi"

    assert app.query("hello") == "hi"
    assert app.query("hello.js") == "hi"
    assert app.query("hello:default") == "hi"


def test_redefinition_replaces_the_function(app):
    @app.query
    def version(ctx):
        return 1

    assert app.query("version") == 1

    @app.query
    def version(ctx):  # noqa: F811 - re-running a notebook cell
        return 2

    assert app.query("version") == 2
    assert len(app.functions()) == 1

    # Redefining under another kind replaces it too.
    @app.mutation(name="version")
    def as_mutation(ctx):
        return 3

    assert app.mutation("version") == 3
    with pytest.raises(cn.ConvexFunctionError):
        app.query("version")


def test_redefinition_takes_effect_for_old_references(app):
    @app.query
    def q(ctx):
        return "old"

    old_ref = q

    @app.query(name="q")
    def q2(ctx):
        return "new"

    assert app.query(old_ref) == "new"


def test_redefinition_with_new_validator(app):
    @app.query(args={"x": v.number()})
    def f(ctx, x):
        return x

    with pytest.raises(cn.ValidationError):
        app.query("f", {"x": "s"})

    @app.query(args={"x": v.string()})
    def f(ctx, x):  # noqa: F811
        return x

    assert app.query("f", {"x": "s"}) == "s"
