"""The container validators: ``v.array``, ``v.object`` (with its helpers ``pick``, ``omit``,
``extend``, ``partial``, ``required``), ``v.record`` and ``v.union``."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Any

from convex_notebook.values._check import MAX_OBJECT_FIELDS, _top_field_problem
from convex_notebook.values._model import MISSING, Int64

from .base import (
    _NOPE,
    IdTable,
    SchemaDefinitionError,
    Validator,
    _ensure_validator,
    is_identifier,
)
from .compiled import _compile_object_fast_path
from .messages import (
    _at,
    _key_segment,
    _message,
    _Mismatch,
    _path_line,
    _received,
    _short,
    _trunc,
)
from .scalars import IdValidator, LiteralValidator, StringValidator, _raw_literal_keys

_UNCOMPILED = object()

# Types whose acceptance a validator can decide from ``_types`` alone (union prefilter).
_CANON_TYPES = frozenset({str, float, int, bool, type(None), bytes, list, tuple, dict, Int64})


class ArrayValidator(Validator):
    """``v.array(element)``: a list (or tuple) whose elements all match ``element``."""

    __slots__ = ("element",)
    kind = "array"
    _types = frozenset({list, tuple})

    def __init__(self, element: Validator) -> None:
        super().__init__()
        _ensure_validator(element, "v.array(element)")
        element._require_not_optional("as an array element")
        self.element = element

    @property
    def json(self) -> dict:
        return {"type": "array", "value": self.element.json}

    def _repr(self) -> str:
        return f"v.array({self.element!r})"

    def _args(self) -> tuple:
        return (self.element,)

    def _conv(self, raw, id_table):
        t = type(raw)
        if t is not list and t is not tuple:
            if isinstance(raw, (list, tuple)):
                raw = list(raw)
            else:
                return self._retry(raw, id_table)
        conv = self.element._conv
        try:
            return [conv(x, id_table) for x in raw]
        except _Mismatch:
            pass
        for i, x in enumerate(raw):  # error path only: find the failing index
            try:
                conv(x, id_table)
            except _Mismatch as e:
                e.segments.append(f"[{i}]")
                raise
        raise AssertionError("unreachable")  # pragma: no cover


def _check_field_name(name: Any) -> str:
    if not isinstance(name, str):
        raise SchemaDefinitionError(f"v.object() field names must be strings, got {name!r}")
    if not is_identifier(name):
        raise SchemaDefinitionError(
            f"Invalid field name {name!r} in v.object(): field names must be identifiers "
            "([A-Za-z_][A-Za-z0-9_]*, at most 64 characters, not only underscores)"
        )
    return name


class ObjectValidator(Validator):
    """``v.object({...})``: a dict with exactly these fields (optional ones may be missing).

    ``fields`` maps each name to its validator; optional fields have ``is_optional=True``.
    Values equal to ``MISSING`` count as missing.  Extra fields are rejected.
    """

    __slots__ = ("_document_fast", "_fast", "_items", "_segs", "fields")
    kind = "object"
    _types = frozenset({dict})

    def __init__(self, fields: Mapping[str, Validator]) -> None:
        super().__init__()
        if not isinstance(fields, Mapping):
            raise TypeError(f"v.object() takes a dict of validators, got {fields!r}")
        checked: dict[str, Validator] = {}
        for name, val in fields.items():
            _check_field_name(name)
            _ensure_validator(val, f"v.object() field {name!r}")
            checked[name] = val
        self.fields: Mapping[str, Validator] = MappingProxyType(checked)  # read-only
        self._items = tuple((n, f, f.is_optional) for n, f in checked.items())
        self._segs = {n: "." + n for n in checked}
        self._fast = _compile_object_fast_path(self._items)
        self._document_fast: Any = _UNCOMPILED  # document_fast_path(), compiled on first use

    @property
    def json(self) -> dict:
        return {
            "type": "object",
            "value": {
                n: {"fieldType": f.json, "optional": f.is_optional} for n, f in self.fields.items()
            },
        }

    def _repr(self) -> str:
        inner = ", ".join(f"{n!r}: {f!r}" for n, f in self.fields.items())
        return "v.object({" + inner + "})"

    def _args(self) -> tuple:
        return (dict(self.fields),)

    def convert(self, raw: Any, *, path: str = "", id_table: IdTable | None = None) -> Any:
        if type(raw) is dict and not self.is_optional:  # the common case, one call shorter
            out = self._fast(raw, id_table)
            if out is not _NOPE:
                return out
        return Validator.convert(self, raw, path=path, id_table=id_table)

    validate = convert

    def document_fast_path(self) -> Callable[[dict, Any], tuple[dict, int, bool] | None] | None:
        """For a table's document validator: ``fast(doc, id_table)`` validating ``doc`` and
        making ``normalize_document``'s checks in one pass, returning ``(document, size,
        plain)`` (plain: ``dumps_document`` would find it plain JSON) or None when the general
        path must run (see ``_compile_object_fast_path``). None when the
        fields themselves rule it out (a name ``normalize_document`` rejects, too many)."""
        fast = self._document_fast
        if fast is _UNCOMPILED:
            items = self._items
            if len(items) > MAX_OBJECT_FIELDS or any(_top_field_problem(n) for n, _, _ in items):
                fast = None
            else:
                fast = _compile_object_fast_path(items, measure=True)
            self._document_fast = fast
        return fast

    def _conv(self, raw, id_table):
        if type(raw) is dict:
            out = self._fast(raw, id_table)
            if out is not _NOPE:
                return out
        else:
            if isinstance(raw, dict):
                raw = dict(raw)
            else:
                return self._retry(raw, id_table)
        out = {}
        get = raw.get
        seen = 0
        for name, fv, optional in self._items:
            val = get(name, MISSING)
            if val is MISSING:
                if optional:
                    continue
                raise self._missing(name, raw)
            seen += 1
            try:
                out[name] = fv._conv(val, id_table)
            except _Mismatch as e:
                e.segments.append(self._segs[name])
                raise
        if seen != len(raw):
            fields = self.fields
            for k, val in raw.items():
                if val is not MISSING and k not in fields:
                    raise self._extra(k)
        return out

    def _missing(self, name: str, raw: dict) -> _Mismatch:
        me = _trunc(repr(self), 200)
        got = _short(raw, 120)
        return _Mismatch(
            lambda path: f"Object is missing the required field `{name}`. Consider wrapping "
            "the field validator in `v.optional(...)` if this is expected."
            f"{_path_line(path)}\nObject: {got}\nValidator: {me}"
        )

    def _extra(self, key: Any) -> _Mismatch:
        me = _trunc(repr(self), 200)
        return _Mismatch(
            lambda path: f"Object contains extra field `{key}` that is not in the "
            f"validator.{_path_line(path)}\nValidator: {me}"
        )

    # -- helpers (each returns a new ObjectValidator) -----------------------------------

    def _derive(self, fields: Mapping[str, Validator]) -> ObjectValidator:
        new = ObjectValidator(fields)
        new.is_optional = self.is_optional
        return new

    def _known(self, keys: Iterable[str], op: str) -> None:
        unknown = [k for k in keys if k not in self.fields]
        if unknown:
            raise SchemaDefinitionError(
                f".{op}(): unknown field(s) {', '.join(map(repr, unknown))}; "
                f"fields are {', '.join(map(repr, self.fields))}"
            )

    def pick(self, *keys: str) -> ObjectValidator:
        """Only the given fields."""
        self._known(keys, "pick")
        return self._derive({k: self.fields[k] for k in keys})

    def omit(self, *keys: str) -> ObjectValidator:
        """All fields except the given ones."""
        self._known(keys, "omit")
        drop = set(keys)
        return self._derive({k: f for k, f in self.fields.items() if k not in drop})

    def extend(self, fields: Mapping[str, Validator] | None = None, /, **more: Validator) -> ObjectValidator:
        """These fields plus ``fields`` (which override same-named ones)."""
        return self._derive({**self.fields, **(fields or {}), **more})

    def partial(self) -> ObjectValidator:
        """Every field optional (handy for patch arguments)."""
        return self._derive({k: f.as_optional() for k, f in self.fields.items()})

    def required(self) -> ObjectValidator:
        """Every field required, and the object itself required."""
        new = ObjectValidator({k: f.as_required() for k, f in self.fields.items()})
        return new


def _check_record_key_validator(key: Validator) -> bool:
    """Raise unless ``key`` is a valid record key validator; return whether it has literals."""
    if key.is_optional:
        raise SchemaDefinitionError("v.record() keys can't be optional")
    if isinstance(key, (StringValidator, IdValidator)):
        return False
    if isinstance(key, LiteralValidator) and isinstance(key.value, str):
        return True
    if isinstance(key, UnionValidator):
        has_literal = False
        for m in key.members:
            has_literal = _check_record_key_validator(m) or has_literal
        return has_literal
    raise SchemaDefinitionError(
        "v.record() keys must be v.string(), v.id(table), string literals or a union of those, "
        f"got {key!r}"
    )


def _bad_record_key(k: Any) -> str | None:
    if not isinstance(k, str):
        return "record keys must be strings"
    if not k:
        return "record keys must be non-empty"
    if not (k.isascii() and k.isprintable()):
        return "record keys must be printable ASCII"
    if k[0] == "$" or k[0] == "_":
        return "record keys must not start with '$' or '_'"
    return None


class RecordValidator(Validator):
    """``v.record(keys, values)``: a dict with dynamic keys.

    ``key`` must be ``v.string()``, ``v.id(t)`` or a union of those; ``value`` can't be
    optional.  As in current Convex, keys may also be string literals (or unions containing
    them), and then ``value`` *must* be ``v.optional(...)`` (every key may be absent):
    ``v.record(v.union(v.literal("a"), v.literal("b")), v.optional(v.number()))``.
    Keys must be non-empty printable ASCII not starting with ``$`` or ``_``.
    ``MISSING`` values are stripped.
    """

    __slots__ = ("key", "value")
    kind = "record"
    _types = frozenset({dict})

    def __init__(self, key: Validator, value: Validator) -> None:
        super().__init__()
        _ensure_validator(key, "v.record() keys")
        _ensure_validator(value, "v.record() values")
        has_literal = _check_record_key_validator(key)
        if has_literal and not value.is_optional:
            raise SchemaDefinitionError(
                "Records with string literal keys must have an optional value: use "
                f"v.record({key!r}, v.optional({value!r}))"
            )
        if value.is_optional and not has_literal:
            raise SchemaDefinitionError(
                "v.record() values can't be optional (only records whose keys are string "
                "literals take v.optional(...) values)"
            )
        self.key = key
        self.value = value

    @property
    def json(self) -> dict:
        return {
            "type": "record",
            "keys": self.key.json,
            "values": {"fieldType": self.value.json, "optional": self.value.is_optional},
        }

    def _repr(self) -> str:
        return f"v.record({self.key!r}, {self.value!r})"

    def _args(self) -> tuple:
        return (self.key, self.value)

    def _expected(self) -> str:
        return "`object` (a record)"

    def _conv(self, raw, id_table):
        if type(raw) is not dict:
            if isinstance(raw, dict):
                raw = dict(raw)
            else:
                return self._retry(raw, id_table)
        kconv = self.key._conv
        vconv = self.value._conv
        out = {}
        for k, val in raw.items():
            if val is MISSING:
                continue
            bad = _bad_record_key(k)
            if bad is not None:
                key_repr = _short(k)
                raise _Mismatch(lambda path, b=bad, k=key_repr: f"Invalid record key {k}{_at(path)}: {b}")
            try:
                k2 = kconv(k, id_table)
            except _Mismatch as e:
                inner = e
                raise _Mismatch(
                    lambda path, inner=inner: f"Invalid record key{_at(path)}: " + inner.fmt("")
                ) from None
            try:
                out[k2] = vconv(val, id_table)
            except _Mismatch as e:
                e.segments.append(_key_segment(k))
                raise
        return out


class UnionValidator(Validator):
    """``v.union(*members)``: the first member that accepts the value wins."""

    __slots__ = ("_lit_map", "_prefilter", "members")
    kind = "union"

    def __init__(self, *members: Validator) -> None:
        super().__init__()
        for m in members:
            _ensure_validator(m, "v.union() members")
            m._require_not_optional("as a union member")
        self.members: tuple[Validator, ...] = tuple(members)
        # All-literal unions (enums) resolve with one dict lookup.
        literals = [m for m in members if isinstance(m, LiteralValidator)]
        self._lit_map: dict | None = None
        if members and len(literals) == len(members):
            lit_map: dict = {}
            for i, lit in enumerate(literals):
                lit_map.setdefault(lit._lkey, (i, lit.value))
            self._lit_map = lit_map
        self._prefilter = tuple(m._types for m in members)

    @property
    def json(self) -> dict:
        return {"type": "union", "value": [m.json for m in self.members]}

    def _repr(self) -> str:
        return "v.union(" + ", ".join(repr(m) for m in self.members) + ")"

    def _args(self) -> tuple:
        return self.members

    def _expected(self) -> str:
        if not self.members:
            return "nothing (empty v.union())"
        return "one of " + _trunc(" | ".join(repr(m) for m in self.members), 300)

    def _conv(self, raw, id_table):
        if len(self.members) == 1:  # a one-member union reports its member's own error
            return self.members[0]._conv(raw, id_table)
        lit_map = self._lit_map
        if lit_map is not None:
            keys = _raw_literal_keys(raw)
            if keys is not None:
                best = None
                for k in keys:
                    hit = lit_map.get(k)
                    if hit is not None and (best is None or hit[0] < best[0]):
                        best = hit
                if best is not None:
                    return best[1]
            raise self._fail(raw)
        t = type(raw)
        canon = t in _CANON_TYPES
        failures: list[tuple[Validator, _Mismatch]] = []
        for m, types in zip(self.members, self._prefilter):
            if canon and types is not None and t not in types:
                continue
            try:
                return m._conv(raw, id_table)
            except _Mismatch as e:
                failures.append((m, e))
        raise self._union_fail(raw, failures)

    def _union_fail(self, raw: Any, failures: list) -> _Mismatch:
        expected = self._expected()
        # Explain the failures of members that got past the type check (objects, arrays...).
        deep = [(m, e) for m, e in failures if isinstance(m, (ObjectValidator, RecordValidator, ArrayValidator, UnionValidator))]
        lines = []
        for m, e in deep[:5]:
            _, msg = _message(e, "")
            first = msg.removeprefix("Validator error: ").split("\n", 1)[0]
            lines.append(f"\n  - {_trunc(repr(m), 100)}: {first}")
        tail = "".join(lines)
        return _Mismatch(lambda path: f"Expected {expected}{_at(path)}, got {_received(raw)}{tail}")
