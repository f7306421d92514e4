"""Filter expressions: ``.filter(lambda q: q.and_(q.eq(q.field("a"), 1), ...))``.

The builder produces a small expression tree which is compiled once into nested closures, so
evaluating a filter on each scanned document costs a few Python calls, not a tree walk.
Comparisons use Convex's total order across types (via the order-preserving key encoding),
so ``-0.0 != 0.0``, ``NaN == NaN`` and ``Int64(1) != 1.0``, exactly as the real backend does.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from ..errors import InvalidValueError
from ..values import MISSING, Int64, convex_value, encode_value, type_name

__all__ = ["Expression", "FilterBuilder", "compile_filter", "field_getter"]

Evaluator = Callable[[dict], Any]


class FilterError(InvalidValueError):
    """A filter expression is ill-typed (e.g. adding an Int64 to a Float64)."""


class Expression:
    """A node of a filter expression; build them with :class:`FilterBuilder`."""

    __slots__ = ("args", "op")

    def __init__(self, op: str, args: tuple) -> None:
        self.op = op
        self.args = args

    def __repr__(self) -> str:
        inner = ", ".join(repr(a) for a in self.args)
        return f"q.{self.op}({inner})"

    def __bool__(self) -> bool:
        # `q.eq(...) and q.eq(...)` would silently drop the first operand.
        raise TypeError("Use q.and_(a, b) / q.or_(a, b) / q.not_(a) to combine filter expressions")


class _Literal:
    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __repr__(self) -> str:
        return repr(self.value)


def field_getter(path: str) -> Callable[[dict], Any]:
    """A function returning the value at a dotted path of a document, or MISSING."""
    if "." not in path:
        return lambda doc: doc.get(path, MISSING)
    parts = path.split(".")

    def get(doc: dict) -> Any:
        value: Any = doc
        for part in parts:
            if type(value) is not dict:
                return MISSING
            value = value.get(part, MISSING)
            if value is MISSING:
                return MISSING
        return value

    return get


class FilterBuilder:
    """The ``q`` passed to ``.filter(lambda q: ...)`` (Convex's FilterBuilder)."""

    def field(self, path: str) -> Expression:
        if not isinstance(path, str):
            raise FilterError(f"q.field() takes a field path string, got {type(path).__name__}")
        return Expression("field", (path,))

    def eq(self, left: Any, right: Any) -> Expression:
        return Expression("eq", (_operand(left), _operand(right)))

    def neq(self, left: Any, right: Any) -> Expression:
        return Expression("neq", (_operand(left), _operand(right)))

    def lt(self, left: Any, right: Any) -> Expression:
        return Expression("lt", (_operand(left), _operand(right)))

    def lte(self, left: Any, right: Any) -> Expression:
        return Expression("lte", (_operand(left), _operand(right)))

    def gt(self, left: Any, right: Any) -> Expression:
        return Expression("gt", (_operand(left), _operand(right)))

    def gte(self, left: Any, right: Any) -> Expression:
        return Expression("gte", (_operand(left), _operand(right)))

    def add(self, left: Any, right: Any) -> Expression:
        return Expression("add", (_operand(left), _operand(right)))

    def sub(self, left: Any, right: Any) -> Expression:
        return Expression("sub", (_operand(left), _operand(right)))

    def mul(self, left: Any, right: Any) -> Expression:
        return Expression("mul", (_operand(left), _operand(right)))

    def div(self, left: Any, right: Any) -> Expression:
        return Expression("div", (_operand(left), _operand(right)))

    def mod(self, left: Any, right: Any) -> Expression:
        return Expression("mod", (_operand(left), _operand(right)))

    def neg(self, x: Any) -> Expression:
        return Expression("neg", (_operand(x),))

    def and_(self, *exprs: Any) -> Expression:
        return Expression("and_", tuple(_operand(e) for e in exprs))

    def or_(self, *exprs: Any) -> Expression:
        return Expression("or_", tuple(_operand(e) for e in exprs))

    def not_(self, x: Any) -> Expression:
        return Expression("not_", (_operand(x),))


def _operand(x: Any) -> Expression | _Literal:
    if isinstance(x, Expression):
        return x
    if x is MISSING:
        return _Literal(MISSING)
    return _Literal(convex_value(x, path="filter operand"))


def compile_filter(predicate: Any) -> tuple[Evaluator, str]:
    """Compile what a filter lambda returned into ``(doc -> bool, canonical text)``.

    The canonical text identifies the filter inside pagination cursors.
    """
    if isinstance(predicate, bool):
        return (lambda doc: predicate), repr(predicate)
    if not isinstance(predicate, Expression):
        raise FilterError(
            "A filter must return a q.* expression or a bool, got "
            f"{type(predicate).__name__}; build it with q.eq(q.field('x'), ...)"
        )
    evaluate = _compile(predicate)
    return (lambda doc: evaluate(doc) is True), repr(predicate)


def _compile(node: Expression | _Literal) -> Evaluator:
    if isinstance(node, _Literal):
        value = node.value
        return lambda doc: value
    op, args = node.op, node.args
    if op == "field":
        return field_getter(args[0])
    if op in _COMPARISONS:
        return _compile_comparison(op, args[0], args[1])
    if op in _ARITHMETIC:
        left, right = _compile(args[0]), _compile(args[1])
        fn = _ARITHMETIC[op]
        return lambda doc: fn(left(doc), right(doc))
    if op == "neg":
        inner = _compile(args[0])
        return lambda doc: _negate(inner(doc))
    if op in ("and_", "or_"):
        parts = [_compile(a) for a in args]
        want_all = op == "and_"

        def logic(doc: dict) -> bool:
            result = want_all
            for part in parts:
                value = _boolean(part(doc), op)
                if want_all and not value:
                    result = False
                elif not want_all and value:
                    result = True
            return result

        return logic
    if op == "not_":
        inner = _compile(args[0])
        return lambda doc: not _boolean(inner(doc), "not_")
    raise FilterError(f"Unknown filter operator {op}")


def _compile_comparison(op: str, left_node: Any, right_node: Any) -> Evaluator:
    test = _COMPARISONS[op]
    # Fast path: one side is a literal, whose key encoding can be computed once.
    if isinstance(right_node, _Literal) and not isinstance(left_node, _Literal):
        left = _compile(left_node)
        right_key = encode_value(right_node.value)
        return lambda doc: test(encode_value(left(doc)), right_key)
    if isinstance(left_node, _Literal) and not isinstance(right_node, _Literal):
        right = _compile(right_node)
        left_key = encode_value(left_node.value)
        return lambda doc: test(left_key, encode_value(right(doc)))
    left, right = _compile(left_node), _compile(right_node)
    return lambda doc: test(encode_value(left(doc)), encode_value(right(doc)))


_COMPARISONS: dict[str, Callable[[bytes, bytes], bool]] = {
    "eq": lambda a, b: a == b,
    "neq": lambda a, b: a != b,
    "lt": lambda a, b: a < b,
    "lte": lambda a, b: a <= b,
    "gt": lambda a, b: a > b,
    "gte": lambda a, b: a >= b,
}


def _boolean(value: Any, op: str) -> bool:
    if type(value) is not bool:
        raise FilterError(f"q.{op} expects boolean operands, got {type_name(value)}")
    return value


def _numeric_pair(a: Any, b: Any, op: str) -> bool:
    """True for Int64 operands, False for Float64; error for anything else or a mix."""
    ta, tb = type(a), type(b)
    if ta is Int64 and tb is Int64:
        return True
    if ta is float and tb is float:
        return False
    raise FilterError(
        f"Cannot {op} {type_name(a)} and {type_name(b)}: arithmetic needs two Int64 or two Float64 values"
    )


def _int64(n: int, op: str) -> Int64:
    if not -(2**63) <= n < 2**63:
        raise FilterError(f"Int64 overflow in q.{op}")
    return Int64(n)


def _add(a: Any, b: Any) -> Any:
    return _int64(int(a) + int(b), "add") if _numeric_pair(a, b, "add") else a + b


def _sub(a: Any, b: Any) -> Any:
    return _int64(int(a) - int(b), "sub") if _numeric_pair(a, b, "sub") else a - b


def _mul(a: Any, b: Any) -> Any:
    return _int64(int(a) * int(b), "mul") if _numeric_pair(a, b, "mul") else a * b


def _div(a: Any, b: Any) -> Any:
    if _numeric_pair(a, b, "div"):
        if int(b) == 0:
            raise FilterError("Int64 division by zero in q.div")
        q = abs(int(a)) // abs(int(b))  # JS BigInt and Rust truncate toward zero
        return _int64(q if (int(a) < 0) == (int(b) < 0) else -q, "div")
    if b == 0.0:
        if a == 0.0 or math.isnan(a):
            return math.nan
        return math.copysign(math.inf, a) * math.copysign(1.0, b)
    return a / b


def _mod(a: Any, b: Any) -> Any:
    if _numeric_pair(a, b, "mod"):
        if int(b) == 0:
            raise FilterError("Int64 division by zero in q.mod")
        r = abs(int(a)) % abs(int(b))  # the sign follows the dividend, as in JS
        return Int64(-r if int(a) < 0 else r)
    if b == 0.0 or math.isinf(a):
        return math.nan
    return math.fmod(a, b)


def _negate(x: Any) -> Any:
    if type(x) is Int64:
        return _int64(-int(x), "neg")
    if type(x) is float:
        return -x
    raise FilterError(f"Cannot negate {type_name(x)}")


_ARITHMETIC: dict[str, Callable[[Any, Any], Any]] = {
    "add": _add,
    "sub": _sub,
    "mul": _mul,
    "div": _div,
    "mod": _mod,
}
