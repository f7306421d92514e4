"""The Python representation of Convex's types: ``Int64``, ``MISSING`` and type names."""

from __future__ import annotations

import enum
import operator
from collections.abc import Callable
from typing import Any, Self, final

from convex_notebook.errors import InvalidValueError

__all__ = ["INT64_MAX", "INT64_MIN", "MAX_SAFE_INT", "MISSING", "Int64", "type_name"]

INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1
# A plain Python int is a JS number (Float64); beyond this it would lose precision.
MAX_SAFE_INT = 1 << 53


def _int64_arg(value: Any) -> int:
    """The integer an ``Int64(value)`` call stands for (range not yet checked)."""
    t = type(value)
    if t is int or t is Int64:
        return value
    if t is bool:
        raise InvalidValueError("Int64() takes an integer, not a bool")
    if isinstance(value, int) and not isinstance(value, enum.Enum):
        return int(value)
    inner = getattr(value, "value", None)
    if isinstance(inner, int) and type(inner) is not bool and not isinstance(value, enum.Enum):
        return int(inner)  # the official client's ConvexInt64
    if type(value).__module__ == "numpy" and hasattr(value, "__index__"):
        return operator.index(value)
    raise InvalidValueError(
        f"Int64() takes an integer (or a ConvexInt64), not {type(value).__name__}: {value!r}"
    )


class Int64(int):
    """A Convex Int64 (JS ``bigint``): an ``int`` limited to the signed 64-bit range.

    Arithmetic with ints or Int64s gives an Int64 (and fails on overflow);
    with floats it behaves like ``int`` and gives a float.
    """

    __slots__ = ()

    def __new__(cls, value: Any = 0) -> Self:
        n = _int64_arg(value)
        if n < INT64_MIN or n > INT64_MAX:
            raise InvalidValueError(f"Int64 out of range [-2^63, 2^63-1]: {n}")
        return int.__new__(cls, n)

    def __repr__(self) -> str:
        return f"Int64({int.__repr__(self)})"

    # ``int`` has no __str__ of its own (it falls back to __repr__), so keep "5", not "Int64(5)".
    __str__ = int.__repr__

    def __reduce__(self) -> tuple[type, tuple[int]]:
        return (Int64, (int(self),))

    def __neg__(self) -> Int64:
        return _checked(-int(self))

    def __pos__(self) -> Int64:
        return self

    def __abs__(self) -> Int64:
        return _checked(abs(int(self)))

    def __invert__(self) -> Int64:
        return Int64(~int(self))

    def __pow__(self, other: Any, mod: Any = None) -> Any:
        if isinstance(other, int):
            r = int.__pow__(self, other, mod) if mod is not None else int.__pow__(self, other)
            return _checked(r) if type(r) is int else r  # negative exponent: a float, as for int
        return NotImplemented if mod is not None else int.__pow__(self, other)

    def __rpow__(self, other: Any, mod: Any = None) -> Any:
        if isinstance(other, int):
            r = pow(int(other), int(self), mod)
            return _checked(r) if type(r) is int else r
        return NotImplemented

    def __divmod__(self, other: Any) -> Any:
        r = int.__divmod__(self, other)
        return (_checked(r[0]), _checked(r[1])) if type(r) is tuple and type(r[0]) is int else r

    def __rdivmod__(self, other: Any) -> Any:
        r = int.__rdivmod__(self, other)
        return (_checked(r[0]), _checked(r[1])) if type(r) is tuple and type(r[0]) is int else r


def _checked(n: int) -> Int64:
    """Wrap an int result as Int64, failing on overflow (Convex's int64 has no wrapping)."""
    if n < INT64_MIN or n > INT64_MAX:
        raise InvalidValueError(f"Int64 overflow: result {n} is outside [-2^63, 2^63-1]")
    return int.__new__(Int64, n)


def _binary(op: Callable[[int, Any], Any]) -> Callable[[Int64, Any], Any]:
    def method(self: Int64, other: Any) -> Any:
        r = op(self, other)
        # op is int's own slot: an int result (int/Int64 operand) becomes Int64; a float or
        # NotImplemented (float operand, unknown type) passes through as for a plain int.
        return _checked(r) if type(r) is int else r

    method.__name__ = op.__name__
    return method


for _name in (
    "add", "sub", "mul", "floordiv", "mod", "lshift", "rshift", "and", "or", "xor",
):
    for _fmt in ("__%s__", "__r%s__"):
        _dunder = _fmt % _name
        setattr(Int64, _dunder, _binary(getattr(int, _dunder)))
del _name, _fmt, _dunder


@final
class _Missing:
    """The type of ``MISSING``: JS ``undefined`` (a missing field), never a stored value."""

    __slots__ = ()
    _instance: _Missing | None = None

    def __new__(cls) -> _Missing:
        if _Missing._instance is None:
            _Missing._instance = object.__new__(cls)
        return _Missing._instance

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False

    def __reduce__(self) -> str:
        return "MISSING"  # pickled by reference to the module global: the same singleton

    def __copy__(self) -> _Missing:
        return self

    def __deepcopy__(self, memo: Any) -> _Missing:
        return self


MISSING = _Missing()

_TYPE_NAMES: dict[type, str] = {
    type(None): "null",
    Int64: "int64",
    float: "float64",
    int: "float64",  # a plain int is a JS number
    bool: "boolean",
    str: "string",
    bytes: "bytes",
    bytearray: "bytes",
    memoryview: "bytes",
    list: "array",
    tuple: "array",
    dict: "object",
    _Missing: "undefined",
}


def type_name(value: Any) -> str:
    """The Convex type name of ``value`` for messages ("float64", "object", "undefined", ...).

    Values that are no Convex value get their Python type name.
    """
    name = _TYPE_NAMES.get(type(value))
    if name is not None:
        return name
    for base, base_name in _TYPE_NAMES.items():
        if base is not int and isinstance(value, base) and not isinstance(value, enum.Enum):
            return base_name
    if isinstance(value, int) and not isinstance(value, bool):
        return "float64"
    inner = getattr(value, "value", None)
    if type(inner) is int and not isinstance(value, enum.Enum):
        return "int64"
    return type(value).__name__
