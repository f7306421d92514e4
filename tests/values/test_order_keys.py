"""Convex's total order: the key encoding, compare/values_equal, decode_key, prefix_end."""

from __future__ import annotations

import functools
import math
import struct
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from value_strategies import reference_compare, same, values, values_or_missing

from convex_notebook.errors import InvalidValueError
from convex_notebook.values import (
    MISSING,
    Int64,
    compare,
    decode_key,
    encode_key,
    encode_value,
    prefix_end,
    sort_key,
    values_equal,
)

NEG_NAN = struct.unpack(">d", struct.pack(">Q", 0xFFF8000000000000))[0]


def test_convex_test_type_ordering() -> None:
    # convex-test queries.test.ts "type ordering", read back ascending.
    expected = [
        MISSING,
        None,
        Int64(34),
        34.0,
        35.0,
        False,
        True,
        "stringValue",
        "xFactor",
        b"\x00\x01",
        ["a"],
        {"a": 1.0},
    ]
    shuffled = [expected[i] for i in (5, 11, 0, 8, 2, 9, 1, 7, 3, 10, 6, 4)]
    assert sorted(shuffled, key=sort_key) == expected
    assert sorted(shuffled, key=functools.cmp_to_key(compare)) == expected


def test_every_int64_sorts_below_every_float64() -> None:
    assert compare(Int64(2**63 - 1), -math.inf) == -1
    assert compare(Int64(100), 1.0) == -1
    assert compare(Int64(-5), Int64(3)) == -1
    assert compare(Int64(-(2**63)), Int64(2**63 - 1)) == -1
    assert not values_equal(Int64(1), 1.0)


def test_float_total_order() -> None:
    ordered = [NEG_NAN, -math.inf, -1e300, -1.0, -5e-324, -0.0, 0.0, 5e-324, 1.0, 1e300, math.inf, math.nan]
    for a, b in zip(ordered, ordered[1:]):
        assert compare(a, b) == -1, (a, b)
        assert compare(b, a) == 1
        assert encode_value(a) < encode_value(b)


def test_nan_and_zero_equality() -> None:
    assert values_equal(math.nan, float("nan"))
    assert compare(math.nan, math.nan) == 0
    assert not values_equal(-0.0, 0.0)
    assert compare(-0.0, 0.0) == -1
    assert values_equal(0.0, 0.0)


def test_strings_by_code_point_not_utf16() -> None:
    # UTF-16 would put U+1F600 (a surrogate pair, D83D...) before U+FFFF.
    assert compare("\uffff", "\U0001f600") == -1
    assert compare("a", "b") == -1
    assert compare("a", "a\x00") == -1  # a prefix first, even before NUL
    assert compare("a\x00", "a\x01") == -1
    assert compare("", "\x00") == -1


def test_containers() -> None:
    assert compare([], [None]) == -1
    assert compare([1.0], [1.0, 0.0]) == -1
    assert compare([2.0], [1.0, 5.0]) == 1
    assert compare({}, {"a": None}) == -1
    assert compare({"a": 2.0}, {"b": 1.0}) == -1  # keys first
    assert compare({"a": 1.0, "b": 1.0}, {"a": 1.0, "c": 0.0}) == -1
    assert compare({"b": 1.0}, {"a": 1.0, "b": 1.0}) == 1
    assert compare(b"", b"\x00") == -1
    assert compare(b"\x00", b"\x00\x00") == -1
    assert compare(b"\x00\xff", b"\x01") == -1


def test_plain_python_values_are_canonicalised() -> None:
    assert encode_value(3) == encode_value(3.0)
    assert encode_value((1, "a")) == encode_value([1.0, "a"])
    with pytest.raises(InvalidValueError):
        encode_value({1, 2})


@settings(max_examples=400, deadline=None)
@given(values_or_missing, values_or_missing)
def test_encoding_order_matches_reference(a: Any, b: Any) -> None:
    expected = reference_compare(a, b)
    assert compare(a, b) == expected
    ka, kb = encode_value(a), encode_value(b)
    assert ((ka > kb) - (ka < kb)) == expected
    assert values_equal(a, b) == (expected == 0)


@settings(max_examples=300, deadline=None)
@given(st.lists(values_or_missing, max_size=3), st.lists(values_or_missing, max_size=3))
def test_tuples_compare_element_by_element(a: list[Any], b: list[Any]) -> None:
    expected = 0
    for x, y in zip(a, b):
        expected = reference_compare(x, y)
        if expected:
            break
    else:
        expected = (len(a) > len(b)) - (len(a) < len(b))
    ka, kb = encode_key(a), encode_key(b)
    assert ((ka > kb) - (ka < kb)) == expected


@settings(max_examples=300, deadline=None)
@given(st.lists(values_or_missing, max_size=4))
def test_decode_key_round_trips(items: list[Any]) -> None:
    decoded = decode_key(encode_key(items))
    assert len(decoded) == len(items)
    for x, y in zip(decoded, items):
        assert x is MISSING if y is MISSING else same(x, y)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(values_or_missing, min_size=1, max_size=2),
    st.lists(values_or_missing, min_size=1, max_size=2),
    st.lists(values_or_missing, max_size=2),
)
def test_prefix_end_bounds_exactly_the_extensions(
    prefix: list[Any], other: list[Any], rest: list[Any]
) -> None:
    p = encode_key(prefix)
    end = prefix_end(p)
    # Every extension of the prefix lies in [p, end).
    extension = encode_key(prefix + rest)
    assert p <= extension < end
    # Any other key lies inside exactly when its leading elements equal the prefix.
    candidate = other + rest
    key = encode_key(candidate)
    matches = len(candidate) >= len(prefix) and all(
        values_equal(x, y) for x, y in zip(prefix, candidate)
    )
    assert (p <= key < end) == matches


def test_encode_value_fast_paths_match_general_path() -> None:
    for v in ["", "abc", "a\x00b", "é", 1.5, -0.0, math.nan, Int64(-3), True, None]:
        assert decode_key(encode_value(v)) == [v] or math.isnan(v)  # type: ignore[arg-type]
    assert encode_value("a\x00b") == b"\x07a\x00\xffb\x00"
    assert encode_value(MISSING) == b"\x01"
    assert encode_value(None) == b"\x02"


def test_decode_key_rejects_garbage() -> None:
    with pytest.raises(InvalidValueError):
        decode_key(b"\x03\x00")  # truncated int64
    with pytest.raises(InvalidValueError):
        decode_key(b"\x7f")


@given(values)
def test_sort_key_is_encode_value(v: Any) -> None:
    assert sort_key(v) == encode_value(v)
