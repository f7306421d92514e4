"""Environment variables: app.env, cn.Backend(env=), ctx.env in every kind of function,
persistence, reactivity, checks (API.md §9)."""

from __future__ import annotations

import pytest

import convex_notebook as cn
from convex_notebook.backend.env import EnvError


def test_seeded_and_read_in_every_kind(app: cn.Backend) -> None:
    seeded = cn.Backend(env={"GREETING": "hello", "N": "3"}, echo_logs=False)

    @seeded.query
    def q(ctx):
        return [ctx.env["GREETING"], ctx.env.get("MISSING", "dflt"), "N" in ctx.env, sorted(ctx.env)]

    @seeded.mutation
    def m(ctx):
        ctx.db.insert("seen", {"v": ctx.env.get("GREETING")})
        return ctx.env.get("N")

    @seeded.action
    def a(ctx):
        return ctx.env["GREETING"] + "!"

    @seeded.action
    async def aa(ctx):
        return ctx.env.get("N")

    @seeded.http.route(path="/env", method="GET")
    def h(ctx, request):
        return ctx.env["GREETING"]

    assert seeded.query("q") == ["hello", "dflt", True, ["GREETING", "N"]]
    assert seeded.mutation("m") == "3"
    assert seeded.action("a") == "hello!"
    assert seeded.action("aa") == "3"
    assert seeded.fetch("/env").text() == "hello"
    assert seeded.run(lambda ctx: ctx.env["N"]) == "3"
    seeded.close()


def test_app_env_is_a_mutable_mapping(app: cn.Backend) -> None:
    assert dict(app.env) == {} and len(app.env) == 0
    app.env["B"] = "2"
    app.env["A"] = "1"
    assert dict(app.env) == {"A": "1", "B": "2"} and "A" in app.env
    app.env.update({"C": "3"}, D="4")
    del app.env["A"]
    assert app.env.to_dict() == {"B": "2", "C": "3", "D": "4"}
    with pytest.raises(KeyError):
        del app.env["A"]
    with pytest.raises(KeyError):
        app.env["NOPE"]


def test_ctx_env_is_read_only(app: cn.Backend) -> None:
    app.env["K"] = "v"

    @app.mutation
    def write(ctx):
        ctx.env["K"] = "changed"

    with pytest.raises(cn.ConvexFunctionError, match="read-only"):
        app.mutation("write")
    assert app.env["K"] == "v"


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("1ABC", "v", "must start with a letter"),
        ("HAS-DASH", "v", "only letters, digits and underscores"),
        ("X" * 41, "v", "too long"),
        ("OK", 5, "must be a string"),
        ("OK", "x" * (8 * 1024 + 1), "too large"),
    ],
)
def test_bad_names_and_values_change_nothing(app: cn.Backend, name: object, value: object, message: str) -> None:
    app.env["KEEP"] = "1"
    ts = app.database.last_ts
    with pytest.raises(EnvError, match=message):
        app.env.update({"GOOD": "yes", name: value})  # type: ignore[dict-item]
    assert dict(app.env) == {"KEEP": "1"}
    assert app.database.last_ts == ts


def test_persisted_with_the_deployment(tmp_path) -> None:
    path = tmp_path / "app.sqlite3"
    first = cn.Backend(path, env={"SECRET": "s1"}, echo_logs=False)
    first.env["OTHER"] = "o"
    first.close()
    again = cn.Backend(path, echo_logs=False)
    assert dict(again.env) == {"OTHER": "o", "SECRET": "s1"}
    again.close()


def test_live_query_reruns_when_a_variable_it_read_changes(app: cn.Backend) -> None:
    runs = []

    @app.query
    def model(ctx):
        runs.append(1)
        return ctx.env.get("MODEL", "none")

    @app.query
    def unrelated(ctx):
        runs.append(2)
        return ctx.env.get("OTHER")

    sub = app.subscribe("model")
    other = app.subscribe("unrelated")
    assert sub.value == "none"  # no variable yet: the first one set re-runs it
    app.env["MODEL"] = "gpt"
    assert sub.value == "gpt"
    app.env["MODEL"] = "claude"
    assert sub.value == "claude"
    before = runs.count(2)
    app.env["MODEL"] = "again"  # another variable than the one `unrelated` read
    assert runs.count(2) == before and other.value is None
    del app.env["MODEL"]
    assert sub.value == "none"


def test_system_table_is_not_readable_by_functions(app: cn.Backend) -> None:
    app.env["SECRET"] = "s"

    @app.query
    def peek(ctx):
        return ctx.db.system.query("_environment_variables").collect()

    with pytest.raises(cn.ConvexFunctionError, match="ctx.env"):
        app.query("peek")
    assert "_environment_variables" not in app.table_names()


def test_values_never_appear_in_logs_or_reprs(app: cn.Backend) -> None:
    app.env["TOKEN"] = "very-secret-value"

    @app.query
    def show(ctx):
        print(repr(ctx.env))
        return len(ctx.env["TOKEN"])

    app.query("show")
    text = " ".join(line for entry in app.logs for line in entry.lines)
    assert "TOKEN" in text and "very-secret-value" not in text
    assert "very-secret-value" not in repr(app.env)


def test_served_urls_only_when_served(app: cn.Backend) -> None:
    @app.query
    def urls(ctx):
        return [ctx.env.get("CONVEX_CLOUD_URL"), ctx.env.get("CONVEX_SITE_URL")]

    assert app.query("urls") == [None, None]
    handle = app.serve(port=0, block=False, print_admin_key=False)
    try:
        assert app.query("urls") == [handle.url, handle.url]
    finally:
        handle.stop()
    assert app.query("urls") == [None, None]
