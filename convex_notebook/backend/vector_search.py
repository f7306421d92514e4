"""``ctx.vector_search(table, index, {"vector": [...], "limit": 10, "filter": lambda q: ...})``.

Exact nearest neighbours by cosine similarity (numpy, brute force), over the documents of
``table`` whose ``vector_field`` holds exactly ``dimensions`` numbers (others are not indexed,
as in Convex). The filter is Convex's: ``q.eq(field, value)`` or ``q.or_(...)`` of those, on
the index's filter fields. Results: up to ``limit`` (1..256, default 10) ``{"_id", "_score"}``,
best first, ties by ``_id``. Available in actions, outside any transaction: a vector written
is found at once, but what the results point to may change before you read it.

Each index is kept as one float32 matrix of unit vectors (``_VectorIndex``), built from the
stored documents by the first search after the backend opens (from a snapshot, while commits
go on; the commits since are then applied from the write log), then maintained by every commit
to its table (a commit listener reads back the documents it wrote): a new or changed vector is
appended, a removed one marked dead at the commit's timestamp, and the matrix is compacted when
a quarter of it is dead. A search reads the index as of one commit (the latest it applied): it
ignores rows appended after that and rows dead by then, so it never sees half a commit. Filter
fields keep, per value, the rows holding it: a filtered search scores only those rows.

Memory: 4 bytes per dimension per vector, plus about 300 bytes per document (its id, key,
tombstone and filter entries); room for a quarter more rows is reserved as it grows.
numpy is imported on the first search (importing the backend loads no numerical library).
"""

from __future__ import annotations

import sys
import threading
from typing import TYPE_CHECKING, Any

from ..engine import bulk
from ..engine.filters import field_getter
from ..engine.readset import WriteSet
from ..engine.stored import load_row, load_rows
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


class _Rows:
    """The arrays of a vector index: replaced whole when they grow or are compacted, so a
    search holding them keeps a consistent view (commits only append past its end and mark
    rows dead at timestamps after it)."""

    def __init__(self, capacity: int, dimensions: int, filter_fields: tuple[str, ...]) -> None:
        import numpy as np

        self.unit = np.zeros((capacity, dimensions), dtype=np.float32)  # the vectors, normalised
        self.dead_at = np.full(capacity, _ALIVE, dtype=np.int64)  # commit ts that removed the row
        self.ids: list[str] = []
        self.keys: list[bytes] = []
        self.filters: dict[str, dict[bytes | None, list[int]]] = {f: {} for f in filter_fields}


_ALIVE = (1 << 63) - 1


class _VectorIndex:
    """One vector index, maintained on commit (see module docstring)."""

    def __init__(self, definition: Any, capacity: int) -> None:
        self.definition = definition
        self.get_vector = field_getter(definition.vector_field)
        self.getters = {f: field_getter(f) for f in definition.filter_fields}
        self.rows = _Rows(max(capacity, 16), definition.dimensions, tuple(definition.filter_fields))
        self.n = 0  # rows in use
        self.dead = 0  # of which dead
        self.ts = 0  # the last commit applied
        self.row_of: dict[bytes, int] = {}  # live row of each storage key
        self.lock = threading.Lock()

    def vector(self, doc: dict) -> list[float] | None:
        """The document's vector, if it is indexed (exactly ``dimensions`` floats)."""
        vector = self.get_vector(doc)
        if type(vector) is not list or len(vector) != self.definition.dimensions or not all(type(x) is float for x in vector):
            return None  # not indexed, as in Convex
        return vector

    def view(self) -> tuple[_Rows, int, int, int]:
        with self.lock:
            return self.rows, self.n, self.ts, self.dead

    def apply(self, ts: int, changes: list[tuple[bytes, dict | None]]) -> None:
        """A commit's writes: ``(storage key, document now or None)``."""
        with self.lock:
            for key, doc in changes:
                row = self.row_of.pop(key, None)
                if row is not None:
                    self.rows.dead_at[row] = ts
                    self.dead += 1
                vector = self.vector(doc) if doc is not None else None
                if vector is not None:
                    assert doc is not None
                    self._append(key, doc, vector)
            self.ts = ts
            if self.dead > max(1024, self.n // 4):
                self._resize(self.n - self.dead)

    def _append(self, key: bytes, doc: dict, vector: list[float]) -> None:
        import numpy as np

        if self.n == self.rows.unit.shape[0]:  # full: a quarter more room
            self._resize(self.n - self.dead + 1)
        rows = self.rows
        row = self.n
        unit = np.asarray(vector, dtype=np.float64)
        norm = float(np.linalg.norm(unit))
        rows.unit[row] = unit / norm if norm else unit
        rows.dead_at[row] = _ALIVE
        rows.ids.append(doc["_id"])
        rows.keys.append(key)
        for field, getter in self.getters.items():
            value = getter(doc)
            rows.filters[field].setdefault(None if value is MISSING else encode_value(value), []).append(row)
        self.row_of[key] = row
        self.n += 1

    def _resize(self, live: int) -> None:
        """New arrays holding the live rows, with room for a quarter more (compaction and
        growth alike): searches holding the old ones keep reading them."""
        import numpy as np

        old, n = self.rows, self.n
        keep = np.nonzero(old.dead_at[:n] == _ALIVE)[0]
        rows = _Rows(max(16, live + live // 4), self.definition.dimensions, tuple(self.definition.filter_fields))
        rows.unit[: len(keep)] = old.unit[keep]
        rows.ids = [old.ids[i] for i in keep]
        rows.keys = [old.keys[i] for i in keep]
        renumber = {int(i): j for j, i in enumerate(keep)}
        for field, values in old.filters.items():
            for value, found in values.items():
                moved = [renumber[i] for i in found if i in renumber]
                if moved:
                    rows.filters[field][value] = moved
        self.row_of = {key: j for j, key in enumerate(rows.keys)}
        self.rows, self.n, self.dead = rows, len(keep), 0

    def memory(self) -> int:
        """Bytes held (arrays, ids, keys and filter lists; an estimate for the Python objects)."""
        rows = self.rows
        total = rows.unit.nbytes + rows.dead_at.nbytes
        total += sys.getsizeof(rows.ids) + sum(sys.getsizeof(i) for i in rows.ids)
        total += sys.getsizeof(rows.keys) + sum(sys.getsizeof(k) for k in rows.keys)
        total += sys.getsizeof(self.row_of) + 28 * len(self.row_of)
        for values in rows.filters.values():
            total += sum(sys.getsizeof(found) + 28 * len(found) for found in values.values())
        return total


class VectorSearch:
    """The vector indexes of one backend, built on first use and maintained on commit."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend
        self._lock = threading.Lock()  # guards _indexes
        self._indexes: dict[tuple[str, str], _VectorIndex] = {}
        self._building = threading.Lock()  # one build at a time
        self._listening = False

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
        wanted = self._filter(definition, request.get("filter"))
        rows, n, ts, dead = self.index(table, definition).view()
        norm = float(np.linalg.norm(query_vector))
        unit_query = (query_vector / norm if norm else query_vector).astype(np.float32)
        if wanted is not None:  # only the rows holding a wanted value
            lists = [rows.filters[field].get(key, ()) for field, key in wanted]
            found = np.unique(np.concatenate([np.asarray(r, dtype=np.int64) for r in lists])) if lists else np.empty(0, np.int64)
            candidates = found[found < n]
            if dead:
                candidates = candidates[rows.dead_at[candidates] > ts]
            scores = rows.unit[candidates] @ unit_query
        else:
            candidates = None
            scores = rows.unit[:n] @ unit_query
            if dead:
                gone = rows.dead_at[:n] <= ts
                scores[gone] = -np.inf
        k = int(limit)
        if len(scores) > k:  # the best k, and every row tied with the k-th (ties go by id)
            kth = np.partition(scores, len(scores) - k)[len(scores) - k]
            positions = np.nonzero(scores >= kth)[0]
        else:
            positions = np.arange(len(scores))
        positions = positions[np.isfinite(scores[positions])]
        rows_of = positions if candidates is None else candidates[positions]
        ranked = sorted(zip(scores[positions].tolist(), rows_of.tolist()), key=lambda sr: (-sr[0], rows.ids[sr[1]]))[:k]
        return [{"_id": rows.ids[row], "_score": float(score)} for score, row in ranked]

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

    def _filter(self, definition: Any, filter_fn: Any) -> list[tuple[str, bytes]] | None:
        """The ``(field, value key)`` pairs a filter accepts (any of them), None for no filter."""
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
        return wanted

    def index(self, table: str, definition: Any) -> _VectorIndex:
        """The maintained index (built from the stored documents on first use)."""
        key = (table, definition.name)
        found = self._current(key, definition)
        if found is not None:
            return found
        db = self._backend.database
        with self._building:
            found = self._current(key, definition)
            if found is not None:
                return found
            # Built from a snapshot while commits go on (a large index takes a while), then
            # brought up to date under the committer, which from then on applies every commit.
            built = self._build(table, definition)
            with db.commit_lock:
                if not self._catch_up(built, table):
                    built = self._build(table, definition)  # (nothing can commit meanwhile now)
                with self._lock:
                    self._indexes[key] = built
                    if not self._listening:
                        db.commit_listeners.append(self._on_commit)
                        self._listening = True
            return built

    def _current(self, key: tuple[str, str], definition: Any) -> _VectorIndex | None:
        with self._lock:
            found = self._indexes.get(key)
        return found if found is not None and found.definition == definition else None

    def _catch_up(self, built: _VectorIndex, table: str) -> bool:
        """Apply the commits after ``built``'s snapshot (under the committer); False when the
        write log no longer holds them all, or one was a schema push."""
        db = self._backend.database
        if built.ts < db.write_log.horizon:
            return False
        keys: list[bytes] = []
        for _ts, writes in db.write_log.after(built.ts):
            if writes.everything:
                return False
            if table in writes.tables:
                keys += writes.keys.get((table, "by_creation_time"), ())
        if keys:
            built.apply(db.last_ts, self._documents(table, keys))
        else:
            built.ts = db.last_ts
        return True

    def _documents(self, table: str, keys: Any) -> list[tuple[bytes, dict | None]]:
        """``(key, document now or None)`` of each storage key (the committer's connection)."""
        store = self._backend.database.store
        info = self._backend.database.table(table)
        found: list[tuple[bytes, dict | None]] = []
        for doc_key in dict.fromkeys(keys):
            row = store.get_document(info.number, doc_key) if info is not None else None
            found.append((doc_key, load_row(doc_key, row[0], row[1]) if row is not None else None))
        return found

    def _build(self, table: str, definition: Any) -> _VectorIndex:
        """The index from ``table``'s latest documents (an index build: no read limits)."""
        db = self._backend.database
        with db.read() as txn:
            info = txn.table(table)
            count = txn.count_documents(info) if info is not None else 0
            built = _VectorIndex(definition, count + count // 16)
            for rows in bulk.iter_table(txn, table, batch=1024):  # (small batches: the floats are big)
                for row, doc in zip(rows, load_rows(rows)):
                    vector = built.vector(doc)
                    if vector is not None:
                        built._append(row[0], doc, vector)
            built.ts = txn.snapshot_ts
        return built

    def _on_commit(self, writes: WriteSet, ts: int) -> None:
        """Commit listener (under the committer): apply the commit to the indexes of its tables."""
        with self._lock:
            indexes = [(key, ix) for key, ix in self._indexes.items() if key[0] in writes.tables]
        if not indexes:
            return
        if writes.everything:  # a schema push: built again on next use
            with self._lock:
                for key, _ix in indexes:
                    self._indexes.pop(key, None)
            return
        changes: dict[str, list[tuple[bytes, dict | None]]] = {}
        for (table, _name), index in indexes:
            if table not in changes:
                changes[table] = self._documents(table, writes.keys.get((table, "by_creation_time"), ()))
            index.apply(ts, changes[table])


def _describe(x: Any) -> str:
    if isinstance(x, (list, tuple)):
        return f"a list of {len(x)}"
    return type(x).__name__
