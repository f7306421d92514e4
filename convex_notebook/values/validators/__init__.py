"""Convex validators (``v.*``): checking, coercion, introspection and ValidatorJSON.

Public surface::

    from convex_notebook.values.validators import v, Validator, validator_from_json

    user = v.object({"name": v.string(), "age": v.optional(v.number())})
    doc = user.convert({"name": "Ada"})            # -> {"name": "Ada"}, or raises ValidationError
    user.json                                       # Convex ValidatorJSON (a plain dict)
    validator_from_json(user.json) == user          # True

Design notes

* ``v.optional(x)`` returns a copy of ``x`` whose ``is_optional`` flag is ``True`` (the way
  convex-js does it); there is no separate optional class.  ``kind`` stays the kind of ``x``.
  An optional validator is only meaningful as a field of ``v.object``; using it as an array
  element, a union member, a record key/value, or calling ``.convert`` on it directly raises
  :class:`SchemaDefinitionError`.
* ``convert`` validates a *raw* Python value (or an already normalised one: it is idempotent)
  and returns the canonical Convex form (``list``/``dict``/``float``/``Int64``/``bytes`` ...).
  It checks types and shapes, record-key syntax and, for ``v.any()``, everything
  :func:`convex_value` checks.  It does *not* enforce the global value limits (total size,
  nesting depth, array length, object field count) below a typed validator: run
  :func:`convex_value` on the result when those matter (documents, arguments).
* One module per job: ``messages`` (failures and how they are told), ``base`` (the
  ``Validator`` class), ``scalars`` (leaf and literal validators), ``containers`` (array,
  object, record, union), ``compiled`` (the generated fast path of ``v.object``),
  ``builder`` (``v``), ``from_json`` (ValidatorJSON → validator) and ``functions`` (a
  function's ``args``/``returns``).
* Internally every validator has ``_conv(raw, id_table)`` which raises the private
  ``_Mismatch``; paths are assembled only when something fails, so the success path costs
  no string building.
"""

from __future__ import annotations

from .base import SchemaDefinitionError, Validator, is_identifier
from .builder import v
from .containers import ArrayValidator, ObjectValidator, RecordValidator, UnionValidator
from .from_json import validator_from_json
from .functions import args_validator, pagination_opts_validator, returns_validator
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

__all__ = [
    "AnyValidator",
    "ArrayValidator",
    "BooleanValidator",
    "BytesValidator",
    "Float64Validator",
    "IdValidator",
    "Int64Validator",
    "LiteralValidator",
    "NullValidator",
    "ObjectValidator",
    "RecordValidator",
    "SchemaDefinitionError",
    "StringValidator",
    "UnionValidator",
    "Validator",
    "args_validator",
    "is_identifier",
    "pagination_opts_validator",
    "returns_validator",
    "v",
    "validator_from_json",
]
