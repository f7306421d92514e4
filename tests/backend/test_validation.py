"""Argument and return validation (conformance §3.7, convex-test argumentsValidation/returnsValidation)."""

from __future__ import annotations

import math

import pytest

import convex_notebook as cn
from convex_notebook import v


@pytest.fixture
def echo(app):
    @app.mutation(
        args={
            "text": v.string(),
            "n": v.optional(v.int64()),
            "nested": v.object({"items": v.array(v.number())}),
        }
    )
    def echo(ctx, text, nested, n=None):
        return {"text": text, "nested": nested, "n": n}

    return echo


def test_valid_args_reach_handler_as_keywords(app, echo):
    out = app.mutation("echo", {"text": "hi", "nested": {"items": [1, 2.5]}})
    assert out == {"text": "hi", "nested": {"items": [1.0, 2.5]}, "n": None}


def test_handler_defaults_apply_to_omitted_optional_args(app):
    seen = {}

    @app.query(args={"a": v.number(), "b": v.optional(v.string())})
    def f(ctx, a, b="default"):
        seen.update(a=a, b=b)
        return b

    assert app.query("f", {"a": 1}) == "default"
    assert app.query("f", {"a": 1, "b": "given"}) == "given"


def test_handler_taking_an_args_dict(app):
    @app.query(args={"a": v.number()})
    def f(ctx, args):
        return sorted(args)

    assert app.query("f", {"a": 1}) == ["a"]


def test_int64_validator_coerces_plain_int(app):
    @app.query(args={"n": v.int64()})
    def kind(ctx, n):
        return {"type": type(n).__name__, "n": n}

    out = app.query("kind", {"n": 5})
    assert out["type"] == "Int64"
    assert out["n"] == cn.Int64(5)
    assert isinstance(out["n"], cn.Int64)
    # Beyond ±2^53 a plain int is still an exact Int64 here.
    assert app.query("kind", {"n": 2**62})["n"] == cn.Int64(2**62)
    assert app.query("kind", {"n": cn.Int64(-3)})["n"] == cn.Int64(-3)


def test_number_validator_does_not_accept_int64(app):
    @app.query(args={"x": v.number()})
    def f(ctx, x):
        return x

    with pytest.raises(cn.ValidationError):
        app.query("f", {"x": cn.Int64(1)})


@pytest.mark.parametrize(
    "args, fragment",
    [
        ({"text": 1, "nested": {"items": []}}, ".text"),
        ({"text": "x", "nested": {"items": [1, "b"]}}, ".nested.items[1]"),
        ({"text": "x", "nested": {"items": []}, "n": 1.5}, ".n"),
        ({"text": "x"}, "nested"),  # missing required field
        ({"text": "x", "nested": {"items": []}, "extra": 1}, "extra"),  # extra field
        ({"text": "x", "nested": {"items": [], "more": True}}, "more"),  # extra nested field
        ({"text": None, "nested": {"items": []}}, ".text"),
    ],
)
def test_argument_validation_errors_name_the_path(app, echo, args, fragment):
    with pytest.raises(cn.ValidationError) as info:
        app.mutation("echo", args)
    assert isinstance(info.value, cn.ConvexFunctionError)
    message = str(info.value)
    assert fragment in message
    assert "echo" in message  # names the function


def test_argument_validation_happens_before_the_handler(app):
    ran = []

    @app.mutation(args={"x": v.string()})
    def m(ctx, x):
        ran.append(x)
        ctx.db.insert("t", {"x": x})

    with pytest.raises(cn.ValidationError):
        app.mutation("m", {"x": 3})
    assert ran == []
    assert app.count("t") == 0


@pytest.mark.parametrize("bad", [[1], "text", 3, ({"a": 1},)])
def test_non_dict_args_rejected(app, bad):
    @app.query
    def f(ctx, **kw):
        return kw

    with pytest.raises(cn.ValidationError, match="dict"):
        app.query("f", bad)


def test_unvalidated_args_are_still_convex_values(app):
    @app.query
    def f(ctx, **kw):
        return kw

    assert app.query("f", {"a": 1, "b": [None, "x"], "c": cn.Int64(2)}) == {"a": 1.0, "b": [None, "x"], "c": cn.Int64(2)}
    with pytest.raises(cn.ValidationError):
        app.query("f", {"a": object()})
    with pytest.raises(cn.ValidationError):
        app.query("f", {"a": {1, 2}})


def test_no_validator_accepts_anything_convex(app):
    @app.mutation
    def f(ctx, x=None, y=None):
        return [x, y]

    assert app.mutation("f", {"x": {"deep": [1, {"z": b"\x00"}]}, "y": "s"}) == [{"deep": [1, {"z": b"\x00"}]}, "s"]


def test_union_arg(app):
    @app.query(args={"x": v.union(v.number(), v.string())})
    def f(ctx, x):
        return x

    assert app.query("f", {"x": 1}) == 1
    assert app.query("f", {"x": "s"}) == "s"
    with pytest.raises(cn.ValidationError):
        app.query("f", {"x": None})


def test_number_arg_accepts_infinity(app):
    @app.query(args={"x": v.number()})
    def f(ctx, x):
        return x

    assert app.query("f", {"x": math.inf}) == math.inf


def test_args_validator_as_object(app):
    @app.query(args=v.object({"x": v.string()}))
    def f(ctx, x):
        return x

    assert app.query("f", {"x": "ok"}) == "ok"
    with pytest.raises(cn.ValidationError):
        app.query("f", {"x": 1})


def test_validation_through_ctx_run_and_actions(app):
    @app.internal_mutation(args={"x": v.string()})
    def inner(ctx, x):
        return x

    @app.mutation
    def outer(ctx, x):
        return ctx.run_mutation("inner", {"x": x})

    @app.action
    def act(ctx, x):
        return ctx.run_mutation("inner", {"x": x})

    assert app.mutation("outer", {"x": "s"}) == "s"
    with pytest.raises(cn.ValidationError, match=r"\.x"):
        app.mutation("outer", {"x": 1})
    with pytest.raises(cn.ValidationError, match=r"\.x"):
        app.action("act", {"x": 1})
    with pytest.raises(cn.ValidationError, match=r"\.x"):
        app.run("inner", {"x": 1})


# -- returns --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, fragment",
    [
        ({"a": 1}, ".a"),
        ({"a": "s", "b": 2}, "b"),
        ("s", "object"),
        (None, "object"),
    ],
)
def test_returns_validation_failure(app, value, fragment):
    @app.query(args={"x": v.any()}, returns=v.object({"a": v.string()}))
    def r(ctx, x):
        return x

    with pytest.raises(cn.ValidationError) as info:
        app.query("r", {"x": value})
    message = str(info.value)
    assert "Return value" in message and "r" in message and fragment in message


def test_returns_validation_passes_and_coerces(app):
    @app.query(returns=v.object({"n": v.int64(), "xs": v.array(v.string())}))
    def r(ctx):
        return {"n": 3, "xs": ["a"]}

    out = app.query("r")
    assert out == {"n": cn.Int64(3), "xs": ["a"]}
    assert isinstance(out["n"], cn.Int64)


def test_returns_validation_for_documents_needs_system_fields(app):
    doc_id = app.run(lambda ctx: ctx.db.insert("t", {"x": 1}))

    @app.query(returns=v.object({"_id": v.id("t"), "x": v.number()}))
    def without_creation_time(ctx, doc_id):
        return ctx.db.get(doc_id)

    @app.query(returns=v.object({"_id": v.id("t"), "_creationTime": v.number(), "x": v.number()}))
    def with_creation_time(ctx, doc_id):
        return ctx.db.get(doc_id)

    with pytest.raises(cn.ValidationError, match="_creationTime"):
        app.query("without_creation_time", {"doc_id": doc_id})
    assert app.query("with_creation_time", {"doc_id": doc_id})["x"] == 1


def test_failed_returns_validation_rolls_back_a_mutation(app):
    @app.mutation(returns=v.string())
    def m(ctx):
        ctx.db.insert("t", {})
        return 1

    with pytest.raises(cn.ValidationError):
        app.mutation("m")
    assert app.count("t") == 0


def test_action_returns_validation(app):
    @app.action(returns=v.object({"a": v.number()}))
    def act(ctx):
        return {"a": 1, "extra": True}

    with pytest.raises(cn.ValidationError, match="extra"):
        app.action("act")


@pytest.mark.parametrize("kind", ["query", "mutation", "action"])
def test_returning_nothing_gives_none(app, kind):
    getattr(app, kind)(name="nothing")(lambda ctx: None)
    getattr(app, kind)(name="missing")(lambda ctx: cn.MISSING)

    def implicit(ctx):
        pass

    getattr(app, kind)(name="implicit")(implicit)
    assert getattr(app, kind)("nothing") is None
    assert getattr(app, kind)("missing") is None
    assert getattr(app, kind)("implicit") is None


def test_returning_none_with_a_null_or_optional_validator(app):
    @app.query(returns=v.null())
    def a(ctx):
        return None

    @app.query(returns=v.string())
    def c(ctx):
        return None

    assert app.query("a") is None
    with pytest.raises(cn.ValidationError):
        app.query("c")


def test_bad_validators_rejected_at_definition(app):
    # Not at call time as an "Uncaught ..." error.
    with pytest.raises(ValueError, match="optional"):
        @app.query(returns=v.optional(v.string()))
        def b(ctx):
            return cn.MISSING

    with pytest.raises(ValueError, match="object"):
        @app.query(args=v.string())
        def c(ctx, x):
            return x

    assert app.functions() == []


def test_returns_as_a_dict_means_an_object(app):
    @app.query(returns={"a": v.string()})
    def r(ctx, x):
        return {"a": x}

    assert app.query("r", {"x": "s"}) == {"a": "s"}
    with pytest.raises(cn.ValidationError, match=r"\.a"):
        app.query("r", {"x": 1})


def test_args_any_accepts_any_arguments(app):
    @app.query(args=v.any())
    def f(ctx, **kw):
        return kw

    assert app.query("f", {"a": 1, "b": "x"}) == {"a": 1, "b": "x"}
    with pytest.raises(cn.ValidationError):
        app.query("f", [1])


@pytest.mark.parametrize("kind", ["query", "mutation", "action"])
@pytest.mark.parametrize("value", [object(), {1, 2}, 2**60, {"k": [cn.MISSING]}, {1: "int key"}])
def test_returning_a_non_convex_value_errors(app, kind, value):
    getattr(app, kind)(name="bad")(lambda ctx: value)
    with pytest.raises(cn.ConvexFunctionError) as info:
        getattr(app, kind)("bad")
    assert "bad" in str(info.value)


def test_returned_dict_drops_missing_fields(app):
    @app.query
    def f(ctx):
        return {"a": 1, "b": cn.MISSING}

    assert app.query("f") == {"a": 1}


def test_results_are_copies(app):
    @app.query
    def f(ctx):
        return {"xs": [1, 2]}

    first = app.query("f")
    first["xs"].append(3)
    assert app.query("f") == {"xs": [1, 2]}


def test_an_argument_named_args(app):
    @app.query(args={"args": v.string()})
    def declared(ctx, args):
        return args

    @app.query(args={"a": v.number()})
    def whole(ctx, args):
        return args

    assert app.query("declared", {"args": "s"}) == "s"
    assert app.query("whole", {"a": 1}) == {"a": 1}
