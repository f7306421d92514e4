"""Tests for convex_notebook.values.validators (the ``v`` builder, convert, ValidatorJSON)."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convex_notebook.errors import ConvexFunctionError, ValidationError
from convex_notebook.values._ids import id_table_number, new_id
from convex_notebook.values._model import MISSING, Int64
from convex_notebook.values.validators import (
    AnyValidator,
    ArrayValidator,
    BooleanValidator,
    BytesValidator,
    Float64Validator,
    IdValidator,
    Int64Validator,
    LiteralValidator,
    NullValidator,
    ObjectValidator,
    RecordValidator,
    SchemaDefinitionError,
    StringValidator,
    UnionValidator,
    Validator,
    args_validator,
    pagination_opts_validator,
    returns_validator,
    v,
    validator_from_json,
)

TABLES = {1: "lists", 2: "users", 3: "tasks"}


def id_table(s: str) -> str | None:
    n = id_table_number(s)
    return None if n is None else TABLES.get(n)


LIST_ID = new_id(1)
USER_ID = new_id(2)
TASK_ID = new_id(3)
ORPHAN_ID = new_id(99)  # a well-formed id of a table that doesn't exist


def bits(x: float) -> bytes:
    import struct

    return struct.pack("<d", x)


def same(a, b) -> bool:
    """Strict equality: same types all the way down, floats bitwise."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return bits(a) == bits(b)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return a == b


def err(validator: Validator, raw, **kw) -> ValidationError:
    with pytest.raises(ValidationError) as info:
        validator.convert(raw, **kw)
    return info.value


# --------------------------------------------------------------------------------------
# Leaf kinds: accept / reject
# --------------------------------------------------------------------------------------

ACCEPT = [
    (v.string(), "hi", "hi"),
    (v.string(), "", ""),
    (v.number(), 1.5, 1.5),
    (v.number(), 3, 3.0),
    (v.number(), -(2**53), -9007199254740992.0),
    (v.number(), 2**53, 9007199254740992.0),
    (v.number(), math.inf, math.inf),
    (v.number(), -math.inf, -math.inf),
    (v.number(), -0.0, -0.0),
    (v.float64(), 2.0, 2.0),
    (v.int64(), 5, Int64(5)),
    (v.int64(), Int64(-7), Int64(-7)),
    (v.int64(), 2**63 - 1, Int64(2**63 - 1)),
    (v.int64(), -(2**63), Int64(-(2**63))),
    (v.bigint(), 0, Int64(0)),
    (v.boolean(), True, True),
    (v.boolean(), False, False),
    (v.null(), None, None),
    (v.bytes(), b"ab", b"ab"),
    (v.bytes(), bytearray(b"ab"), b"ab"),
    (v.bytes(), memoryview(b"ab"), b"ab"),
    (v.any(), (1, "a", {"x": MISSING, "y": None}), [1.0, "a", {"y": None}]),
    (v.any(), Int64(3), Int64(3)),
    (v.array(v.number()), [1, 2.5], [1.0, 2.5]),
    (v.array(v.string()), ("a", "b"), ["a", "b"]),
    (v.array(v.any()), [], []),
    (v.object({}), {}, {}),
    (v.object({"a": v.int64()}), {"a": 1}, {"a": Int64(1)}),
    (v.record(v.string(), v.number()), {"a": 1, "b": 2.0}, {"a": 1.0, "b": 2.0}),
    (v.union(v.number(), v.string()), "x", "x"),
    (v.union(v.number(), v.string()), 4, 4.0),
    (v.nullable(v.string()), None, None),
    (v.literal("a"), "a", "a"),
    (v.literal(3), 3, 3.0),
    (v.literal(3), 3.0, 3.0),
    (v.literal(True), True, True),
    (v.literal(Int64(9)), Int64(9), Int64(9)),
]


@pytest.mark.parametrize("validator,raw,expected", ACCEPT, ids=[f"{a[0]!r}<-{a[1]!r}" for a in ACCEPT])
def test_accepts_and_canonicalises(validator, raw, expected):
    out = validator.convert(raw)
    assert same(out, expected), (out, expected)


REJECT = [
    (v.string(), 1, "`string`"),
    (v.string(), None, "`string`"),
    (v.string(), b"x", "`string`"),
    (v.number(), "1", "`number`"),
    (v.number(), Int64(1), "got Int64(1) (int64)"),
    (v.number(), True, "got true (boolean)"),
    (v.number(), None, "got null"),
    (v.number(), 2**53 + 1, "Int64"),
    (v.int64(), 1.0, "got 1.0 (float64)"),
    (v.int64(), 1.5, "`int64`"),
    (v.int64(), True, "got true"),
    (v.int64(), "1", "`int64`"),
    (v.int64(), 2**63, "int64 range"),
    (v.int64(), -(2**63) - 1, "int64 range"),
    (v.boolean(), 1, "`boolean`"),
    (v.boolean(), "true", "`boolean`"),
    (v.null(), 0, "`null`"),
    (v.null(), MISSING, "MISSING"),
    (v.bytes(), "ab", "`bytes`"),
    (v.bytes(), [1, 2], "`bytes`"),
    (v.any(), {1, 2}, "set"),
    (v.any(), MISSING, "undefined"),
    (v.any(), [MISSING], "undefined"),
    (v.array(v.number()), "abc", "`array`"),
    (v.array(v.number()), {"a": 1}, "`array`"),
    (v.object({}), [], "`object`"),
    (v.object({}), None, "`object`"),
    (v.record(v.string(), v.number()), [], "`object`"),
    (v.literal("a"), "b", "v.literal('a')"),
    (v.literal("a"), None, "v.literal('a')"),
]


@pytest.mark.parametrize("validator,raw,phrase", REJECT, ids=[f"{r[0]!r}<-{r[1]!r}" for r in REJECT])
def test_rejects_with_a_clear_message(validator, raw, phrase):
    e = err(validator, raw)
    assert str(e).startswith("Validator error: ")
    assert phrase in str(e)
    assert isinstance(e, ConvexFunctionError)


def test_number_accepts_nan_and_keeps_special_floats():
    out = v.number().convert(math.nan)
    assert math.isnan(out)
    assert bits(v.number().convert(-0.0)) == bits(-0.0)


def test_number_error_beyond_2_53_suggests_int64():
    msg = str(err(v.number(), 2**60, path=".n"))
    assert ".n" in msg and "Int64" in msg


def test_int64_coerces_int_and_returns_int64_type():
    out = v.int64().convert(12)
    assert type(out) is Int64 and out == 12


def test_int64_accepts_convex_int64_style_objects():
    class ConvexInt64:
        def __init__(self, value):
            self.value = value

    out = v.int64().convert(ConvexInt64(42))
    assert type(out) is Int64 and out == 42


def test_string_subclass_becomes_plain_str():
    class S(str):
        pass

    out = v.string().convert(S("x"))
    assert type(out) is str and out == "x"


def test_any_is_convex_value():
    out = v.any().convert({"a": (1, 2), "b": bytearray(b"z"), "c": MISSING})
    assert same(out, {"a": [1.0, 2.0], "b": b"z"})
    e = err(v.object({"x": v.any()}), {"x": {"deep": {1, 2}}})
    assert e.path == ".x"
    assert "set" in str(e)


# --------------------------------------------------------------------------------------
# Literals
# --------------------------------------------------------------------------------------


def test_literal_is_type_aware():
    assert not v.literal(1).is_valid(Int64(1))
    assert not v.literal(Int64(1)).is_valid(1.0)
    assert not v.literal(True).is_valid(1)
    assert not v.literal(1).is_valid(True)
    assert not v.literal(0.0).is_valid(-0.0)
    assert not v.literal("1").is_valid(1)
    # A plain int is coerced like v.int64() does.
    out = v.literal(Int64(1)).convert(1)
    assert type(out) is Int64 and out == 1


def test_literal_nan_equals_nan():
    assert math.isnan(v.literal(math.nan).convert(math.nan))


def test_literal_canonical_value():
    assert type(v.literal(2).value) is float
    assert type(v.literal(Int64(2)).value) is Int64
    assert v.literal("x").value == "x"


@pytest.mark.parametrize("bad", [None, [1], {"a": 1}, b"x", 2**60, object()])
def test_literal_rejects_bad_values_at_construction(bad):
    with pytest.raises(SchemaDefinitionError):
        v.literal(bad)


def test_literal_union_enum():
    status = v.union(v.literal("active"), v.literal("inactive"))
    assert status.convert("active") == "active"
    e = err(status, "gone", path=".status")
    assert "v.literal('active')" in str(e) and "v.literal('inactive')" in str(e)
    assert '"gone"' in str(e) and ".status" in str(e)
    assert not status.is_valid(None)


def test_literal_union_first_member_wins_for_plain_int():
    u1 = v.union(v.literal(Int64(5)), v.literal(5))
    u2 = v.union(v.literal(5), v.literal(Int64(5)))
    assert type(u1.convert(5)) is Int64
    assert type(u2.convert(5)) is float
    assert type(u2.convert(Int64(5))) is Int64


# --------------------------------------------------------------------------------------
# IDs
# --------------------------------------------------------------------------------------


def test_id_accepts_id_of_its_table():
    assert v.id("lists").convert(LIST_ID, id_table=id_table) == LIST_ID


def test_id_rejects_other_table_id():
    e = err(v.object({"list": v.id("lists")}), {"list": USER_ID}, id_table=id_table)
    msg = str(e)
    assert 'Expected ID for table "lists" at path .list' in msg
    assert '"users"' in msg
    assert e.path == ".list"


def test_id_rejects_plain_string():
    e = err(v.object({"list": v.id("lists")}), {"list": "abc"}, id_table=id_table)
    assert 'Expected ID for table "lists" at path .list, got "abc"' in str(e)
    # and without a table mapping too
    e = err(v.id("lists"), "abc")
    assert "not a valid ID" in str(e)


def test_id_of_unknown_table():
    e = err(v.id("lists"), ORPHAN_ID, id_table=id_table)
    assert "does not exist" in str(e)


def test_id_without_table_mapping_only_checks_decoding():
    assert v.id("lists").convert(USER_ID) == USER_ID


@pytest.mark.parametrize("bad", [1, None, b"x", [LIST_ID]])
def test_id_rejects_non_strings(bad):
    assert not v.id("lists").is_valid(bad, id_table=id_table)


def test_id_requires_table_name():
    with pytest.raises(SchemaDefinitionError):
        v.id("")
    with pytest.raises(SchemaDefinitionError):
        v.id(3)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------
# Arrays, objects, records
# --------------------------------------------------------------------------------------


def test_array_element_path():
    e = err(v.array(v.string()), ["a", "b", 3], path=".tags")
    assert e.path == ".tags[2]"
    assert "at path .tags[2]" in str(e)


def test_array_rejects_missing_element():
    assert not v.array(v.any()).is_valid([MISSING])
    assert not v.array(v.optional(v.string()).as_required()).is_valid([MISSING])


def test_object_extra_field():
    e = err(v.object({"a": v.string()}), {"a": "x", "x": 1})
    assert "Object contains extra field `x` that is not in the validator" in str(e)
    assert str(e).startswith("Validator error")


def test_object_missing_required_field():
    e = err(v.object({"text": v.string()}), {})
    assert "Object is missing the required field `text`" in str(e)


def test_object_missing_value_counts_as_missing():
    e = err(v.object({"text": v.string()}), {"text": MISSING})
    assert "missing the required field `text`" in str(e)


def test_object_optional_field_may_be_omitted_or_missing():
    o = v.object({"a": v.string(), "b": v.optional(v.number())})
    assert o.convert({"a": "x"}) == {"a": "x"}
    assert o.convert({"a": "x", "b": MISSING}) == {"a": "x"}
    assert same(o.convert({"a": "x", "b": 2}), {"a": "x", "b": 2.0})
    assert not o.is_valid({"a": "x", "b": None})


def test_object_missing_extra_key_is_stripped_not_rejected():
    o = v.object({"a": v.string()})
    assert o.convert({"a": "x", "zzz": MISSING}) == {"a": "x"}


def test_object_returns_new_dict():
    raw = {"a": "x"}
    out = v.object({"a": v.string()}).convert(raw)
    assert out == raw and out is not raw


def test_nested_path():
    validator = v.object({"items": v.array(v.object({"name": v.string()}))})
    e = err(validator, {"items": [{"name": "a"}, {"name": "b"}, {"name": 7}]})
    assert e.path == ".items[2].name"
    assert "at path .items[2].name" in str(e)
    assert "got 7 (float64)" in str(e)


def test_missing_field_nested_path_is_reported():
    validator = v.object({"a": v.object({"b": v.string()})})
    e = err(validator, {"a": {}})
    assert e.path == ".a"
    assert "Path: .a" in str(e)


def test_path_prefix():
    e = err(v.object({"a": v.string()}), {"a": 1}, path=".args")
    assert e.path == ".args.a"


def test_object_field_names_must_be_identifiers():
    for bad in ["a-b", "$a", "", "1a", "a" * 65, "__"]:
        with pytest.raises(SchemaDefinitionError):
            v.object({bad: v.string()})
    with pytest.raises(SchemaDefinitionError):
        v.object({1: v.string()})  # type: ignore[dict-item]
    # system-like names are fine in a plain object validator (e.g. a returns validator)
    v.object({"_id": v.id("t"), "_creationTime": v.number()})


def test_object_values_must_be_validators():
    with pytest.raises(TypeError):
        v.object({"a": str})  # type: ignore[dict-item]
    with pytest.raises(TypeError):
        v.array("string")  # type: ignore[arg-type]


def test_object_kwargs_form():
    assert v.object(name=v.string()) == v.object({"name": v.string()})


def test_record_string_keys():
    r = v.record(v.string(), v.boolean())
    assert r.convert({"a": True, "b": False, "c": MISSING}) == {"a": True, "b": False}
    e = err(r, {"a": True, "b": 1}, path=".m")
    assert e.path == ".m.b"
    e = err(r, {"a b": 1})
    assert e.path == '["a b"]'


@pytest.mark.parametrize("key", ["", "$a", "_a", "é", "a\nb"])
def test_record_key_syntax(key):
    assert not v.record(v.string(), v.any()).is_valid({key: 1})


def test_record_rejects_non_string_keys():
    assert not v.record(v.string(), v.any()).is_valid({1: 1})


def test_record_id_keys():
    r = v.record(v.id("users"), v.number())
    assert r.convert({USER_ID: 1}, id_table=id_table) == {USER_ID: 1.0}
    e = err(r, {LIST_ID: 1}, id_table=id_table, path=".scores")
    assert "record key" in str(e) and '"users"' in str(e) and ".scores" in str(e)
    assert not r.is_valid({"hello": 1}, id_table=id_table)


def test_record_union_keys():
    r = v.record(v.union(v.id("users"), v.string()), v.number())
    assert r.convert({"x": 1}) == {"x": 1.0}


@pytest.mark.parametrize(
    "keys",
    [
        v.literal("a"),
        v.union(v.literal("a"), v.literal("b")),
        v.union(v.string(), v.literal("a")),
        v.literal(1),
        v.number(),
        v.any(),
        v.union(v.string(), v.null()),
        v.optional(v.string()),
    ],
)
def test_record_key_validator_restrictions(keys):
    with pytest.raises(SchemaDefinitionError):
        v.record(keys, v.number())


def test_record_values_cannot_be_optional():
    with pytest.raises(SchemaDefinitionError):
        v.record(v.string(), v.optional(v.number()))
    with pytest.raises(SchemaDefinitionError):
        v.record(v.id("users"), v.optional(v.number()))
    with pytest.raises(SchemaDefinitionError):
        v.record(v.literal(1), v.optional(v.number()))


def test_record_with_string_literal_keys_takes_optional_values():
    # current Convex: v.record(union(literal...), optional(number)) round-trips
    r = v.record(v.union(v.literal("a"), v.literal("b")), v.optional(v.number()))
    assert r.convert({}) == {}
    assert r.convert({"a": 1, "b": MISSING}) == {"a": 1.0}
    assert not r.is_valid({"c": 1})
    assert not r.is_valid({"a": "x"})
    assert r.json["values"] == {"fieldType": {"type": "number"}, "optional": True}
    assert validator_from_json(r.json) == r
    assert repr(r) == "v.record(v.union(v.literal('a'), v.literal('b')), v.optional(v.number()))"
    assert eval(repr(r), {"v": v}) == r
    v.record(v.literal("only"), v.optional(v.string()))


# --------------------------------------------------------------------------------------
# Unions, optional, nullable
# --------------------------------------------------------------------------------------


def test_union_number_or_string_rejects_null():
    u = v.union(v.number(), v.string())
    assert u.convert(1) == 1.0 and u.convert("a") == "a"
    e = err(v.object({"x": u}), {"x": None})
    msg = str(e)
    assert "v.number()" in msg and "v.string()" in msg and "got null" in msg and ".x" in msg


def test_union_first_member_wins():
    assert type(v.union(v.int64(), v.number()).convert(5)) is Int64
    assert type(v.union(v.number(), v.int64()).convert(5)) is float
    assert type(v.union(v.number(), v.int64()).convert(Int64(5))) is Int64


def test_union_of_objects_explains_members():
    u = v.union(
        v.object({"kind": v.literal("s"), "value": v.string()}),
        v.object({"kind": v.literal("n"), "value": v.number()}),
    )
    assert u.convert({"kind": "n", "value": 1}) == {"kind": "n", "value": 1.0}
    msg = str(err(u, {"kind": "n", "value": "x"}))
    assert "Expected one of" in msg
    assert "at path .value" in msg


def test_single_member_union_reports_member_error():
    msg = str(err(v.union(v.object({"a": v.string()})), {}))
    assert "missing the required field `a`" in msg


def test_empty_union_rejects_everything():
    assert not v.union().is_valid(None)


def test_optional_is_a_flag():
    o = v.optional(v.string())
    assert o.is_optional and o.kind == "string"
    assert not v.string().is_optional
    assert o.as_required() == v.string()
    assert v.optional(o) == o
    assert repr(o) == "v.optional(v.string())"


def test_optional_misuse():
    with pytest.raises(SchemaDefinitionError):
        v.array(v.optional(v.string()))
    with pytest.raises(SchemaDefinitionError):
        v.union(v.string(), v.optional(v.number()))
    with pytest.raises(SchemaDefinitionError, match="optional"):
        v.optional(v.string()).convert("x")
    with pytest.raises(SchemaDefinitionError):
        v.nullable(v.optional(v.string()))


def test_nullable_is_union_with_null():
    n = v.nullable(v.string())
    assert n == v.union(v.string(), v.null())
    assert n.json == {"type": "union", "value": [{"type": "string"}, {"type": "null"}]}
    assert n.convert(None) is None and n.convert("a") == "a"
    assert not n.is_valid(1)


# --------------------------------------------------------------------------------------
# args / returns helpers (conformance: argumentsValidation, returnsValidation)
# --------------------------------------------------------------------------------------


def test_args_validator_forms():
    assert args_validator(None) is None
    spec = {"a": v.string()}
    assert args_validator(spec) == v.object(spec)
    o = v.object(spec)
    assert args_validator(o) is o
    with pytest.raises(SchemaDefinitionError):
        args_validator(v.string())
    with pytest.raises(SchemaDefinitionError):
        args_validator(v.union(v.object({})))
    with pytest.raises(SchemaDefinitionError):
        args_validator(v.optional(v.object({})))
    with pytest.raises(TypeError):
        args_validator(["a"])  # type: ignore[arg-type]


def test_arguments_validation_cases():
    args = args_validator({"a": v.number(), "opt": v.optional(v.string())})
    assert args.convert({"a": 1}) == {"a": 1.0}  # optional omitted
    assert "Validator error" in str(err(args, {"a": "x"}))  # wrong type
    assert "extra field `b`" in str(err(args, {"a": 1, "b": 2}))  # extra
    assert "missing the required field `a`" in str(err(args, {}))  # missing
    assert "`object`" in str(err(args, [1]))  # args must be an object
    assert args.convert({"a": math.inf}) == {"a": math.inf}  # v.number accepts inf
    assert "extra field" in str(err(args_validator({}), {"x": 1}))  # args: {} rejects any arg


def test_pagination_opts_validator():
    args = args_validator({"paginationOpts": pagination_opts_validator, "list": v.id("lists")})
    out = args.convert({"paginationOpts": {"numItems": 5, "cursor": None}, "list": LIST_ID}, id_table=id_table)
    assert out == {"paginationOpts": {"numItems": 5.0, "cursor": None}, "list": LIST_ID}
    assert not pagination_opts_validator.is_valid({"numItems": 5})
    assert not pagination_opts_validator.is_valid({"numItems": 5, "cursor": None, "pageSize": 3})


def test_returns_validator_forms():
    assert returns_validator(None) is None
    assert returns_validator({"a": v.string()}) == v.object({"a": v.string()})
    assert returns_validator(v.string()) == v.string()
    with pytest.raises(SchemaDefinitionError):
        returns_validator(v.optional(v.string()))


def test_returns_validator_missing_creation_time_fails_for_document():
    doc = {"_id": TASK_ID, "_creationTime": 1700000000000.5, "text": "hi"}
    incomplete = returns_validator(v.object({"_id": v.id("tasks"), "text": v.string()}))
    e = err(incomplete, doc, id_table=id_table)
    assert "extra field `_creationTime`" in str(e)
    complete = incomplete.extend({"_creationTime": v.number()})
    assert complete.convert(doc, id_table=id_table) == doc
    # an array of documents with an incomplete item validator fails too
    assert not v.array(incomplete).is_valid([doc], id_table=id_table)
    assert not returns_validator(v.string()).is_valid(1)


# --------------------------------------------------------------------------------------
# Object helpers
# --------------------------------------------------------------------------------------

USER = v.object(
    {
        "name": v.string(),
        "status": v.union(v.literal("active"), v.literal("inactive")),
        "profile_url": v.optional(v.string()),
    }
)


def test_pick_omit_extend_partial_required():
    assert USER.pick("name") == v.object({"name": v.string()})
    assert list(USER.omit("status").fields) == ["name", "profile_url"]
    ext = USER.extend({"_id": v.id("users")})
    assert list(ext.fields) == ["name", "status", "profile_url", "_id"]
    assert USER.extend(age=v.number()).fields["age"] == v.number()
    part = USER.partial()
    assert all(f.is_optional for f in part.fields.values())
    assert part.convert({}) == {}
    req = part.required()
    assert not any(f.is_optional for f in req.fields.values())
    # the original is untouched
    assert not USER.fields["name"].is_optional and "_id" not in USER.fields
    patch_v = USER.omit("status").partial()
    assert patch_v.convert({"name": "x"}) == {"name": "x"}
    assert not patch_v.is_valid({"status": "active"})


def test_pick_and_omit_unknown_keys():
    with pytest.raises(SchemaDefinitionError):
        USER.pick("nope")
    with pytest.raises(SchemaDefinitionError):
        USER.omit("nope")


def test_helpers_keep_optional_flag():
    assert v.optional(USER).pick("name").is_optional


# --------------------------------------------------------------------------------------
# Introspection, JSON, repr, equality
# --------------------------------------------------------------------------------------

EXPECTED_JSON = [
    (v.string(), {"type": "string"}),
    (v.number(), {"type": "number"}),
    (v.float64(), {"type": "number"}),
    (v.int64(), {"type": "bigint"}),
    (v.bigint(), {"type": "bigint"}),
    (v.boolean(), {"type": "boolean"}),
    (v.null(), {"type": "null"}),
    (v.bytes(), {"type": "bytes"}),
    (v.any(), {"type": "any"}),
    (v.id("lists"), {"type": "id", "tableName": "lists"}),
    (v.literal("a"), {"type": "literal", "value": "a"}),
    (v.literal(2), {"type": "literal", "value": 2.0}),
    (v.literal(False), {"type": "literal", "value": False}),
    (v.literal(Int64(1)), {"type": "literal", "value": {"$integer": "AQAAAAAAAAA="}}),
    (v.literal(Int64(-1)), {"type": "literal", "value": {"$integer": "//////////8="}}),
    (v.literal(-0.0), {"type": "literal", "value": {"$float": "AAAAAAAAAIA="}}),
    (v.literal(math.inf), {"type": "literal", "value": {"$float": "AAAAAAAA8H8="}}),
    (v.array(v.string()), {"type": "array", "value": {"type": "string"}}),
    (
        v.object({"f": v.string(), "g": v.optional(v.int64())}),
        {
            "type": "object",
            "value": {
                "f": {"fieldType": {"type": "string"}, "optional": False},
                "g": {"fieldType": {"type": "bigint"}, "optional": True},
            },
        },
    ),
    (
        v.record(v.id("users"), v.boolean()),
        {
            "type": "record",
            "keys": {"type": "id", "tableName": "users"},
            "values": {"fieldType": {"type": "boolean"}, "optional": False},
        },
    ),
    (
        v.union(v.string(), v.number()),
        {"type": "union", "value": [{"type": "string"}, {"type": "number"}]},
    ),
]


@pytest.mark.parametrize("validator,expected", EXPECTED_JSON, ids=[repr(x[0]) for x in EXPECTED_JSON])
def test_json_and_round_trip(validator, expected):
    assert validator.json == expected
    json.dumps(validator.json)  # serialisable
    back = validator_from_json(json.loads(json.dumps(validator.json)))
    assert back == validator
    assert back.json == expected
    assert type(back) is type(validator)


def test_kinds_and_classes():
    cases = [
        (v.string(), "string", StringValidator),
        (v.number(), "float64", Float64Validator),
        (v.int64(), "int64", Int64Validator),
        (v.boolean(), "boolean", BooleanValidator),
        (v.null(), "null", NullValidator),
        (v.bytes(), "bytes", BytesValidator),
        (v.any(), "any", AnyValidator),
        (v.id("t"), "id", IdValidator),
        (v.literal(1), "literal", LiteralValidator),
        (v.array(v.any()), "array", ArrayValidator),
        (v.object({}), "object", ObjectValidator),
        (v.record(v.string(), v.any()), "record", RecordValidator),
        (v.union(), "union", UnionValidator),
    ]
    for val, kind, cls in cases:
        assert val.kind == kind and isinstance(val, cls) and val.is_optional is False


def test_introspection_attributes():
    assert v.id("lists").table_name == "lists"
    assert v.array(v.string()).element == v.string()
    r = v.record(v.string(), v.number())
    assert r.key == v.string() and r.value == v.number()
    assert v.union(v.string(), v.null()).members == (v.string(), v.null())
    assert USER.fields["profile_url"].is_optional


def test_json_of_optional_is_inner_json():
    assert v.optional(v.string()).json == {"type": "string"}


def test_literal_json_round_trip_keeps_type_and_bits():
    for lit in [Int64(2**63 - 1), Int64(-(2**63)), -0.0, math.nan, 1e308, "", True]:
        back = validator_from_json(v.literal(lit).json)
        assert type(back.value) is type(v.literal(lit).value)
        if isinstance(lit, float):
            assert bits(back.value) == bits(lit)
        else:
            assert back.value == lit


def test_json_accepts_integer_number_literals_from_js():
    back = validator_from_json({"type": "literal", "value": 3})
    assert type(back.value) is float and back == v.literal(3)


@pytest.mark.parametrize(
    "bad",
    [
        None,
        {},
        {"type": "nope"},
        {"type": "literal"},
        {"type": "literal", "value": None},
        {"type": "literal", "value": {"$integer": "AQ=="}},
        {"type": "object"},
        {"type": "object", "value": {"a": {"type": "string"}}},
        {"type": "union", "value": {"type": "string"}},
        {
            "type": "record",
            "keys": {"type": "literal", "value": "a"},
            "values": {"fieldType": {"type": "string"}, "optional": False},
        },
        {
            "type": "record",
            "keys": {"type": "string"},
            "values": {"fieldType": {"type": "string"}, "optional": True},
        },
        {"type": "array", "value": {"type": "id"}},
    ],
)
def test_validator_from_json_rejects_malformed(bad):
    with pytest.raises((SchemaDefinitionError, TypeError)):
        validator_from_json(bad)


def test_repr_reads_like_constructor():
    assert repr(v.object({"text": v.string()})) == "v.object({'text': v.string()})"
    assert repr(v.id("lists")) == "v.id('lists')"
    assert repr(v.record(v.string(), v.array(v.int64()))) == "v.record(v.string(), v.array(v.int64()))"
    assert repr(v.nullable(v.number())) == "v.union(v.number(), v.null())"
    assert repr(v.literal(Int64(3))) == "v.literal(Int64(3))"
    for val in [USER, v.literal(2), v.literal(Int64(3)), v.record(v.id("u"), v.bytes())]:
        assert eval(repr(val), {"v": v, "Int64": Int64}) == val


def test_pickle_and_copy():
    import copy
    import pickle

    for val in [USER, v.optional(USER), v.literal(Int64(3)), v.record(v.id("u"), v.bytes())]:
        back = pickle.loads(pickle.dumps(val))
        assert back == val and back.is_optional == val.is_optional
        assert copy.copy(val) == val and copy.deepcopy(val) == val
    assert copy.copy(USER).convert({"name": "a", "status": "active"}) == {"name": "a", "status": "active"}


def test_equality_and_hash():
    assert v.object({"a": v.string(), "b": v.number()}) == v.object({"b": v.number(), "a": v.string()})
    assert v.string() != v.optional(v.string())
    assert v.literal(1) != v.literal(Int64(1))
    assert v.id("a") != v.id("b")
    assert len({v.id("a"), v.id("a"), v.id("b")}) == 2
    assert v.string() != "string"


# --------------------------------------------------------------------------------------
# Property tests: JSON round trip and idempotence of convert
# --------------------------------------------------------------------------------------

names = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True)
literal_values = st.one_of(
    st.text(max_size=5),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1).map(Int64),
)
leaves = st.one_of(
    st.sampled_from(
        [v.string(), v.number(), v.int64(), v.boolean(), v.null(), v.bytes(), v.any()]
    ),
    names.map(v.id),
    literal_values.map(v.literal),
)
key_literals = st.from_regex(r"[a-zA-Z][a-zA-Z0-9 ._-]{0,6}", fullmatch=True).map(v.literal)
record_keys = st.one_of(
    st.just(v.string()),
    names.map(v.id),
    key_literals,
    st.lists(st.one_of(st.just(v.string()), names.map(v.id), key_literals), min_size=1, max_size=3).map(
        lambda ms: v.union(*ms)
    ),
)


def _record(key, value):
    has_literal = isinstance(key, LiteralValidator) or (
        isinstance(key, UnionValidator) and any(isinstance(m, LiteralValidator) for m in key.members)
    )
    return v.record(key, value.as_optional() if has_literal else value)


def _extend(children, min_union=0):
    return st.one_of(
        children.map(v.array),
        st.dictionaries(names, st.tuples(children, st.booleans()), max_size=4).map(
            lambda d: v.object({k: (c.as_optional() if opt else c) for k, (c, opt) in d.items()})
        ),
        st.lists(children, min_size=min_union, max_size=4).map(lambda ms: v.union(*ms)),
        st.tuples(record_keys, children).map(lambda kv: _record(*kv)),
    )


validators = st.recursive(leaves, _extend, max_leaves=12)
# No empty v.union() anywhere: every validator accepts some value.
satisfiable = st.recursive(leaves, lambda c: _extend(c, min_union=1), max_leaves=12)


@settings(max_examples=200, deadline=None)
@given(validators)
def test_validator_json_round_trip_property(val):
    j = val.json
    text = json.dumps(j)  # JSON-serialisable
    back = validator_from_json(json.loads(text))
    assert back == val
    assert json.dumps(back.json) == text
    assert repr(back) == repr(val)


plain = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**60), max_value=2**60),
        st.floats(allow_nan=False),
        st.text(max_size=4),
        st.binary(max_size=4),
        st.integers(min_value=-(2**63), max_value=2**63 - 1).map(Int64),
    ),
    lambda c: st.one_of(
        st.lists(c, max_size=3),
        st.lists(c, max_size=3).map(tuple),
        st.dictionaries(st.sampled_from(["a", "b", "c"]), c, max_size=3),
    ),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(validators, plain)
def test_convert_is_idempotent_property(val, raw):
    try:
        once = val.convert(raw)
    except ValidationError:
        return
    twice = val.convert(once)
    assert same(once, twice)


@settings(max_examples=200, deadline=None)
@given(plain)
def test_any_accepts_everything_convex_value_does(raw):
    from convex_notebook.values._check import convex_value

    try:
        expected = convex_value(raw)
    except Exception:
        assert not v.any().is_valid(raw)
        return
    assert same(v.any().convert(raw), expected)


valid_plain = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**53), max_value=2**53),
        st.floats(),
        st.text(max_size=4),
        st.binary(max_size=4),
        st.integers(min_value=-(2**63), max_value=2**63 - 1).map(Int64),
    ),
    lambda c: st.one_of(
        st.lists(c, max_size=3),
        st.lists(c, max_size=3).map(tuple),
        st.dictionaries(st.sampled_from(["a", "b", "_c", ""]), c, max_size=3),
    ),
    max_leaves=8,
)


def conforming(val: Validator) -> st.SearchStrategy:
    """Raw Python values that ``val`` must accept (without an id_table)."""
    if isinstance(val, StringValidator):
        return st.text(max_size=5)
    if isinstance(val, Float64Validator):
        return st.one_of(st.floats(), st.integers(min_value=-(2**53), max_value=2**53))
    if isinstance(val, Int64Validator):
        ints = st.integers(min_value=-(2**63), max_value=2**63 - 1)
        return st.one_of(ints, ints.map(Int64))
    if isinstance(val, BooleanValidator):
        return st.booleans()
    if isinstance(val, NullValidator):
        return st.none()
    if isinstance(val, BytesValidator):
        return st.one_of(st.binary(max_size=4), st.binary(max_size=4).map(bytearray))
    if isinstance(val, AnyValidator):
        return valid_plain
    if isinstance(val, IdValidator):
        return st.integers(min_value=1, max_value=2**20).map(new_id)
    if isinstance(val, LiteralValidator):
        return st.just(val.value)
    if isinstance(val, ArrayValidator):
        elems = st.lists(conforming(val.element), max_size=3)
        return st.one_of(elems, elems.map(tuple))
    if isinstance(val, ObjectValidator):
        parts = {}
        for name, f in val.fields.items():
            s = conforming(f.as_required())
            parts[name] = st.one_of(st.just(MISSING), s) if f.is_optional else s
        return st.fixed_dictionaries(parts)
    if isinstance(val, RecordValidator):
        def keys_for(k):
            if isinstance(k, StringValidator):
                return st.from_regex(r"[a-zA-Z][a-zA-Z0-9 ._-]{0,6}", fullmatch=True)
            if isinstance(k, IdValidator):
                return st.integers(min_value=1, max_value=2**20).map(new_id)
            if isinstance(k, LiteralValidator):
                return st.just(k.value)
            return st.one_of(*(keys_for(m) for m in k.members))

        return st.dictionaries(keys_for(val.key), conforming(val.value.as_required()), max_size=3)
    if isinstance(val, UnionValidator):
        return st.one_of(*(conforming(m) for m in val.members))
    raise AssertionError(val)


@settings(max_examples=300, deadline=None)
@given(satisfiable.flatmap(lambda val: st.tuples(st.just(val), conforming(val))))
def test_conforming_values_are_accepted_and_idempotent(pair):
    val, raw = pair
    once = val.convert(raw)
    assert same(val.convert(once), once)
    # the result is a canonical Convex value
    from convex_notebook.values._check import convex_value

    assert same(convex_value(once), once)
