"""convex_value, normalize_document and check_document: conversions, limits, messages."""

from __future__ import annotations

import datetime
import math
from typing import Any

import pytest

from convex_notebook.errors import InvalidValueError
from convex_notebook.values import (
    MISSING,
    SYSTEM_FIELDS_SIZE,
    Int64,
    check_document,
    check_field_name,
    convex_value,
    document_size,
    new_id,
    normalize_document,
)


class FakeConvexInt64:
    def __init__(self, value: int) -> None:
        self.value = value


def numpy_like(name: str, item: Any, ndim: int = 0) -> Any:
    """A stand-in for a numpy scalar or array (numpy is not installed): module "numpy"."""
    cls = type(name, (), {"__module__": "numpy", "ndim": ndim, "item": lambda self: item})
    return cls()


def nested_lists(levels: int, leaf: Any = 1.0) -> Any:
    value = leaf
    for _ in range(levels):
        value = [value]
    return value


# --- convex_value: conversions ----------------------------------------------------------


@pytest.mark.parametrize(
    "raw, expected",
    [
        (None, None),
        (True, True),
        (False, False),
        (1, 1.0),
        (-(2**53), float(-(2**53))),
        (2**53, float(2**53)),
        (1.5, 1.5),
        ("héllo", "héllo"),
        (b"\x00\x01", b"\x00\x01"),
        (bytearray(b"ab"), b"ab"),
        (memoryview(b"ab"), b"ab"),
        ((1, "a"), [1.0, "a"]),
        ([1, [2, (3,)]], [1.0, [2.0, [3.0]]]),
        ({"a": 1, "b": MISSING, "c": {"d": MISSING}}, {"a": 1.0, "c": {}}),
        ({"": 1}, {"": 1.0}),  # the empty key is a valid nested key
    ],
)
def test_convex_value_conversions(raw: Any, expected: Any) -> None:
    out = convex_value(raw)
    assert out == expected
    assert type(out) is type(expected)


def test_bool_is_not_converted_to_float() -> None:
    assert convex_value(True) is True
    assert convex_value([True, 1]) == [True, 1.0]
    assert type(convex_value([True])[0]) is bool


def test_int64_and_client_int64() -> None:
    out = convex_value({"a": Int64(3), "b": FakeConvexInt64(-4)})
    assert out == {"a": 3, "b": -4}
    assert type(out["a"]) is Int64 and type(out["b"]) is Int64


def test_special_floats_are_fine() -> None:
    out = convex_value([math.nan, math.inf, -math.inf, -0.0])
    assert math.isnan(out[0]) and out[1] == math.inf and out[2] == -math.inf
    assert math.copysign(1.0, out[3]) == -1.0


def test_numpy_scalars_without_numpy() -> None:
    assert convex_value(numpy_like("float64", 1.5)) == 1.5
    i = convex_value(numpy_like("int64", 7))
    assert i == 7.0 and type(i) is float  # like a Python int: a Float64
    b = convex_value(numpy_like("bool_", True))
    assert b is True
    with pytest.raises(InvalidValueError, match="Int64"):
        convex_value(numpy_like("int64", 2**60))


def test_subclasses_become_base_types() -> None:
    class S(str):
        pass

    class E(str, __import__("enum").Enum):
        A = "a"

    out = convex_value([S("x"), E.A])
    assert out == ["x", "a"] and all(type(x) is str for x in out)


def test_int_outside_safe_range_suggests_int64() -> None:
    with pytest.raises(InvalidValueError, match=r"cn\.Int64\(9007199254740993\)") as e:
        convex_value({"n": 2**53 + 1})
    assert ".n" in str(e.value)
    with pytest.raises(InvalidValueError):
        convex_value(-(2**53) - 1)


# --- convex_value: errors name the path -------------------------------------------------


def test_missing_inside_list() -> None:
    with pytest.raises(InvalidValueError) as e:
        convex_value({"a": [MISSING]})
    assert str(e.value) == "undefined is not a valid Convex value (present at path .a[0])"
    with pytest.raises(InvalidValueError, match="present at path .bad\\[2\\]"):
        convex_value({"bad": [1, 2, MISSING]})


def test_missing_at_root() -> None:
    with pytest.raises(InvalidValueError, match="undefined is not a valid Convex value"):
        convex_value(MISSING)


def test_set_names_path_and_type() -> None:
    with pytest.raises(InvalidValueError) as e:
        convex_value({"tags": {"a"}})
    assert str(e.value) == (
        "Value at path .tags is a Python set, which is not a Convex value (use a list)"
    )


@pytest.mark.parametrize(
    "bad, fragment",
    [
        (datetime.datetime(2024, 1, 1), "Python datetime"),
        (object(), "Python object"),
        (1 + 2j, "Python complex"),
        (frozenset(), "Python frozenset"),
        (numpy_like("ndarray", None, ndim=1), r"Python ndarray.*\.tolist\(\)"),
    ],
)
def test_unsupported_types(bad: Any, fragment: str) -> None:
    with pytest.raises(InvalidValueError, match=fragment):
        convex_value({"x": [bad]})


def test_path_prefix() -> None:
    with pytest.raises(InvalidValueError, match=r"path args\.a\[1\]"):
        convex_value({"a": [1, {1}]}, path="args")


def test_lone_surrogate_rejected() -> None:
    with pytest.raises(InvalidValueError, match=r"\.s.*not valid Unicode"):
        convex_value({"s": "a\ud800"})


@pytest.mark.parametrize(
    "key, fragment",
    [
        ("$x", r"starts with '\$'"),
        ("é", "invalid character"),
        ("a\nb", "invalid character"),
        ("\x7f", "invalid character"),
        ("k" * 1025, "too long"),
        (1, "must be strings"),
    ],
)
def test_bad_nested_keys(key: Any, fragment: str) -> None:
    with pytest.raises(InvalidValueError, match=fragment) as e:
        convex_value({"outer": {key: 1}})
    assert ".outer" in str(e.value)
    with pytest.raises(InvalidValueError, match=fragment):
        check_field_name(key)


def test_good_nested_keys() -> None:
    for key in ["", " ", "~", "_x", "a b", "k" * 1024, "a$"]:
        assert convex_value({key: 1.0}) == {key: 1.0}
        check_field_name(key)


def test_nesting_limit_64() -> None:
    assert convex_value(nested_lists(64)) == nested_lists(64)
    with pytest.raises(InvalidValueError, match="Value is too nested"):
        convex_value(nested_lists(65))
    with pytest.raises(InvalidValueError, match="Value is too nested"):
        convex_value(nested_lists(3), max_depth=2)


def test_array_and_object_length_limits() -> None:
    assert len(convex_value([0] * 8192)) == 8192
    with pytest.raises(InvalidValueError, match=r"Array length is too long \(8193 > maximum"):
        convex_value({"l": [0] * 8193})
    wide = {f"f{i}": 0 for i in range(1024)}
    assert len(convex_value(wide)) == 1024
    wide["extra"] = 0
    with pytest.raises(InvalidValueError, match=r"Object has too many fields \(1025 > maximum"):
        convex_value({"w": wide})


# --- documents --------------------------------------------------------------------------


def stored_size(doc: dict[str, Any]) -> int:
    """Size of the document as stored, with a real 32-character id and a creation time."""
    return document_size({**doc, "_id": new_id(10001), "_creationTime": 1.7e12})


def test_normalize_document_returns_doc_and_size() -> None:
    raw = {"author": "sarah", "n": 3, "tags": ("a", "b"), "gone": MISSING, "blob": b"xy"}
    doc, size = normalize_document(raw, table="messages")
    assert doc == {"author": "sarah", "n": 3.0, "tags": ["a", "b"], "blob": b"xy"}
    assert type(doc["n"]) is float
    assert size == stored_size(doc)
    assert check_document(doc, table="messages") == size


def test_system_fields_size_is_a_32_char_id_and_a_float() -> None:
    assert SYSTEM_FIELDS_SIZE == stored_size({}) - 2
    assert SYSTEM_FIELDS_SIZE == (3 + 1 + 2 + 32) + (13 + 1 + 9)


@pytest.mark.parametrize("raw", ["x", 1.0, None, [1], Int64(1)])
def test_document_must_be_an_object(raw: Any) -> None:
    with pytest.raises(InvalidValueError, match="Value must be an Object"):
        normalize_document(raw)


@pytest.mark.parametrize(
    "field, fragment",
    [
        ("_x", "Field '_x' starts with an underscore.*system fields.*start with _"),
        ("_id", "system fields"),
        ("$x", "starts with '\\$'"),
        ("1abc", "not a valid identifier"),
        ("a-b", "not a valid identifier"),
        ("a b", "not a valid identifier"),
        ("", "not a valid identifier"),
        ("é", "not a valid identifier"),
        ("k" * 65, "too long"),
        (3, "must be strings"),
    ],
)
def test_top_level_field_names(field: Any, fragment: str) -> None:
    with pytest.raises(InvalidValueError, match=fragment) as e:
        normalize_document({field: 1}, table="items")
    assert 'table "items"' in str(e.value)
    with pytest.raises(InvalidValueError, match=fragment):
        check_document({field: 1.0}, table="items")


def test_top_level_field_names_ok() -> None:
    for name in ["a", "A_1", "x" * 64, "camelCase", "snake_case_2"]:
        assert normalize_document({name: 1})[0] == {name: 1.0}


def test_nested_keys_may_start_with_underscore() -> None:
    assert normalize_document({"a": {"_x": 1}})[0] == {"a": {"_x": 1.0}}


def test_document_nesting_16() -> None:
    # The document is level 1: a field may hold 15 nested arrays, not 16.
    doc, _ = normalize_document({"deep": nested_lists(15)})
    assert check_document(doc) > 0
    with pytest.raises(InvalidValueError) as e:
        normalize_document({"deep": nested_lists(16)}, table="t")
    message = str(e.value)
    assert message.startswith(
        "Document is too nested (nested 17 levels deep > maximum nesting 16)"
    )
    assert ".deep" in message and 'table "t"' in message
    with pytest.raises(InvalidValueError, match="nested 20 levels deep > maximum nesting 16"):
        normalize_document({"deep": nested_lists(19)})
    with pytest.raises(InvalidValueError, match="Document is too nested .nested 17"):
        check_document({"deep": nested_lists(16)})


def test_document_nesting_past_64_is_the_value_message() -> None:
    with pytest.raises(InvalidValueError, match=r"Value is too nested \(nested 65 levels deep"):
        normalize_document({"deep": nested_lists(100)})


def test_document_size_limit_boundary() -> None:
    # size = 2 + SYSTEM_FIELDS_SIZE + (len("s") + 1) + (2 + n)
    n = 2**20 - (2 + SYSTEM_FIELDS_SIZE + 2 + 2)
    doc, size = normalize_document({"s": "x" * n})
    assert size == 2**20 == stored_size(doc)
    assert check_document(doc) == 2**20
    with pytest.raises(InvalidValueError, match=r"Value is too large \(1 MiB > maximum size 1 MiB\)"):
        normalize_document({"s": "x" * (n + 1)}, table="t")
    with pytest.raises(InvalidValueError, match="Value is too large"):
        check_document({"s": "x" * (n + 1)})


def test_document_size_counts_utf8_bytes() -> None:
    doc, size = normalize_document({"s": "é"})  # 2 bytes in UTF-8
    assert size - normalize_document({"s": "e"})[1] == 1


def test_convex_message_for_large_document() -> None:
    with pytest.raises(InvalidValueError, match=r"Value is too large \(1.05 MiB > maximum size 1 MiB\)"):
        normalize_document({"big": "x" * 1_100_000})
    normalize_document({"ok": "x" * 1_000_000})


def test_document_field_count() -> None:
    doc = {f"f{i}": 0 for i in range(1024)}
    assert len(normalize_document(doc)[0]) == 1024
    doc["g"] = 0
    with pytest.raises(InvalidValueError, match="too many fields"):
        normalize_document(doc)
    with pytest.raises(InvalidValueError, match="too many fields"):
        check_document({k: 0.0 for k in doc})


def test_document_errors_name_the_path_and_table() -> None:
    with pytest.raises(InvalidValueError) as e:
        normalize_document({"a": {"b": [1.0, {"c": {1, 2}}]}}, table="items")
    assert str(e.value) == (
        "Value at path .a.b[1].c is a Python set, which is not a Convex value (use a list)"
        ' in table "items"'
    )
    with pytest.raises(InvalidValueError, match=r"present at path \.a\.b\[0\]"):
        normalize_document({"a": {"b": [MISSING]}})
    with pytest.raises(InvalidValueError, match=r"Array length is too long.*\.list"):
        normalize_document({"list": [0] * 8193})


def test_normalize_document_is_a_copy() -> None:
    raw = {"a": [1, 2], "b": {"c": 1}}
    doc, _ = normalize_document(raw)
    assert doc["a"] is not raw["a"] and doc["b"] is not raw["b"]
    assert raw == {"a": [1, 2], "b": {"c": 1}}
