"""Schema definitions: ``define_schema``, ``define_table`` and their indexes.

::

    schema = define_schema({
        "tasks": define_table({"text": v.string(), "list": v.id("lists")})
                 .index("by_list", ["list"])
                 .search_index("search_text", search_field="text", filter_fields=["list"]),
    })
    schema.to_json()                        # JSON-serialisable, for persisting
    SchemaDefinition.from_json(...) == schema
    schema.tables["tasks"].validate_document({"text": "hi", "list": lid}, id_table=...)

Everything is checked when it is defined (names, limits, field rules), raising
:class:`SchemaDefinitionError` (a ``ValueError``).  Runtime document checks raise
:class:`~convex_notebook.errors.ValidationError`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from convex_notebook.errors import ValidationError

from .validators import (
    AnyValidator,
    ArrayValidator,
    Float64Validator,
    ObjectValidator,
    SchemaDefinitionError,
    UnionValidator,
    Validator,
    is_identifier,
    v,
    validator_from_json,
)

__all__ = [
    "IndexDefinition",
    "SchemaDefinition",
    "SchemaDefinitionError",
    "SearchIndexDefinition",
    "TableDefinition",
    "VectorIndexDefinition",
    "define_schema",
    "define_table",
]

SYSTEM_FIELDS = ("_id", "_creationTime")
RESERVED_INDEX_NAMES = frozenset({"by_id", "by_creation_time"})
MAX_INDEXES_PER_TABLE = 32
MAX_INDEX_FIELDS = 15  # 16 including the automatic _creationTime
MAX_SEARCH_INDEXES = 4
MAX_VECTOR_INDEXES = 4
MAX_FILTER_FIELDS = 16
MIN_VECTOR_DIMENSIONS = 2
MAX_VECTOR_DIMENSIONS = 4096


# --------------------------------------------------------------------------------------
# Index definitions
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IndexDefinition:
    """A database index; ``fields`` excludes the ``_creationTime`` appended automatically."""

    name: str
    fields: tuple[str, ...]
    staged: bool = False

    def to_json(self) -> dict:
        return {"indexDescriptor": self.name, "fields": list(self.fields), "staged": self.staged}


@dataclass(frozen=True)
class SearchIndexDefinition:
    name: str
    search_field: str
    filter_fields: tuple[str, ...] = ()
    staged: bool = False

    def to_json(self) -> dict:
        return {
            "indexDescriptor": self.name,
            "searchField": self.search_field,
            "filterFields": list(self.filter_fields),
            "staged": self.staged,
        }


@dataclass(frozen=True)
class VectorIndexDefinition:
    name: str
    vector_field: str
    dimensions: int
    filter_fields: tuple[str, ...] = ()
    staged: bool = False

    def to_json(self) -> dict:
        return {
            "indexDescriptor": self.name,
            "vectorField": self.vector_field,
            "dimensions": self.dimensions,
            "filterFields": list(self.filter_fields),
            "staged": self.staged,
        }


# --------------------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------------------


def _check_field_path(path: Any, what: str) -> str:
    """A field path (``"a"`` or ``"a.b"``) usable in an index."""
    if not isinstance(path, str):
        raise SchemaDefinitionError(f"{what}: field paths must be strings, got {path!r}")
    if path == "_creationTime":
        raise SchemaDefinitionError(
            f"{what}: `_creationTime` is automatically added to the end of each index; "
            "don't list it yourself"
        )
    parts = path.split(".")
    for part in parts:
        if not is_identifier(part):
            raise SchemaDefinitionError(
                f"{what}: invalid field path {path!r} (each part must be an identifier "
                "[A-Za-z_][A-Za-z0-9_]*, at most 64 characters)"
            )
    if parts[0].startswith("_"):
        raise SchemaDefinitionError(
            f"{what}: field {path!r} starts with `_`, which is reserved for system fields"
        )
    return path


def _check_fields(fields: Any, what: str, *, min_count: int, max_count: int) -> tuple[str, ...]:
    if isinstance(fields, str) or not isinstance(fields, Iterable):
        raise SchemaDefinitionError(f"{what}: fields must be a list of field paths, got {fields!r}")
    out = tuple(_check_field_path(f, what) for f in fields)
    if len(out) < min_count:
        raise SchemaDefinitionError(f"{what}: an index needs at least {min_count} field")
    if len(out) > max_count:
        raise SchemaDefinitionError(
            f"{what}: too many fields ({len(out)} > maximum {max_count})"
        )
    seen: set[str] = set()
    for f in out:
        if f in seen:
            raise SchemaDefinitionError(f"{what}: duplicate field {f!r}")
        seen.add(f)
    return out


def _check_bool(x: Any, what: str) -> bool:
    if not isinstance(x, bool):
        raise SchemaDefinitionError(f"{what}: staged must be a bool, got {x!r}")
    return x


def _check_document_validator(val: Validator) -> None:
    """Top-level fields of a table: object, union of objects, or any; no `_` fields."""
    if val.is_optional:
        raise SchemaDefinitionError(
            f"define_table() got {val!r}: v.optional(...) is only allowed as an object field"
        )
    if isinstance(val, AnyValidator):
        return
    if isinstance(val, UnionValidator):
        if not val.members:
            raise SchemaDefinitionError("define_table(): an empty v.union() accepts no document")
        for m in val.members:
            _check_document_validator(m)
        return
    if not isinstance(val, ObjectValidator):
        raise SchemaDefinitionError(
            "define_table() takes a dict of field validators, v.object({...}), a v.union() of "
            f"v.object()s, or v.any(); got {val!r}"
        )
    for name in val.fields:
        if name.startswith("_") and name not in SYSTEM_FIELDS:
            raise SchemaDefinitionError(
                f"Invalid field name {name!r} in the table's document validator: top-level "
                "fields must not start with `_` (only the system fields `_id` and "
                "`_creationTime` may be declared)"
            )


def _declares_system_fields(val: Validator) -> bool:
    if isinstance(val, ObjectValidator):
        return any(f in val.fields for f in SYSTEM_FIELDS)
    if isinstance(val, UnionValidator):
        return any(_declares_system_fields(m) for m in val.members)
    return False


def _with_optional_system_fields(val: Validator) -> Validator:
    """The validator for a stored document: declared system fields become optional."""
    if isinstance(val, ObjectValidator):
        fields = dict(val.fields)
        for f in SYSTEM_FIELDS:
            fields[f] = fields[f].as_optional() if f in fields else v.any().as_optional()
        return ObjectValidator(fields)
    if isinstance(val, UnionValidator):
        return UnionValidator(*(_with_optional_system_fields(m) for m in val.members))
    return val


def _can_hold_vector(val: Validator, parts: list[str]) -> bool:
    """Can the field at ``parts`` hold an array of float64? (lenient, like Convex)."""
    if not parts:
        if isinstance(val, AnyValidator):
            return True
        if isinstance(val, ArrayValidator):
            return isinstance(val.element, (Float64Validator, AnyValidator))
        if isinstance(val, UnionValidator):
            return any(_can_hold_vector(m, parts) for m in val.members)
        return False
    if isinstance(val, AnyValidator):
        return True
    if isinstance(val, UnionValidator):
        return any(_can_hold_vector(m, parts) for m in val.members)
    if isinstance(val, ObjectValidator):
        inner = val.fields.get(parts[0])
        return True if inner is None else _can_hold_vector(inner, parts[1:])
    return False


# --------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------


class TableDefinition:
    """A table of a schema: its document validator and its indexes.

    Build with :func:`define_table`; ``.index()``, ``.search_index()`` and
    ``.vector_index()`` add to this definition and return it, so calls chain.
    """

    def __init__(self, document_validator: Validator) -> None:
        _check_document_validator(document_validator)
        self.document_validator: Validator = document_validator
        self.indexes: list[IndexDefinition] = []
        self.search_indexes: list[SearchIndexDefinition] = []
        self.vector_indexes: list[VectorIndexDefinition] = []
        # Set by define_schema (the first schema this table is put in); used in messages.
        self.name: str | None = None
        self._system_declared = _declares_system_fields(document_validator)
        self._stored_validator = (
            _with_optional_system_fields(document_validator) if self._system_declared else None
        )

    @property
    def validator(self) -> Validator:
        """The document validator (Convex's ``schema.tables.t.validator``): the table's fields,
        without ``_id`` / ``_creationTime``; ``.extend(...)``/``.fields`` build return validators."""
        return self.document_validator

    # -- indexes ------------------------------------------------------------------------

    def _index_names(self) -> set[str]:
        return (
            {i.name for i in self.indexes}
            | {i.name for i in self.search_indexes}
            | {i.name for i in self.vector_indexes}
        )

    def _check_index_name(self, name: Any, kind: str) -> str:
        if not isinstance(name, str):
            raise SchemaDefinitionError(f"{kind} names must be strings, got {name!r}")
        if name.startswith("_"):
            raise SchemaDefinitionError(
                f"Invalid {kind} name {name!r}: index names must not start with `_`"
            )
        if not is_identifier(name):
            raise SchemaDefinitionError(
                f"Invalid {kind} name {name!r}: index names must be identifiers "
                "([A-Za-z_][A-Za-z0-9_]*) of at most 64 characters"
            )
        if name in RESERVED_INDEX_NAMES:
            raise SchemaDefinitionError(
                f"Invalid {kind} name {name!r}: `by_id` and `by_creation_time` are reserved "
                "(every table has them built in)"
            )
        if name in self._index_names():
            raise SchemaDefinitionError(f"Duplicate index name {name!r} in this table")
        return name

    def index(
        self,
        name: str,
        fields: Iterable[str] | Mapping[str, Any] | None = None,
        *,
        staged: bool | None = None,
    ) -> TableDefinition:
        """Add a database index on ``fields`` (a list, or ``{"fields": [...], "staged": b}``)."""
        if isinstance(fields, Mapping):
            cfg = dict(fields)
            unknown = set(cfg) - {"fields", "staged"}
            if unknown:
                raise SchemaDefinitionError(f"index {name!r}: unknown option(s) {sorted(unknown)}")
            fields = cfg.get("fields")
            if staged is None:
                staged = cfg.get("staged", False)
        if fields is None:
            raise SchemaDefinitionError(f"index {name!r}: fields are required")
        name = self._check_index_name(name, "index")
        what = f"Index {name!r}"
        checked = _check_fields(fields, what, min_count=1, max_count=MAX_INDEX_FIELDS)
        staged = _check_bool(False if staged is None else staged, what)
        if len(self.indexes) >= MAX_INDEXES_PER_TABLE:
            raise SchemaDefinitionError(
                f"Too many indexes: a table can have at most {MAX_INDEXES_PER_TABLE}"
            )
        self.indexes.append(IndexDefinition(name, checked, staged))
        return self

    def search_index(
        self,
        name: str,
        config: Mapping[str, Any] | None = None,
        *,
        search_field: str | None = None,
        filter_fields: Iterable[str] = (),
        staged: bool = False,
    ) -> TableDefinition:
        """Add a full-text search index on the string field ``search_field``."""
        if config is not None:
            cfg = dict(config)
            unknown = set(cfg) - {"searchField", "filterFields", "staged"}
            if unknown:
                raise SchemaDefinitionError(f"search index {name!r}: unknown option(s) {sorted(unknown)}")
            search_field = cfg.get("searchField", search_field)
            filter_fields = cfg.get("filterFields", filter_fields)
            staged = cfg.get("staged", staged)
        name = self._check_index_name(name, "search index")
        what = f"Search index {name!r}"
        if search_field is None:
            raise SchemaDefinitionError(f"{what}: search_field is required")
        search_field = _check_field_path(search_field, what)
        filters = _check_fields(filter_fields, what, min_count=0, max_count=MAX_FILTER_FIELDS)
        staged = _check_bool(staged, what)
        if len(self.search_indexes) >= MAX_SEARCH_INDEXES:
            raise SchemaDefinitionError(
                f"Too many search indexes: a table can have at most {MAX_SEARCH_INDEXES}"
            )
        self.search_indexes.append(SearchIndexDefinition(name, search_field, filters, staged))
        return self

    def vector_index(
        self,
        name: str,
        config: Mapping[str, Any] | None = None,
        *,
        vector_field: str | None = None,
        dimensions: int | None = None,
        filter_fields: Iterable[str] = (),
        staged: bool = False,
    ) -> TableDefinition:
        """Add a vector index on ``vector_field`` (an array of float64 of ``dimensions``)."""
        if config is not None:
            cfg = dict(config)
            unknown = set(cfg) - {"vectorField", "dimensions", "filterFields", "staged"}
            if unknown:
                raise SchemaDefinitionError(f"vector index {name!r}: unknown option(s) {sorted(unknown)}")
            vector_field = cfg.get("vectorField", vector_field)
            dimensions = cfg.get("dimensions", dimensions)
            filter_fields = cfg.get("filterFields", filter_fields)
            staged = cfg.get("staged", staged)
        name = self._check_index_name(name, "vector index")
        what = f"Vector index {name!r}"
        if vector_field is None:
            raise SchemaDefinitionError(f"{what}: vector_field is required")
        vector_field = _check_field_path(vector_field, what)
        if (
            not isinstance(dimensions, int)
            or isinstance(dimensions, bool)
            or not MIN_VECTOR_DIMENSIONS <= dimensions <= MAX_VECTOR_DIMENSIONS
        ):
            raise SchemaDefinitionError(
                f"{what}: dimensions must be an integer between {MIN_VECTOR_DIMENSIONS} and "
                f"{MAX_VECTOR_DIMENSIONS}, got {dimensions!r}"
            )
        if not _can_hold_vector(self.document_validator, vector_field.split(".")):
            raise SchemaDefinitionError(
                f"{what}: field {vector_field!r} must be able to hold an array of float64 "
                "(v.array(v.float64()))"
            )
        filters = _check_fields(filter_fields, what, min_count=0, max_count=MAX_FILTER_FIELDS)
        staged = _check_bool(staged, what)
        if len(self.vector_indexes) >= MAX_VECTOR_INDEXES:
            raise SchemaDefinitionError(
                f"Too many vector indexes: a table can have at most {MAX_VECTOR_INDEXES}"
            )
        self.vector_indexes.append(
            VectorIndexDefinition(name, vector_field, int(dimensions), filters, staged)
        )
        return self

    # -- documents ----------------------------------------------------------------------

    def validate_document(
        self,
        doc: Any,
        *,
        id_table: Callable[[str], str | None] | None = None,
        doc_id: str | None = None,
        table_name: str | None = None,
    ) -> dict:
        """Check a document against this table's validator and return its user fields.

        ``doc`` may be a new document (user fields only) or a stored one: the system fields
        ``_id``/``_creationTime`` are ignored unless the validator declares them (then they
        are checked when present).  The result is a new dict in canonical form *without*
        system fields.  ``doc_id`` and ``table_name`` only shape the error message, which is
        a :class:`ValidationError` naming the table (and the document) and the path.
        """
        try:
            if self._stored_validator is not None:
                out = self._stored_validator.convert(doc, id_table=id_table)
            else:
                if type(doc) is dict and ("_id" in doc or "_creationTime" in doc):
                    doc = {k: x for k, x in doc.items() if k != "_id" and k != "_creationTime"}
                out = self.document_validator.convert(doc, id_table=id_table)
        except ValidationError as e:
            table = table_name or self.name or "?"
            if doc_id is not None:
                prefix = f'Document with ID "{doc_id}" in table "{table}" does not match the schema: '
            else:
                prefix = (
                    f'Failed to insert or update a document in table "{table}" because it does '
                    "not match the schema: "
                )
            err = ValidationError(prefix + str(e))
            err.path = getattr(e, "path", "")  # type: ignore[attr-defined]
            err.table = table  # type: ignore[attr-defined]
            err.doc_id = doc_id  # type: ignore[attr-defined]
            raise err from None
        if not isinstance(out, dict):
            raise ValidationError(
                f'A document in table "{table_name or self.name or "?"}" must be an object'
            )
        if self._system_declared:
            out.pop("_id", None)
            out.pop("_creationTime", None)
        return out

    def document_fast_path(self) -> Callable[[dict, Any], tuple[dict, int, bool] | None] | None:
        """``fast(doc, id_table)``: ``validate_document`` and ``normalize_document``'s checks
        in one pass for the common simple documents, returning ``(document, size, plain)``, or
        None when the general path must run (it then reports what is wrong). None when this
        table's validator has no such path (see ``ObjectValidator.document_fast_path``)."""
        val = self.document_validator
        if self._system_declared or type(val) is not ObjectValidator:
            return None
        return val.document_fast_path()

    # -- serialisation ------------------------------------------------------------------

    def to_json(self) -> dict:
        """A JSON-serialisable description (Convex's schema export shape)."""
        return {
            "documentType": self.document_validator.json,
            "indexes": [i.to_json() for i in self.indexes],
            "searchIndexes": [i.to_json() for i in self.search_indexes],
            "vectorIndexes": [i.to_json() for i in self.vector_indexes],
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> TableDefinition:
        if not isinstance(obj, Mapping) or "documentType" not in obj:
            raise SchemaDefinitionError(f"Not a table definition JSON: {obj!r}")
        table = cls(validator_from_json(obj["documentType"]))
        for i in obj.get("indexes", ()):
            table.index(i["indexDescriptor"], list(i["fields"]), staged=i.get("staged", False))
        for i in obj.get("searchIndexes", ()):
            table.search_index(
                i["indexDescriptor"],
                search_field=i["searchField"],
                filter_fields=list(i.get("filterFields", ())),
                staged=i.get("staged", False),
            )
        for i in obj.get("vectorIndexes", ()):
            table.vector_index(
                i["indexDescriptor"],
                vector_field=i["vectorField"],
                dimensions=i["dimensions"],
                filter_fields=list(i.get("filterFields", ())),
                staged=i.get("staged", False),
            )
        return table

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TableDefinition):
            return NotImplemented
        return (
            self.document_validator == other.document_validator
            and self.indexes == other.indexes
            and self.search_indexes == other.search_indexes
            and self.vector_indexes == other.vector_indexes
        )

    __hash__ = None  # type: ignore[assignment]  # mutable (chainable builders)

    def __repr__(self) -> str:
        r = f"define_table({self.document_validator!r})"
        for i in self.indexes:
            r += f".index({i.name!r}, {list(i.fields)!r}" + (", staged=True)" if i.staged else ")")
        for s in self.search_indexes:
            r += f".search_index({s.name!r}, search_field={s.search_field!r}"
            r += f", filter_fields={list(s.filter_fields)!r}" if s.filter_fields else ""
            r += ", staged=True)" if s.staged else ")"
        for x in self.vector_indexes:
            r += f".vector_index({x.name!r}, vector_field={x.vector_field!r}, dimensions={x.dimensions}"
            r += f", filter_fields={list(x.filter_fields)!r}" if x.filter_fields else ""
            r += ", staged=True)" if x.staged else ")"
        return r


def define_table(document: Mapping[str, Validator] | Validator) -> TableDefinition:
    """A table whose documents match ``document``: a dict of field validators, a
    ``v.object(...)``, a ``v.union()`` of ``v.object()``s, or ``v.any()``."""
    if isinstance(document, Mapping):
        validator: Validator = ObjectValidator(document)
    elif isinstance(document, Validator):
        validator = document
    else:
        raise TypeError(
            f"define_table() takes a dict of validators or a validator, got {document!r}"
        )
    return TableDefinition(validator)


# --------------------------------------------------------------------------------------
# Schemas
# --------------------------------------------------------------------------------------


def _check_table_name(name: Any) -> str:
    if not isinstance(name, str):
        raise SchemaDefinitionError(f"Table names must be strings, got {name!r}")
    if name.startswith("_"):
        raise SchemaDefinitionError(
            f"Invalid table name {name!r}: names starting with `_` are reserved for system tables"
        )
    if "/" in name and name.count("/") == 1 and all(is_identifier(p) for p in name.split("/")):
        return name  # a mounted component's table (backend/components.py), "mount/table"
    if not is_identifier(name):
        raise SchemaDefinitionError(
            f"Invalid table name {name!r}: table names must be identifiers "
            "([A-Za-z_][A-Za-z0-9_]*) of at most 64 characters"
        )
    return name


class SchemaDefinition:
    """A schema: ``tables`` (name → :class:`TableDefinition`) and its two options."""

    def __init__(
        self,
        tables: Mapping[str, TableDefinition],
        *,
        schema_validation: bool = True,
        strict_table_name_types: bool = True,
    ) -> None:
        if not isinstance(tables, Mapping):
            raise TypeError(f"define_schema() takes a dict of table definitions, got {tables!r}")
        checked: dict[str, TableDefinition] = {}
        for name, table in tables.items():
            _check_table_name(name)
            if not isinstance(table, TableDefinition):
                raise TypeError(
                    f"Table {name!r} must be a define_table(...) definition, got {table!r}"
                )
            if table.name is None:
                table.name = name
            checked[name] = table
        if not isinstance(schema_validation, bool):
            raise SchemaDefinitionError(f"schema_validation must be a bool, got {schema_validation!r}")
        if not isinstance(strict_table_name_types, bool):
            raise SchemaDefinitionError(
                f"strict_table_name_types must be a bool, got {strict_table_name_types!r}"
            )
        self.tables: dict[str, TableDefinition] = checked
        self.schema_validation = schema_validation
        self.strict_table_name_types = strict_table_name_types

    def validate_document(
        self,
        table: str,
        doc: Any,
        *,
        id_table: Callable[[str], str | None] | None = None,
        doc_id: str | None = None,
    ) -> dict:
        """``self.tables[table].validate_document(...)`` with the table named in errors."""
        return self.tables[table].validate_document(
            doc, id_table=id_table, doc_id=doc_id, table_name=table
        )

    def to_json(self) -> dict:
        """JSON-serialisable form; :meth:`from_json` rebuilds an equal schema."""
        return {
            "tables": {name: t.to_json() for name, t in self.tables.items()},
            "schemaValidation": self.schema_validation,
            "strictTableNameTypes": self.strict_table_name_types,
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> SchemaDefinition:
        if not isinstance(obj, Mapping) or "tables" not in obj:
            raise SchemaDefinitionError(f"Not a schema JSON: {obj!r}")
        return cls(
            {name: TableDefinition.from_json(t) for name, t in obj["tables"].items()},
            schema_validation=obj.get("schemaValidation", True),
            strict_table_name_types=obj.get("strictTableNameTypes", True),
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SchemaDefinition):
            return NotImplemented
        return (
            self.schema_validation == other.schema_validation
            and self.strict_table_name_types == other.strict_table_name_types
            and self.tables == other.tables
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        inner = ", ".join(f"{n!r}: {t!r}" for n, t in self.tables.items())
        return (
            f"define_schema({{{inner}}}, schema_validation={self.schema_validation}, "
            f"strict_table_name_types={self.strict_table_name_types})"
        )


def define_schema(
    tables: Mapping[str, TableDefinition],
    *,
    schema_validation: bool = True,
    strict_table_name_types: bool = True,
) -> SchemaDefinition:
    """A schema of ``tables``.  ``schema_validation=False`` turns off runtime document checks
    (the engine's job); ``strict_table_name_types`` has no runtime effect."""
    return SchemaDefinition(
        tables,
        schema_validation=schema_validation,
        strict_table_name_types=strict_table_name_types,
    )
