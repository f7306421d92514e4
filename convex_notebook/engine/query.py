"""The query chain: ``ctx.db.query(t).with_index(..).filter(..).order(..).take(n)``.

Grammar (Convex's): at most one source (``with_index`` / ``full_table_scan``), then filters,
at most one ``order``, more filters, then one consumer. Queries are lazy: nothing is read
until a consumer (or iteration) asks, and scans stop as soon as the consumer has enough.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from .filters import FilterBuilder, compile_filter
from .ranges import IndexRangeBuilder, resolve_range
from .search import MAX_RESULTS as MAX_SEARCH_RESULTS
from .search import Matches, SearchFilterBuilder, SearchPlan, load_results, run_search
from .transaction import DatabaseError

if TYPE_CHECKING:
    from .database import IndexInfo
    from .transaction import Transaction

__all__ = ["InvalidCursorError", "Query", "QueryError"]


class QueryError(DatabaseError):
    """A query chain was built or consumed wrongly."""


class InvalidCursorError(QueryError):
    """A pagination cursor is malformed or belongs to another query."""


_FULL = (b"", b"\xff")


class Query:
    """A lazy query over one table (see module docstring)."""

    def __init__(self, txn: Transaction, table: str, *, system: bool = False) -> None:
        if not isinstance(table, str):
            raise QueryError(f"db.query() takes a table name, got {type(table).__name__}")
        if system:
            if not table.startswith("_"):
                raise QueryError(f"db.system.query({table!r}): not a system table (use ctx.db.query)")
        elif table.startswith("_"):
            raise QueryError(
                f"db.query({table!r}): system tables can only be read with ctx.db.system.query()"
            )
        self._txn = txn
        self._table = table
        self._index_name = "by_creation_time"
        self._lo, self._hi = _FULL
        self._range_text = ""
        self._source_set = False
        self._filters: list[Callable[[dict], bool]] = []
        self._filter_texts: list[str] = []
        self._descending: bool | None = None
        self._consumed = False
        self._search: SearchPlan | None = None

    def __repr__(self) -> str:
        order = "desc" if self._descending else "asc"
        return f"<Query {self._table}.{self._index_name} {self._range_text or 'all'} {order}>"

    # -- building ---------------------------------------------------------------------------
    def _set_source(self, what: str) -> None:
        if self._source_set:
            raise QueryError(f"{what}: a query can use only one index (with_index / full_table_scan)")
        if self._filters or self._descending is not None:
            raise QueryError(f"{what} must come before .filter() and .order()")
        self._source_set = True

    def with_index(self, name: str, range_fn: Callable[[IndexRangeBuilder], Any] | None = None) -> Query:
        self._set_source(f"with_index({name!r})")
        index = self._index(name)
        fields = index.range_fields if index else (("_id",) if name == "by_id" else ("_creationTime",))
        self._index_name = name
        if range_fn is not None:
            builder = IndexRangeBuilder()
            result = range_fn(builder)
            if result is not None and result is not builder:
                raise QueryError("The with_index range function must return the q it was given (q.eq(...)...)")
            resolved = resolve_range(builder.ops, fields, f"{self._table}.{name}")
            self._lo, self._hi, self._range_text = resolved.lo, resolved.hi, resolved.text
        return self

    def with_search_index(self, name: str, search_fn: Callable[[Any], Any]) -> Query:
        """Full-text search: ``lambda q: q.search(field, text).eq(filter_field, value)``; the
        results come by relevance (see ``engine/search.py``)."""
        self._set_source(f"with_search_index({name!r})")
        if self._descending is not None:
            raise QueryError("Search queries come by relevance: order() cannot be combined with with_search_index")
        if not callable(search_fn):
            raise QueryError("with_search_index takes a function of q, e.g. lambda q: q.search('body', 'hello')")
        builder = SearchFilterBuilder(self._search_index(name), self._table)
        if search_fn(builder) is not builder or builder.plan is None:
            raise QueryError("The with_search_index function must return q.search(field, text)[.eq(...)...]")
        self._search = builder.plan
        self._range_text = builder.plan.text
        return self

    def _search_index(self, name: str) -> Any:
        schema = self._txn.db.schema
        table_def = schema.tables.get(self._table) if schema is not None else None
        for index in table_def.search_indexes if table_def is not None else ():
            if index.name == name:
                if index.staged:
                    raise QueryError(f"Search index {self._table}.{name} is staged and cannot be queried until it is enabled")
                return index
        raise QueryError(f"Search index {self._table}.{name} not found (search indexes are declared in the schema).")

    def full_table_scan(self) -> Query:
        self._set_source("full_table_scan()")
        return self

    def filter(self, predicate: Callable[[FilterBuilder], Any]) -> Query:
        if not callable(predicate):
            raise QueryError("filter() takes a function of q, e.g. lambda q: q.eq(q.field('done'), False)")
        evaluate, text = compile_filter(predicate(FilterBuilder()))
        self._filters.append(evaluate)
        self._filter_texts.append(text)
        return self

    def order(self, order: str) -> Query:
        if self._search is not None:
            raise QueryError("Search queries come by relevance: order() cannot be combined with with_search_index")
        if self._descending is not None:
            raise QueryError("Queries may only specify order at most once")
        if order not in ("asc", "desc"):
            raise QueryError(f'order() takes "asc" or "desc", got {order!r}')
        self._descending = order == "desc"
        return self

    def _index(self, name: str) -> IndexInfo | None:
        """The index, or None when the table doesn't exist (a built-in index on it reads empty)."""
        info = self._txn.table(self._table)
        index = info.indexes.get(name) if info else None
        if index is None:
            if name in ("by_id", "by_creation_time") and info is None:
                return None
            raise QueryError(f"Index {self._table}.{name} not found.")
        if index.staged:
            raise QueryError(f"Index {self._table}.{name} is staged and cannot be queried until it is enabled")
        return index

    # -- consuming --------------------------------------------------------------------------
    def _start(self) -> None:
        if self._consumed:
            raise QueryError("A query can only be consumed once; build a new one with ctx.db.query()")
        self._consumed = True

    def _rows(self, lo: bytes, hi: bytes, batch: int) -> Iterator[tuple[bytes, dict, int]]:
        index = self._index(self._index_name)
        return self._txn.scan(self._table, index, self._index_name, lo, hi, bool(self._descending), batch)

    def _matches(self, doc: dict) -> bool:
        for f in self._filters:
            if not f(doc):
                return False
        return True

    def _search_keys(self, upto: int = MAX_SEARCH_RESULTS) -> tuple[Matches, bool]:
        """The best ``upto`` matches (at most 1024), and whether the index had more."""
        assert self._search is not None
        found = run_search(self._txn, self._table, self._search, min(upto, MAX_SEARCH_RESULTS) + 1)
        return found.first(MAX_SEARCH_RESULTS), len(found) > MAX_SEARCH_RESULTS

    def _search_docs(self, found: Matches, lo: int = 0, hi: int = MAX_SEARCH_RESULTS, step: int = 16) -> Iterator[dict]:
        """The documents of matches ``lo`` to ``hi``, post-filtered, read ``step`` at a time at
        first (``take(n)`` reads about n), then more."""
        hi = min(hi, len(found))
        while lo < hi:
            for doc in load_results(self._txn, self._table, found.keys(lo, min(hi, lo + step))):
                if not self._filters or self._matches(doc):
                    yield doc
            lo += step
            step = min(step * 2, 256)

    def _search_results(self) -> tuple[list[dict], bool]:
        """The best 1024 matches, post-filtered, and whether the index had more matches."""
        found, overflow = self._search_keys()
        return list(self._search_docs(found, step=256)), overflow

    def _docs(self, batch: int = 64, upto: int | None = None) -> Iterator[dict]:
        """The documents in query order (``upto``: no more will be consumed)."""
        if self._search is not None:
            found = self._search_keys(MAX_SEARCH_RESULTS if upto is None or self._filters else upto)[0]
            return self._search_docs(found, step=max(1, batch))
        rows = self._rows(self._lo, self._hi, batch)
        if not self._filters:
            return (doc for _key, doc, _size in rows)
        matches = self._matches
        return (doc for _key, doc, _size in rows if matches(doc))

    def __iter__(self) -> Iterator[dict]:
        self._start()
        return self._docs()

    def collect(self) -> list[dict]:
        self._start()
        if self._search is not None:
            found, overflow = self._search_results()
            if overflow:
                raise QueryError(
                    f"collect() on a search query reads at most {MAX_SEARCH_RESULTS} matches, and this "
                    "search has more: use take(n) or paginate(), or narrow it with eq filters"
                )
            return found
        index = self._index(self._index_name)
        keep = self._matches if self._filters else None
        return self._txn.scan_all(
            self._table, index, self._index_name, self._lo, self._hi, bool(self._descending), keep
        )

    def take(self, n: int) -> list[dict]:
        if isinstance(n, bool) or not isinstance(n, (int, float)) or n < 0 or int(n) != n:
            raise QueryError(f"take() takes a non-negative integer, got {n!r}")
        self._start()
        n = int(n)
        if n == 0:
            return []
        out: list[dict] = []
        for doc in self._docs(batch=n if not self._filters else max(n, 64), upto=n):
            out.append(doc)
            if len(out) >= n:
                break
        return out

    def first(self) -> dict | None:
        self._start()
        for doc in self._docs(batch=1 if not self._filters else 64, upto=1):
            return doc
        return None

    def unique(self) -> dict | None:
        self._start()
        found: list[dict] = []
        for doc in self._docs(batch=2):
            found.append(doc)
            if len(found) > 1:
                ids = ", ".join(d["_id"] for d in found)
                raise QueryError(f"unique() query returned more than one result from table {self._table}:\n [{ids}, ...]")
        return found[0] if found else None

    def count(self) -> int:
        self._start()
        return sum(1 for _ in self._docs(batch=1024))

    # -- pagination -------------------------------------------------------------------------
    def _fingerprint(self) -> str:
        text = "|".join(
            [self._table, self._index_name, self._range_text, "desc" if self._descending else "asc"]
            + self._filter_texts
        )
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def _cursor(self, fingerprint: str, key: bytes | None) -> str:
        body = json.dumps([fingerprint, key.hex() if key is not None else None])
        return base64.urlsafe_b64encode(body.encode()).decode()

    def _parse_cursor(self, cursor: Any, fingerprint: str, what: str) -> bytes | None:
        """The position a cursor names: a key, or None for "the end of the range"."""
        try:
            fp, key = json.loads(base64.urlsafe_b64decode(cursor.encode()))
            position = bytes.fromhex(key) if key is not None else None
        except Exception:  # noqa: BLE001 - whatever fails to decode is not one of our cursors
            raise InvalidCursorError(f"InvalidCursor: {what} {cursor!r} is not a cursor made by paginate()") from None
        if fp != fingerprint:
            raise InvalidCursorError(
                f"InvalidCursor: {what} was made by a different query; a cursor is only valid for "
                "the exact query (table, index, range, filters, order) that returned it"
            )
        return position

    def paginate(self, opts: dict | None = None, *, num_items: int | None = None, cursor: str | None = None) -> dict:
        """One page: ``{"page", "isDone", "continueCursor"}`` (+ ``splitCursor``/``pageStatus``).

        No look-ahead (a full page is never ``isDone``); a cursor is a position in key order,
        valid only for this exact query; ``endCursor`` pins the end (reactive re-runs).
        """
        opts = dict(opts or {})
        if num_items is not None:
            opts["numItems"] = num_items
        if cursor is not None:
            opts["cursor"] = cursor
        n = opts.get("numItems")
        if isinstance(n, bool) or not isinstance(n, (int, float)) or math.isnan(n) or n < 0:
            raise QueryError(f"paginate() needs numItems, a non-negative number; got {n!r}")
        txn = self._txn
        if txn.paginated:
            raise QueryError(
                "This query or mutation function ran multiple paginated queries. "
                "Convex only supports a single paginated query in each function."
            )
        self._start()
        txn.paginated = True
        fingerprint = self._fingerprint()
        if self._search is not None:
            return self._paginate_search(fingerprint, int(n), opts.get("cursor"))
        desc = bool(self._descending)
        lo, hi = self._lo, self._hi
        start = opts.get("cursor")
        if start is not None:
            pos = self._parse_cursor(start, fingerprint, "cursor")
            if pos is None:
                done = self._cursor(fingerprint, None)
                return {"page": [], "isDone": True, "continueCursor": done}
            if desc:
                hi = min(hi, pos)
            else:
                lo = max(lo, pos + b"\x00")
        end = opts.get("endCursor")
        if end is None and txn.journal is not None:
            # A live query re-running: keep the end its first run reached (Convex's journal).
            end = self._journal_end(txn.journal, fingerprint)
        pinned = end is not None
        if pinned:
            end_pos = self._parse_cursor(end, fingerprint, "endCursor")
            if end_pos is not None:
                if desc:
                    lo = max(lo, end_pos)
                else:
                    hi = min(hi, end_pos + b"\x00")
        max_rows = opts.get("maximumRowsRead")
        max_bytes = opts.get("maximumBytesRead")
        want = int(n)
        page: list[dict] = []
        keys: list[bytes] = []
        rows_read = bytes_read = 0
        last_key: bytes | None = None
        limited = False
        exhausted = True
        if lo < hi and (want > 0 or pinned):
            batch = max(1, min(want, 1024)) if not pinned else 256
            for key, doc, size in self._rows(lo, hi, batch):
                rows_read += 1
                bytes_read += size
                last_key = key
                if self._matches(doc):
                    page.append(doc)
                    keys.append(key)
                if not pinned and len(page) >= want:
                    exhausted = False
                    break
                if (max_rows is not None and rows_read >= max_rows) or (
                    max_bytes is not None and bytes_read >= max_bytes
                ):
                    limited, exhausted = True, False
                    break
        elif lo < hi:
            exhausted = False  # numItems 0: nothing read, nothing known
        result: dict[str, Any] = {"page": page}
        if pinned:
            result["isDone"] = end_pos is None if not limited else False
            result["continueCursor"] = end if not limited else self._cursor(fingerprint, last_key)
        elif exhausted:
            result["isDone"] = True
            result["continueCursor"] = self._cursor(fingerprint, None)
        else:
            result["isDone"] = False
            if last_key is None:
                # numItems 0 before reading anything: continue from where we started.
                origin = b"\xff\xff" if desc else b""
                result["continueCursor"] = start if start is not None else self._cursor(fingerprint, origin)
            else:
                result["continueCursor"] = self._cursor(fingerprint, last_key)
        if limited:
            result["pageStatus"] = "SplitRequired"
            split_at = keys[len(keys) // 2 - 1] if len(keys) >= 2 else last_key
            result["splitCursor"] = self._cursor(fingerprint, split_at)
        elif pinned and want > 0 and len(page) > 2 * want:
            # A live page that grew to more than twice its size: Convex recommends splitting
            # it in two at its middle (usePaginatedQuery does, by re-subscribing both halves).
            result["pageStatus"] = "SplitRecommended"
            result["splitCursor"] = self._cursor(fingerprint, keys[len(keys) // 2 - 1])
        txn.journal_out = result["continueCursor"]
        return result

    def _paginate_search(self, fingerprint: str, n: int, cursor: Any) -> dict:
        """Pages of the ranked results (at most 1024): a cursor is a position in that ranking."""
        start = 0
        if cursor is not None:
            pos = self._parse_cursor(cursor, fingerprint, "cursor")
            start = int.from_bytes(pos, "big") if pos is not None else MAX_SEARCH_RESULTS
        if self._filters:
            docs = self._search_results()[0]
            page = docs[start : start + n]
            total = len(docs)
        else:  # (only the page's documents are read)
            found = self._search_keys(start + n)[0]  # (one more tells whether there are more)
            page = list(self._search_docs(found, start, start + n, max(1, n)))
            total = len(found)
        end = start + len(page)
        done = end >= total
        result: dict[str, Any] = {"page": page, "isDone": done,
                  "continueCursor": self._cursor(fingerprint, None if done else end.to_bytes(4, "big"))}
        self._txn.journal_out = result["continueCursor"]
        return result

    def _journal_end(self, journal: str, fingerprint: str) -> str | None:
        """The journaled end cursor, unless it belongs to another query (a redefined function)."""
        try:
            self._parse_cursor(journal, fingerprint, "journal")
        except InvalidCursorError:
            return None
        return journal
