"""ValidatorJSON → validator: :func:`validator_from_json`, the exact inverse of ``.json``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from .base import SchemaDefinitionError, Validator
from .builder import _ANY, _BOOLEAN, _BYTES, _FLOAT64, _INT64, _NULL, _STRING
from .containers import ArrayValidator, ObjectValidator, RecordValidator, UnionValidator
from .scalars import IdValidator, LiteralValidator, _decode_scalar

_SIMPLE = {
    "string": _STRING,
    "number": _FLOAT64,
    "float64": _FLOAT64,
    "bigint": _INT64,
    "int64": _INT64,
    "boolean": _BOOLEAN,
    "null": _NULL,
    "bytes": _BYTES,
    "any": _ANY,
}


def _field_from_json(obj: Any, where: str) -> Validator:
    if not isinstance(obj, Mapping) or "fieldType" not in obj:
        raise SchemaDefinitionError(f"Bad field entry in {where}: {obj!r}")
    inner = validator_from_json(obj["fieldType"])
    return inner.as_optional() if obj.get("optional", False) else inner


def validator_from_json(obj: Any) -> Validator:
    """Build a validator from Convex ValidatorJSON (the exact inverse of ``.json``)."""
    if not isinstance(obj, Mapping) or "type" not in obj:
        raise SchemaDefinitionError(f"Not a ValidatorJSON object: {obj!r}")
    t = obj["type"]
    simple = _SIMPLE.get(t) if isinstance(t, str) else None
    if simple is not None:
        return simple
    if t == "id":
        return IdValidator(cast(str, obj.get("tableName")))  # IdValidator refuses a non-string
    if t == "literal":
        if "value" not in obj:
            raise SchemaDefinitionError(f"Literal ValidatorJSON without a value: {obj!r}")
        return LiteralValidator(_decode_scalar(obj["value"]))
    if t == "array":
        return ArrayValidator(validator_from_json(obj.get("value")))
    if t == "object":
        value = obj.get("value")
        if not isinstance(value, Mapping):
            raise SchemaDefinitionError(f"Object ValidatorJSON needs a 'value' mapping: {obj!r}")
        return ObjectValidator({k: _field_from_json(f, f"field {k!r}") for k, f in value.items()})
    if t == "record":
        return RecordValidator(
            validator_from_json(obj.get("keys")), _field_from_json(obj.get("values"), "record values")
        )
    if t == "union":
        members = obj.get("value")
        if not isinstance(members, list):
            raise SchemaDefinitionError(f"Union ValidatorJSON needs a 'value' list: {obj!r}")
        return UnionValidator(*(validator_from_json(m) for m in members))
    raise SchemaDefinitionError(f"Unknown validator type {t!r}")
