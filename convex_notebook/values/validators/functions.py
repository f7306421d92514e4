"""A function's ``args=`` and ``returns=`` as validators, and Convex's
``paginationOptsValidator``."""

from __future__ import annotations

from collections.abc import Mapping

from .base import SchemaDefinitionError, Validator
from .builder import _FLOAT64, _NULL, _STRING
from .containers import ObjectValidator, UnionValidator

#: Convex's ``paginationOptsValidator``: the ``paginate`` options an args dict can declare.
pagination_opts_validator = ObjectValidator(
    {
        "numItems": _FLOAT64,
        "cursor": UnionValidator(_STRING, _NULL),
        "endCursor": UnionValidator(_STRING, _NULL).as_optional(),
        "id": _FLOAT64.as_optional(),
        "maximumRowsRead": _FLOAT64.as_optional(),
        "maximumBytesRead": _FLOAT64.as_optional(),
    }
)


def args_validator(spec: Mapping[str, Validator] | Validator | None) -> ObjectValidator | None:
    """Normalise a function's ``args=``: a dict of validators or ``v.object(...)``; ``None``
    means "no validation".  Top-level arguments must be an object."""
    if spec is None:
        return None
    if isinstance(spec, Mapping):
        return ObjectValidator(spec)
    if isinstance(spec, ObjectValidator):
        spec._require_not_optional("as a function's args")
        return spec
    if isinstance(spec, Validator):
        raise SchemaDefinitionError(
            f"args must be a dict of validators or v.object({{...}}), got {spec!r}: "
            "a function's arguments are always an object"
        )
    raise TypeError(f"args must be a dict of validators or v.object({{...}}), got {spec!r}")


def returns_validator(spec: Mapping[str, Validator] | Validator | None) -> Validator | None:
    """Normalise a function's ``returns=``: a validator (a dict means ``v.object``) or None."""
    if spec is None:
        return None
    if isinstance(spec, Mapping):
        return ObjectValidator(spec)
    if isinstance(spec, Validator):
        spec._require_not_optional("as a function's returns validator")
        return spec
    raise TypeError(f"returns must be a validator, got {spec!r}")
