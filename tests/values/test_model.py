"""Int64, MISSING and type_name."""

from __future__ import annotations

import copy
import enum
import pickle

import pytest

from convex_notebook.errors import InvalidValueError
from convex_notebook.values import MAX_SAFE_INT, MISSING, Int64, type_name


class FakeConvexInt64:
    """Shaped like the official client's ``convex.ConvexInt64``."""

    def __init__(self, value: int) -> None:
        self.value = value


def test_int64_range_is_checked() -> None:
    assert Int64(2**63 - 1) == 2**63 - 1
    assert Int64(-(2**63)) == -(2**63)
    with pytest.raises(InvalidValueError, match="range"):
        Int64(2**63)
    with pytest.raises(InvalidValueError, match="range"):
        Int64(-(2**63) - 1)


def test_int64_accepts_int64_and_convex_int64() -> None:
    assert type(Int64(Int64(3))) is Int64 and Int64(Int64(3)) == 3
    assert Int64(FakeConvexInt64(-7)) == -7
    with pytest.raises(InvalidValueError):
        Int64(FakeConvexInt64(2**64))


@pytest.mark.parametrize("bad", [1.5, 2.0, "5", None, True, [1]])
def test_int64_rejects_non_integers(bad: object) -> None:
    with pytest.raises(InvalidValueError):
        Int64(bad)


def test_int64_repr_and_str() -> None:
    assert repr(Int64(5)) == "Int64(5)"
    assert repr(Int64(-5)) == "Int64(-5)"
    assert str(Int64(5)) == "5"
    assert f"{Int64(5)}" == "5"
    assert f"{Int64(255):x}" == "ff"


@pytest.mark.parametrize(
    "expr, expected",
    [
        (lambda: Int64(5) + 1, 6),
        (lambda: 1 + Int64(5), 6),
        (lambda: Int64(5) - Int64(7), -2),
        (lambda: 10 - Int64(3), 7),
        (lambda: Int64(6) * 7, 42),
        (lambda: 7 * Int64(6), 42),
        (lambda: Int64(7) // 2, 3),
        (lambda: 7 // Int64(2), 3),
        (lambda: Int64(-7) % 3, 2),
        (lambda: 7 % Int64(3), 1),
        (lambda: Int64(2) ** 10, 1024),
        (lambda: 2 ** Int64(10), 1024),
        (lambda: -Int64(5), -5),
        (lambda: +Int64(5), 5),
        (lambda: abs(Int64(-5)), 5),
    ],
)
def test_int64_arithmetic_stays_int64(expr, expected: int) -> None:  # type: ignore[no-untyped-def]
    result = expr()
    assert type(result) is Int64
    assert result == expected


def test_int64_arithmetic_with_floats_is_float() -> None:
    assert type(Int64(5) + 1.5) is float and Int64(5) + 1.5 == 6.5
    assert type(1.5 * Int64(2)) is float and 1.5 * Int64(2) == 3.0
    assert type(Int64(5) / 2) is float and Int64(5) / 2 == 2.5
    assert type(Int64(2) ** -1) is float


@pytest.mark.parametrize(
    "expr",
    [
        lambda: Int64(2**63 - 1) + 1,
        lambda: 1 + Int64(2**63 - 1),
        lambda: Int64(-(2**63)) - 1,
        lambda: Int64(2**62) * 2,
        lambda: -Int64(-(2**63)),
        lambda: abs(Int64(-(2**63))),
        lambda: Int64(2) ** 63,
        lambda: Int64(-(2**63)) // -1,
    ],
)
def test_int64_overflow_raises(expr) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidValueError, match="overflow"):
        expr()


def test_int64_hash_pickle_copy() -> None:
    assert hash(Int64(5)) == hash(5)
    assert {Int64(5): "x"}[Int64(5)] == "x"
    back = pickle.loads(pickle.dumps(Int64(-12345)))
    assert type(back) is Int64 and back == -12345
    assert type(copy.deepcopy(Int64(3))) is Int64


def test_missing_singleton() -> None:
    assert not MISSING
    assert repr(MISSING) == "MISSING"
    assert type(MISSING)() is MISSING
    assert pickle.loads(pickle.dumps(MISSING)) is MISSING
    assert copy.copy(MISSING) is MISSING
    assert copy.deepcopy({"a": MISSING})["a"] is MISSING


class Color(enum.Enum):
    RED = 1


@pytest.mark.parametrize(
    "value, name",
    [
        (None, "null"),
        (Int64(1), "int64"),
        (FakeConvexInt64(1), "int64"),
        (1.5, "float64"),
        (1, "float64"),
        (True, "boolean"),
        ("s", "string"),
        (b"b", "bytes"),
        (bytearray(b"b"), "bytes"),
        ([1], "array"),
        ((1,), "array"),
        ({"a": 1}, "object"),
        (MISSING, "undefined"),
        ({1, 2}, "set"),
        (Color.RED, "Color"),
    ],
)
def test_type_name(value: object, name: str) -> None:
    assert type_name(value) == name


def test_max_safe_int() -> None:
    assert MAX_SAFE_INT == 2**53
