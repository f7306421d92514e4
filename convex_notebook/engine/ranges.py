"""Index range expressions (``with_index(name, lambda q: q.eq(..).gt(..).lt(..))``).

The builder only records operations; :func:`resolve_range` checks them against the index's
fields with Convex's rules (equalities on a prefix of the fields, then at most one lower and
one upper bound on the next field) and turns them into a ``[lo, hi)`` byte interval.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import InvalidValueError
from ..values import MISSING, convex_value, encode_value, prefix_end

__all__ = ["IndexRangeBuilder", "IndexRangeError", "ResolvedRange", "resolve_range"]

_LOWEST = b""
_HIGHEST = b"\xff"


class IndexRangeError(InvalidValueError):
    """An index range that breaks Convex's rules (order, duplicates, unknown field)."""


class IndexRangeBuilder:
    """The ``q`` passed to ``with_index``; each method returns the builder for chaining."""

    __slots__ = ("ops",)

    def __init__(self) -> None:
        self.ops: list[tuple[str, str, Any]] = []

    def _push(self, op: str, field: str, value: Any) -> IndexRangeBuilder:
        if not isinstance(field, str):
            raise IndexRangeError(f"q.{op}() takes a field name first, got {type(field).__name__}")
        if value is not MISSING:
            value = convex_value(value, path=f"index range {field}")
        self.ops.append((op, field, value))
        return self

    def eq(self, field: str, value: Any) -> IndexRangeBuilder:
        return self._push("eq", field, value)

    def gt(self, field: str, value: Any) -> IndexRangeBuilder:
        return self._push("gt", field, value)

    def gte(self, field: str, value: Any) -> IndexRangeBuilder:
        return self._push("gte", field, value)

    def lt(self, field: str, value: Any) -> IndexRangeBuilder:
        return self._push("lt", field, value)

    def lte(self, field: str, value: Any) -> IndexRangeBuilder:
        return self._push("lte", field, value)


@dataclass(frozen=True)
class ResolvedRange:
    lo: bytes
    hi: bytes
    text: str  # canonical description, part of a pagination cursor's fingerprint


def resolve_range(
    ops: list[tuple[str, str, Any]], fields: tuple[str, ...], where: str
) -> ResolvedRange:
    """Check ``ops`` against the index ``fields`` and compute the key interval.

    ``fields`` include the implicit trailing ``_creationTime`` (and ``_id`` for by_id).
    ``where`` names the index in messages, e.g. ``"messages.by_channel"``.
    """
    eqs: dict[str, Any] = {}
    lower: tuple[str, str, Any] | None = None
    upper: tuple[str, str, Any] | None = None
    for op, field, value in ops:
        if field not in fields:
            raise IndexRangeError(
                f"The index {where} doesn't index this field: {field!r} "
                f"(its fields are {', '.join(fields)})"
            )
        if lower is not None and upper is not None:
            raise IndexRangeError(
                f"Index range on {where}: cannot chain more operators after both "
                "a lower bound (.gt/.gte) and an upper bound (.lt/.lte) were already used"
            )
        if op == "eq":
            if field in eqs:
                raise IndexRangeError(f"Index range on {where}: Already defined equality bound on {field!r}")
            if (lower and lower[1] == field) or (upper and upper[1] == field):
                raise IndexRangeError(f"Index range on {where}: Already defined inequality bound on {field!r}")
            eqs[field] = value
        else:
            if field in eqs:  # Convex reports an eq/bound overlap this way, whatever the order
                raise IndexRangeError(f"Index range on {where}: Already defined inequality bound on {field!r}")
            bound = (op, field, value)
            if op in ("gt", "gte"):
                if lower is not None:
                    raise IndexRangeError(f"Index range on {where}: Already defined lower bound on {lower[1]!r}")
                lower = bound
            else:
                if upper is not None:
                    raise IndexRangeError(f"Index range on {where}: Already defined upper bound on {upper[1]!r}")
                upper = bound
            if lower and upper and lower[1] != upper[1]:
                raise IndexRangeError(
                    f"Index range on {where}: range bounds can only be applied to a single index field "
                    f"(got {lower[1]!r} and {upper[1]!r})"
                )
    # Equalities must cover a prefix of the fields; a bound must be on the next field.
    k = len(eqs)
    if set(fields[:k]) != set(eqs):
        raise IndexRangeError(
            f"Index range on {where} didn't use the index fields in order: equalities must cover "
            f"{', '.join(fields[:k]) or '(none)'} first, got {', '.join(eqs)}"
        )
    either = lower or upper
    bound_field = either[1] if either else None
    if bound_field is not None and (k >= len(fields) or fields[k] != bound_field):
        expected = fields[k] if k < len(fields) else "(no more fields)"
        raise IndexRangeError(
            f"Index range on {where} didn't use the index fields in order: "
            f"a range on {bound_field!r} must come on {expected!r}, after equalities on the fields before it"
        )
    prefix = b"".join(encode_value(eqs[f]) for f in fields[:k])
    lo = prefix
    hi = prefix_end(prefix) if prefix else _HIGHEST
    if lower is not None:
        enc = prefix + encode_value(lower[2])
        lo = enc if lower[0] == "gte" else prefix_end(enc)
    if upper is not None:
        enc = prefix + encode_value(upper[2])
        hi = enc if upper[0] == "lt" else prefix_end(enc)
    parts = [f"eq({f},{eqs[f]!r})" for f in fields[:k]]
    parts += [f"{b[0]}({b[1]},{b[2]!r})" for b in (lower, upper) if b]
    return ResolvedRange(lo, hi, ".".join(parts))
