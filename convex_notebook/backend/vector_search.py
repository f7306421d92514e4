"""``ctx.vector_search(table, index, {"vector": [...], "limit": 10, "filter": lambda q: ...})``.

Exact nearest neighbours by cosine similarity (numpy, brute force), over the documents of
``table`` whose ``vector_field`` holds exactly ``dimensions`` numbers (others are not indexed,
as in Convex). The filter is Convex's: ``q.eq(field, value)`` or ``q.or_(...)`` of those, on
the index's filter fields. Results: up to ``limit`` (1..256, default 10) ``{"_id", "_score"}``,
best first, ties by ``_id``. Available in actions, outside any transaction: a vector written
is found at once, but what the results point to may change before you read it.

Each index's vectors are kept as one matrix, rebuilt after a commit writes to its table.
numpy is imported on the first search (importing the backend loads no numerical library).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..engine import bulk
from ..engine.filters import field_getter
from ..engine.transaction import DatabaseError
from ..values import MISSING, encode_value

if TYPE_CHECKING:
    from .app import Backend

__all__ = ["VectorSearch"]

MAX_LIMIT, DEFAULT_LIMIT, MAX_FILTER_EXPRESSIONS = 256, 10, 64


class _Eq:
    def __init__(self, field: str, value: Any) -> None:
        self.field, self.value = field, value


class _Or:
    def __init__(self, parts: tuple[Any, ...]) -> None:
        self.parts = parts


class VectorFilterBuilder:
    """The ``q`` of a vector search filter: ``q.eq(field, value)``, ``q.or_(a, b, ...)``."""

    def eq(self, field: str, value: Any) -> _Eq:
        if not isinstance(field, str):
            raise DatabaseError(f"vector search filter: q.eq() takes a field name, got {field!r}")
        return _Eq(field, value)

    def or_(self, *parts: Any) -> _Or:
        return _Or(parts)

    def __getattr__(self, name: str) -> Any:
        if name == "or":
            return self.or_
        raise DatabaseError(
            f"vector search filter: q.{name}() is not available: only q.eq(field, value) and "
            "q.or_(...) of them (no and, no ranges)"
        )


def _flatten(expr: Any) -> list[_Eq]:
    if isinstance(expr, _Eq):
        return [expr]
    if isinstance(expr, _Or):
        out: list[_Eq] = []
        for part in expr.parts:
            out += _flatten(part)
        return out
    raise DatabaseError(f"vector search filter: expected q.eq(...) or q.or_(...), got {expr!r}")


@dataclass
class _Matrix:
    ids: list[str]
    unit: Any  # numpy rows: the vectors, normalised (zero vectors stay zero)
    filter_keys: dict[str, list[bytes | None]]  # filter field → each row's value key


class VectorSearch:
    """The vector indexes of one backend (matrices cached in ``Database.table_caches``)."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend
        self._lock = threading.Lock()  # one build of a matrix at a time

    def search(self, table: str, index: str, query: dict | None = None, **options: Any) -> list[dict]:
        import numpy as np

        request = dict(query or {})
        request.update(options)
        unknown = set(request) - {"vector", "limit", "filter"}
        if unknown:
            raise DatabaseError(f"vector_search(): unknown option(s) {sorted(unknown)}: use vector, limit, filter")
        definition = self._index(table, index)
        vector = request.get("vector")
        if not isinstance(vector, (list, tuple, np.ndarray)) or len(vector) != definition.dimensions:
            raise DatabaseError(
                f"vector_search({table!r}, {index!r}): 'vector' must be a list of {definition.dimensions} "
                f"numbers, got {_describe(vector)}"
            )
        query_vector = np.asarray(vector, dtype=np.float64)
        if not np.all(np.isfinite(query_vector)):
            raise DatabaseError(f"vector_search({table!r}, {index!r}): the vector holds NaN or infinite values")
        limit = request.get("limit", DEFAULT_LIMIT)
        if isinstance(limit, bool) or not isinstance(limit, (int, float)) or limit != int(limit) or not 1 <= limit <= MAX_LIMIT:
            raise DatabaseError(f"vector_search(): limit must be an integer from 1 to {MAX_LIMIT}, got {limit!r}")
        allowed = self._filter(definition, request.get("filter"))
        matrix = self._matrix(table, definition)
        if not matrix.ids:
            return []
        norm = float(np.linalg.norm(query_vector))
        scores = matrix.unit @ (query_vector / norm) if norm else np.zeros(len(matrix.ids))
        rows = np.arange(len(matrix.ids))
        if allowed is not None:
            rows = np.array([i for i in range(len(matrix.ids)) if allowed(matrix, i)], dtype=np.int64)
        ranked = sorted(rows.tolist(), key=lambda i: (-scores[i], matrix.ids[i]))[: int(limit)]
        return [{"_id": matrix.ids[i], "_score": float(scores[i])} for i in ranked]

    # -- pieces -------------------------------------------------------------------------------
    def _index(self, table: str, index: str) -> Any:
        schema = self._backend.database.schema
        table_def = schema.tables.get(table) if schema is not None else None
        if table_def is None:
            raise DatabaseError(f"vector_search({table!r}, ...): no table {table!r} in the schema (vector indexes are declared there)")
        for definition in table_def.vector_indexes:
            if definition.name == index:
                return definition
        names = [d.name for d in table_def.vector_indexes]
        raise DatabaseError(f"vector_search({table!r}, {index!r}): no such vector index (the table has {names or 'none'})")

    def _filter(self, definition: Any, filter_fn: Any) -> Callable[[_Matrix, int], bool] | None:
        if filter_fn is None:
            return None
        if not callable(filter_fn):
            raise DatabaseError("vector_search(): filter is a function of q, e.g. lambda q: q.eq('cuisine', 'French')")
        terms = _flatten(filter_fn(VectorFilterBuilder()))
        if len(terms) > MAX_FILTER_EXPRESSIONS:
            raise DatabaseError(f"vector_search(): at most {MAX_FILTER_EXPRESSIONS} filter expressions, got {len(terms)}")
        wanted: list[tuple[str, bytes]] = []
        for term in terms:
            if term.field not in definition.filter_fields:
                raise DatabaseError(
                    f"vector_search(): {term.field!r} is not a filter field of {definition.name!r} "
                    f"(declare it in filter_fields: {list(definition.filter_fields)})"
                )
            wanted.append((term.field, encode_value(term.value)))

        def allowed(matrix: _Matrix, row: int) -> bool:
            return any(matrix.filter_keys[field][row] == key for field, key in wanted)

        return allowed

    def _matrix(self, table: str, definition: Any) -> _Matrix:
        db = self._backend.database
        with self._lock, db.read() as txn:  # (Database.cached: rebuilt after a write to the table)
            return db.cached(txn, (table, f"vector:{definition.name}"), lambda: self._build(txn, table, definition))

    @staticmethod
    def _build(txn: Any, table: str, definition: Any) -> _Matrix:
        """The unit vectors of ``table`` as ``txn`` sees it (an index build: no read limits)."""
        import numpy as np

        get_vector = field_getter(definition.vector_field)
        getters = {f: field_getter(f) for f in definition.filter_fields}
        ids: list[str] = []
        vectors: list[list[float]] = []
        filter_keys: dict[str, list[bytes | None]] = {f: [] for f in definition.filter_fields}
        docs = bulk.table_documents(txn, table)
        for doc in docs:
            vector = get_vector(doc)
            if type(vector) is not list or len(vector) != definition.dimensions or not all(type(x) is float for x in vector):
                continue  # not indexed, as in Convex
            ids.append(doc["_id"])
            vectors.append(vector)
            for field, getter in getters.items():
                value = getter(doc)
                filter_keys[field].append(None if value is MISSING else encode_value(value))
        unit = np.asarray(vectors, dtype=np.float64).reshape(len(vectors), definition.dimensions)
        norms = np.linalg.norm(unit, axis=1, keepdims=True)
        np.divide(unit, norms, out=unit, where=norms > 0)
        return _Matrix(ids, unit, filter_keys)


def _describe(x: Any) -> str:
    if isinstance(x, (list, tuple)):
        return f"a list of {len(x)}"
    return type(x).__name__
