"""The base class every validator shares: checking and its fallback, introspection
(``json``, ``repr``, equality), optionality, pickling; and what a definition may be named."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

from convex_notebook.errors import InvalidValueError
from convex_notebook.values._check import convex_value

from .messages import _IDENT_RE, _at, _Mismatch, _raise_validation, _received

IdTable = Callable[[str], "str | None"]

_MAX_IDENTIFIER_LEN = 64


class SchemaDefinitionError(ValueError):
    """A validator, table or schema definition is malformed (raised at definition time)."""


def is_identifier(name: object) -> bool:
    """Convex identifier: ``[A-Za-z_][A-Za-z0-9_]*``, at most 64 chars, not only underscores."""
    return (
        isinstance(name, str)
        and len(name) <= _MAX_IDENTIFIER_LEN
        and _IDENT_RE.match(name) is not None
        and name.strip("_") != ""
    )


def _normalise(raw: Any) -> Any:
    """Slow path for values no fast path recognised: ``convex_value`` or ``_NOPE``."""
    try:
        norm = convex_value(raw)
    except (InvalidValueError, TypeError, ValueError, RecursionError):
        return _NOPE
    if norm is raw or type(norm) is type(raw):
        return _NOPE
    return norm


_NOPE = object()  # "no result": a fast path declined, or a value could not be normalised


class Validator:
    """Base class of every validator.  Build them with :data:`v`, not directly.

    Attributes: ``kind`` (``"string"``, ``"float64"``, ``"int64"``, ``"boolean"``, ``"null"``,
    ``"bytes"``, ``"any"``, ``"id"``, ``"literal"``, ``"array"``, ``"object"``, ``"record"``,
    ``"union"``) and ``is_optional`` (bool).
    """

    __slots__ = ("_hash", "is_optional")
    kind: str = "?"
    # Python types this validator may accept without normalisation (None: don't prefilter).
    _types: frozenset | None = None

    def __init__(self) -> None:
        self.is_optional = False
        self._hash: int | None = None

    # -- checking -----------------------------------------------------------------------

    def convert(self, raw: Any, *, path: str = "", id_table: IdTable | None = None) -> Any:
        """Validate ``raw`` and return it in canonical Convex form.

        ``path`` prefixes the path in error messages (``""`` is the root).  ``id_table``
        maps an ID string to its table name (or ``None``); without it ``v.id`` only checks
        that the string decodes as an ID.  Raises :class:`ValidationError`.
        """
        if self.is_optional:
            raise SchemaDefinitionError(
                f"{self!r} can't be used on its own: v.optional(...) is only allowed as a "
                "field of v.object({...}) (or a top-level argument in an args dict)"
            )
        try:
            return self._conv(raw, id_table)
        except _Mismatch as e:
            _raise_validation(e, path)

    validate = convert

    def is_valid(self, raw: Any, *, id_table: IdTable | None = None) -> bool:
        """``True`` when ``convert`` would succeed."""
        try:
            self._conv(raw, id_table)
        except _Mismatch:
            return False
        return True

    def _conv(self, raw: Any, id_table: IdTable | None) -> Any:  # pragma: no cover
        raise NotImplementedError

    def _fail(self, raw: Any, note: str = "") -> _Mismatch:
        expected = self._expected()
        return _Mismatch(lambda path: f"Expected {expected}{_at(path)}, got {_received(raw)}{note}")

    def _expected(self) -> str:
        return f"`{self.kind}`"

    def _retry(self, raw: Any, id_table: IdTable | None) -> Any:
        """Fast path failed: normalise with ``convex_value`` and try once more, or fail."""
        norm = _normalise(raw)
        if norm is _NOPE:
            raise self._fail(raw)
        try:
            return self._conv(norm, id_table)
        except _Mismatch:
            raise self._fail(raw) from None

    # -- introspection ------------------------------------------------------------------

    @property
    def json(self) -> dict:
        """Convex ValidatorJSON (optionality lives in the enclosing object's field entry)."""
        return {"type": self.kind}

    def _repr(self) -> str:
        return f"v.{self.kind}()"

    def __repr__(self) -> str:
        r = self._repr()
        return f"v.optional({r})" if self.is_optional else r

    def _key(self) -> str:
        return json.dumps([self.is_optional, self.json], sort_keys=True)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Validator):
            return NotImplemented
        return self is other or self._key() == other._key()

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = hash(self._key())
        return self._hash

    def __copy__(self) -> Validator:
        cls = type(self)
        new = cls.__new__(cls)
        for klass in cls.__mro__:
            for slot in klass.__dict__.get("__slots__", ()):
                if hasattr(self, slot):
                    setattr(new, slot, getattr(self, slot))
        return new

    def __reduce__(self) -> tuple:
        return (_rebuild, (type(self), self._args(), self.is_optional))

    def _args(self) -> tuple:
        """The constructor's arguments (for pickling)."""
        return ()

    # -- optionality --------------------------------------------------------------------

    def _with_optional(self, flag: bool) -> Validator:
        if self.is_optional == flag:
            return self
        new = copy.copy(self)
        new.is_optional = flag
        new._hash = None
        return new

    def as_optional(self) -> Validator:
        """A copy marked optional (same as ``v.optional(self)``)."""
        return self._with_optional(True)

    def as_required(self) -> Validator:
        """A copy marked required."""
        return self._with_optional(False)

    def _require_not_optional(self, where: str) -> None:
        if self.is_optional:
            raise SchemaDefinitionError(
                f"{self!r} is not allowed {where}: v.optional(...) is only allowed as a field "
                "of v.object({...})"
            )


def _ensure_validator(x: Any, where: str) -> Validator:
    if not isinstance(x, Validator):
        raise TypeError(f"{where} must be a validator (built with v.*), got {x!r}")
    return x



def _rebuild(cls: type[Validator], args: tuple, optional: bool) -> Validator:
    """Unpickle a validator."""
    return cls(*args)._with_optional(optional)
