"""convex_encoded_json (PROTOCOL.md §1), the lossy "json" format, and document storage text."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from value_strategies import keys, same, values

from convex_notebook.errors import InvalidValueError
from convex_notebook.values import (
    MISSING,
    Int64,
    dumps,
    dumps_document,
    from_json,
    loads,
    loads_document,
    to_clean_json,
    to_json,
)


@pytest.mark.parametrize(
    "n, b64",
    [(5, "BQAAAAAAAAA="), (-1, "//////////8="), (-5, "+/////////8="), (7, "BwAAAAAAAAA=")],
)
def test_integer_examples(n: int, b64: str) -> None:
    assert to_json(Int64(n)) == {"$integer": b64}
    back = from_json({"$integer": b64})
    assert type(back) is Int64 and back == n


@pytest.mark.parametrize(
    "f, b64",
    [
        (math.nan, "AAAAAAAA+H8="),
        (math.inf, "AAAAAAAA8H8="),
        (-math.inf, "AAAAAAAA8P8="),
        (-0.0, "AAAAAAAAAIA="),
    ],
)
def test_special_float_examples(f: float, b64: str) -> None:
    assert to_json(f) == {"$float": b64}
    assert same(from_json({"$float": b64}), f)


def test_ordinary_values() -> None:
    v = {"a": 1.5, "b": [None, True, "s"], "c": {}, "z": 0.0}
    assert to_json(v) == v
    assert to_json(b"\x00\x10\x83") == {"$bytes": "ABCD"}
    assert from_json({"$bytes": "ABCD"}) == b"\x00\x10\x83"
    assert to_json({"a": MISSING, "b": 1}) == {"b": 1.0}


def test_json_numbers_are_float64() -> None:
    out = from_json({"code": 42, "list": [1, 2.5], "big": 10**400})
    assert out == {"code": 42.0, "list": [1.0, 2.5], "big": math.inf}
    assert type(out["code"]) is float and type(out["list"][0]) is float


@pytest.mark.parametrize(
    "obj, fragment",
    [
        ({"$set": []}, "no longer supported"),
        ({"$map": []}, "no longer supported"),
        ({"$foo": 1}, "starts with '\\$'"),
        ({"$integer": "BQAAAAAAAAA=", "x": 1}, "starts with '\\$'"),
        ({"a": {"$x": 1, "b": 2}}, "starts with '\\$'"),
        ({"$integer": "BQAAAA=="}, "expected 8"),
        ({"$integer": 5}, "base64"),
        ({"$integer": "BQAAAAAAAAA"}, "invalid base64"),
        ({"$bytes": "A-_="}, "invalid base64"),
        ({"$float": "AAAAAAAA8D8="}, "should be encoded as a number"),  # 1.0
        ({"é": 1}, "invalid character"),
        ({"a": [1, {"$set": []}]}, r"no longer supported as a Convex type at path \.a\[1\]"),
        ({"a": "\ud800"}, "not valid Unicode"),
    ],
)
def test_from_json_rejects(obj: Any, fragment: str) -> None:
    with pytest.raises(InvalidValueError, match=fragment):
        from_json(obj)


def test_from_json_positive_zero_float_is_accepted() -> None:
    # Convex's server accepts a wrapped +0 (the JS client would not produce one).
    assert same(from_json({"$float": "AAAAAAAAAAA="}), 0.0)


def test_from_json_limits() -> None:
    deep: Any = 1
    for _ in range(65):
        deep = [deep]
    with pytest.raises(InvalidValueError, match="too nested"):
        from_json(deep)
    with pytest.raises(InvalidValueError, match="Array length is too long"):
        from_json([0] * 8193)


def test_dumps_is_compact_and_never_writes_nan_tokens() -> None:
    text = dumps({"a": [1.0, math.nan, math.inf], "é": "ü", "i": Int64(5)})
    assert text == (
        '{"a":[1.0,{"$float":"AAAAAAAA+H8="},{"$float":"AAAAAAAA8H8="}],"é":"ü",'
        '"i":{"$integer":"BQAAAAAAAAA="}}'
    )
    assert "NaN" not in text and "Infinity" not in text


def test_loads() -> None:
    assert loads('{"a":1,"b":{"$integer":"BQAAAAAAAAA="}}') == {"a": 1.0, "b": Int64(5)}
    assert loads(b"[1]") == [1.0]
    with pytest.raises(InvalidValueError, match="Invalid JSON"):
        loads("{")


def test_to_clean_json() -> None:
    v = {
        "i": Int64(-42),
        "b": b"\x00\x10\x83",
        "nan": math.nan,
        "inf": math.inf,
        "ninf": -math.inf,
        "nz": -0.0,
        "f": 1.5,
        "l": [Int64(1), None, True, "s"],
    }
    out = to_clean_json(v)
    assert out == {
        "i": "-42",
        "b": "ABCD",
        "nan": "NaN",
        "inf": "Infinity",
        "ninf": "-Infinity",
        "nz": -0.0,
        "f": 1.5,
        "l": ["1", None, True, "s"],
    }
    assert math.copysign(1.0, out["nz"]) == -1.0


@settings(max_examples=300, deadline=None)
@given(values)
def test_to_json_from_json_round_trip(v: Any) -> None:
    assert same(from_json(to_json(v)), v)
    assert same(loads(dumps(v)), v)
    json.loads(dumps(v))  # strict JSON (no NaN tokens)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(keys, values, max_size=5))
def test_document_storage_round_trip(doc: dict[str, Any]) -> None:
    text, plain = dumps_document(doc)
    assert same(loads_document(text, plain), doc)
    if plain:
        assert same(json.loads(text), doc)


@pytest.mark.parametrize(
    "doc, plain",
    [
        ({"a": 1.0, "b": "s", "c": [1.5, {"d": None}], "e": True}, True),
        ({"a": 0.0, "b": [0.0]}, True),
        ({"a": Int64(1)}, False),
        ({"a": [{"b": b"x"}]}, False),
        ({"a": [1.0, math.nan]}, False),
        ({"a": {"b": -0.0}}, False),
        ({"a": -math.inf}, False),
    ],
)
def test_dumps_document_plain_flag(doc: dict[str, Any], plain: bool) -> None:
    text, is_plain = dumps_document(doc)
    assert is_plain is plain
    assert same(loads_document(text, is_plain), doc)
    if not plain:
        assert not same(json.loads(text), doc)


def test_plain_floats_are_written_as_floats() -> None:
    text, plain = dumps_document({"a": 1.0, "b": 1e16})
    assert plain and text == '{"a":1.0,"b":1e+16}'
    assert type(loads_document(text, True)["a"]) is float
