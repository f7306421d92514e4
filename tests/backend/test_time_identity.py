"""ctx.now() is frozen per transaction; identities via app.with_identity."""

from __future__ import annotations

import asyncio

import pytest

import convex_notebook as cn
from convex_notebook import v

START = 1_700_000_000_000.0


def test_virtual_clock_and_advance_time(app):
    assert app.clock.now_ms() == START
    assert app.advance_time(1500) == START + 1500
    assert app.clock.now_ms() == START + 1500
    with pytest.raises(ValueError):
        app.advance_time(-1)


def test_advance_time_needs_a_virtual_clock():
    app = cn.Backend(echo_logs=False)
    try:
        with pytest.raises(TypeError, match="VirtualClock"):
            app.advance_time(10)
    finally:
        app.close()


def test_now_is_frozen_within_a_mutation(app):
    @app.mutation
    def stamps(ctx):
        first = ctx.now()
        app.clock.advance(1000)  # time passes while the mutation runs
        second = ctx.now()
        ctx.db.insert("t", {"at": ctx.now()})
        return [first, second]

    assert app.mutation("stamps") == [START, START]
    assert app.run(lambda ctx: ctx.db.query("t").first()["at"]) == START


def test_now_moves_between_transactions(app):
    @app.mutation
    def stamp(ctx):
        return ctx.now()

    assert app.mutation("stamp") == START
    app.advance_time(5000)
    assert app.mutation("stamp") == START + 5000
    assert app.run(lambda ctx: ctx.now()) == START + 5000


def test_now_shared_by_sub_transactions(app):
    @app.internal_query
    def inner_query(ctx):
        return ctx.now()

    @app.internal_mutation
    def inner_mutation(ctx):
        return ctx.now()

    @app.mutation
    def outer(ctx):
        app.clock.advance(10)
        return [ctx.now(), ctx.run_query("inner_query"), ctx.run_mutation("inner_mutation")]

    assert app.mutation("outer") == [START, START, START]


def test_now_in_query_is_the_snapshot_time(app):
    @app.query
    def q(ctx):
        first = ctx.now()
        app.clock.advance(1)
        return [first, ctx.now()]

    assert app.query("q") == [START, START]


def test_action_now_frozen_per_call_and_mutations_get_their_own(app):
    @app.internal_mutation
    def stamp(ctx):
        return ctx.now()

    @app.action
    def act(ctx):
        before = ctx.now()
        app.clock.advance(100)
        return [before, ctx.now(), ctx.run_mutation("stamp")]

    assert app.action("act") == [START, START, START + 100]


def test_query_reading_now_is_cached_and_expires(app):
    # Like Convex, a query that reads the clock can be served from the cache for a while.
    @app.query
    def q(ctx):
        return ctx.now()

    assert app.query("q") == START
    app.advance_time(24 * 60 * 60 * 1000)  # a day later the cached result has expired
    assert app.query("q") == START + 24 * 60 * 60 * 1000


# -- identity -------------------------------------------------------------------------------


@pytest.fixture
def whoami(app):
    @app.query
    def whoami(ctx):
        return ctx.auth.get_user_identity()

    return whoami


def test_anonymous_identity_is_none(app, whoami):
    assert app.query("whoami") is None
    assert app.run(lambda ctx: ctx.auth.get_user_identity()) is None


def test_identity_fields(app, whoami):
    ident = app.with_identity({"subject": "u1", "name": "Ada"}).query("whoami")
    assert ident["subject"] == "u1"
    assert ident["name"] == "Ada"
    assert isinstance(ident["issuer"], str) and ident["issuer"]
    assert ident["tokenIdentifier"] == f"{ident['issuer']}|u1"


def test_identity_synthesizes_subject_and_keeps_given_fields(app, whoami):
    user = app.with_identity({"name": "Sarah"})
    ident = user.query("whoami")
    assert ident["name"] == "Sarah"
    assert isinstance(ident["subject"], str) and ident["subject"]
    assert ident["tokenIdentifier"] == f"{ident['issuer']}|{ident['subject']}"
    assert user.query("whoami") == ident  # stable for one view

    custom = app.with_identity({"subject": "s", "issuer": "https://auth.example", "tokenIdentifier": "tok"})
    assert custom.query("whoami") == {"subject": "s", "issuer": "https://auth.example", "tokenIdentifier": "tok"}


def test_identity_view_does_not_change_the_app(app, whoami):
    user = app.with_identity({"subject": "u1"})
    assert user.query("whoami")["subject"] == "u1"
    assert app.query("whoami") is None
    assert user.with_identity(None).query("whoami") is None


def test_identity_is_copied_not_shared(app):
    @app.mutation
    def tamper(ctx):
        ident = ctx.auth.get_user_identity()
        ident["subject"] = "changed"
        return ctx.auth.get_user_identity()["subject"]

    assert app.with_identity({"subject": "u1"}).mutation("tamper") == "u1"


def test_identity_propagates_everywhere(app):
    @app.internal_query
    def subject(ctx):
        ident = ctx.auth.get_user_identity()
        return ident and ident["subject"]

    @app.internal_mutation
    def mutation_chain(ctx):
        return [ctx.auth.get_user_identity()["subject"], ctx.run_query("subject")]

    @app.mutation
    def m(ctx):
        return ctx.run_mutation("mutation_chain")

    @app.query
    def q(ctx):
        return ctx.run_query("subject")

    @app.internal_action
    def inner_action(ctx):
        return ctx.run_query("subject")

    @app.action
    def a(ctx):
        return [ctx.auth.get_user_identity()["subject"], ctx.run_action("inner_action"), ctx.run_mutation("mutation_chain")]

    @app.action
    async def async_a(ctx):
        return await asyncio.gather(ctx.run_query("subject"), ctx.run_action("inner_action"))

    user = app.with_identity({"subject": "ada"})
    assert user.query("q") == "ada"
    assert user.mutation("m") == ["ada", "ada"]
    assert user.action("a") == ["ada", "ada", ["ada", "ada"]]
    assert user.action("async_a") == ["ada", "ada"]
    assert user.run("subject") == "ada"
    assert user.run(lambda ctx: ctx.run_query("subject")) == "ada"
    assert asyncio.run(user.action_async("async_a")) == ["ada", "ada"]


def test_cached_query_results_are_per_identity(app, whoami):
    users = [app.with_identity({"subject": s}) for s in ("a", "b")]
    for _ in range(2):
        assert [u.query("whoami")["subject"] for u in users] == ["a", "b"]
        assert app.query("whoami") is None


def test_functions_defined_through_a_view_belong_to_the_app(app):
    user = app.with_identity({"subject": "u"})

    @user.query
    def hello(ctx):
        return "hi"

    assert app.query("hello") == "hi"


def test_identity_must_be_a_dict(app):
    with pytest.raises(TypeError):
        app.with_identity("u1")  # type: ignore[arg-type]
    with pytest.raises((cn.InvalidValueError, TypeError)):
        app.with_identity({"subject": object()})


def test_identity_with_validated_args(app):
    @app.mutation(args={"text": v.string()})
    def post(ctx, text):
        ident = ctx.auth.get_user_identity()
        if ident is None:
            raise cn.ConvexError("Not signed in")
        return ctx.db.insert("posts", {"text": text, "author": ident["subject"]})

    with pytest.raises(cn.ConvexError, match="Not signed in"):
        app.mutation("post", {"text": "anon"})
    doc_id = app.with_identity({"subject": "ada"}).mutation("post", {"text": "hi"})
    assert app.run(lambda ctx: ctx.db.get(doc_id)["author"]) == "ada"
