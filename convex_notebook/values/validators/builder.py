"""``v``, the validator builder (Convex's ``v``): ``v.string()``, ``v.object({...})``, ..."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .base import Validator, _ensure_validator
from .containers import ArrayValidator, ObjectValidator, RecordValidator, UnionValidator
from .scalars import (
    AnyValidator,
    BooleanValidator,
    BytesValidator,
    Float64Validator,
    IdValidator,
    Int64Validator,
    LiteralValidator,
    NullValidator,
    StringValidator,
)

_STRING = StringValidator()
_FLOAT64 = Float64Validator()
_INT64 = Int64Validator()
_BOOLEAN = BooleanValidator()
_NULL = NullValidator()
_BYTES = BytesValidator()
_ANY = AnyValidator()


class _V:
    """The validator builder, Convex's ``v``."""

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        """A misspelt validator names the real ones (``v.strng`` → did you mean v.string?)."""
        import difflib

        known = sorted(n for n in dir(type(self)) if not n.startswith("_"))
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"did you mean v.{close[0]}()? " if close else ""
        raise AttributeError(f"v has no validator {name!r}: {hint}Validators: {', '.join(f'v.{n}' for n in known)}")

    @staticmethod
    def string() -> StringValidator:
        return _STRING

    @staticmethod
    def number() -> Float64Validator:
        return _FLOAT64

    @staticmethod
    def float64() -> Float64Validator:
        return _FLOAT64

    @staticmethod
    def int64() -> Int64Validator:
        return _INT64

    @staticmethod
    def bigint() -> Int64Validator:
        return _INT64

    @staticmethod
    def boolean() -> BooleanValidator:
        return _BOOLEAN

    @staticmethod
    def null() -> NullValidator:
        return _NULL

    @staticmethod
    def bytes() -> BytesValidator:
        return _BYTES

    @staticmethod
    def any() -> AnyValidator:
        return _ANY

    @staticmethod
    def id(table_name: str) -> IdValidator:
        return IdValidator(table_name)

    @staticmethod
    def literal(value: Any) -> LiteralValidator:
        return LiteralValidator(value)

    @staticmethod
    def array(element: Validator) -> ArrayValidator:
        return ArrayValidator(element)

    @staticmethod
    def object(fields: Mapping[str, Validator] | None = None, /, **kw: Validator) -> ObjectValidator:
        if fields is not None and not isinstance(fields, Mapping):
            raise TypeError(f"v.object() takes a dict of validators, got {fields!r}")
        return ObjectValidator({**(fields or {}), **kw})

    @staticmethod
    def record(keys: Validator, values: Validator) -> RecordValidator:
        return RecordValidator(keys, values)

    @staticmethod
    def union(*members: Validator) -> UnionValidator:
        return UnionValidator(*members)

    @staticmethod
    def optional(inner: Validator) -> Validator:
        return _ensure_validator(inner, "v.optional(x)").as_optional()

    @staticmethod
    def nullable(inner: Validator) -> UnionValidator:
        return UnionValidator(_ensure_validator(inner, "v.nullable(x)"), _NULL)

    def __repr__(self) -> str:
        return "v"


v = _V()
