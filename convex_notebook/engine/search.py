"""Full-text search: ``.with_search_index(name, lambda q: q.search(field, text).eq(f, v))``.

Convex's semantics on a simple engine: text is split on whitespace and punctuation and
lowercased (terms over 32 characters are dropped); a document matches when its search field
holds any query term, the **last** query term also matching as a prefix (typeahead); the ``eq``
filters are exact (``eq(f, MISSING)`` matches documents without ``f``). Results come by
relevance, BM25 over the table's documents (ties: newest first), and at most 1024 of them
are considered, as Convex scans at most 1024 results from a search index.

Each search index is an FTS5 table kept with the documents (``engine.textindex``): a search
asks it for the ranked matches, and reads only the documents it returns. A search's read set
is its terms and first filter value, so a live search re-runs only when a written document
(old or new version) holds one of its terms. Inside a mutation that wrote to the table, and
in the past, the matches are ranked in Python with the same BM25 (see ``engine.textindex``).
"""

from __future__ import annotations

import dataclasses
import sqlite3
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..store.fulltext import TextIndexStore
from .readset import KeyRange
from .stored import load_row
from .textindex import (
    MAX_TERM_LENGTH,
    TextIndex,
    bm25_order,
    candidate,
    filter_token,
    index_name,
    search_ranges,
    tokenize,
)
from .transaction import DatabaseError

if TYPE_CHECKING:
    from .transaction import Transaction

__all__ = ["MAX_TERM_LENGTH", "Matches", "SearchFilterBuilder", "SearchPlan", "load_results", "run_search", "tokenize"]

MAX_TERMS, MAX_FILTERS, MAX_RESULTS = 16, 8, 1024


@dataclass
class SearchPlan:
    """One ``q.search(field, text)`` and its ``eq`` filters."""

    index: str
    field: str
    terms: list[str]
    filters: list[tuple[str, Any]] = dataclasses.field(default_factory=list)
    filter_fields: tuple[str, ...] = ()  # the index's, in order

    @property
    def text(self) -> str:
        eqs = "".join(f".eq({f!r}, {v!r})" for f, v in self.filters)
        return f"search({self.field!r}, {' '.join(self.terms)!r}){eqs}"


class SearchFilterBuilder:
    """The ``q`` of ``with_search_index``: one ``search(field, text)``, then ``eq(field, value)``s."""

    def __init__(self, index: Any, table: str) -> None:
        self._index = index
        self._table = table
        self.plan: SearchPlan | None = None

    def search(self, field_name: str, text: str) -> SearchFilterBuilder:
        if self.plan is not None:
            raise DatabaseError("A search filter has exactly one q.search(...), first")
        if field_name != self._index.search_field:
            raise DatabaseError(
                f"q.search({field_name!r}, ...): search index {self._table}.{self._index.name} searches "
                f"{self._index.search_field!r}"
            )
        if not isinstance(text, str):
            raise DatabaseError(f"q.search(): the query must be a string, got {type(text).__name__}")
        terms = tokenize(text)
        if len(terms) > MAX_TERMS:
            raise DatabaseError(f"A search query has at most {MAX_TERMS} terms, got {len(terms)}")
        self.plan = SearchPlan(self._index.name, field_name, terms, [], tuple(self._index.filter_fields))
        return self

    def eq(self, field_name: str, value: Any) -> SearchFilterBuilder:
        if self.plan is None:
            raise DatabaseError("A search filter starts with q.search(field, text), then q.eq(...)")
        if field_name not in self._index.filter_fields:
            raise DatabaseError(
                f"q.eq({field_name!r}, ...): not a filter field of search index {self._table}.{self._index.name} "
                f"(filter_fields: {list(self._index.filter_fields)})"
            )
        if len(self.plan.filters) >= MAX_FILTERS:
            raise DatabaseError(f"A search query has at most {MAX_FILTERS} eq filters")
        self.plan.filters.append((field_name, value))
        return self


def _match(terms: list[str], filters: list[str], prefix: bool = True) -> str:
    """The FTS5 query: any term in the text column (the last also as a prefix, unless
    ``prefix`` is False), and every filter token in the filter column."""
    phrases = [f'"{t}"' for t in terms[:-1]] + [f'"{terms[-1]}" *' if prefix else f'"{terms[-1]}"']
    query = "t : (" + " OR ".join(phrases) + ")"
    return query + "".join(f' AND f : "{f}"' for f in filters)


class Matches:
    """A search's matches, best first: how many, and their storage keys a slice at a time (an
    FTS5 row's key is read only when asked for: ``take(10)`` reads ten)."""

    def __init__(self, keys: list[bytes] | None = None, rows: list[int] | None = None,
                 fts: TextIndexStore | None = None, index: TextIndex | None = None) -> None:
        self._keys = keys
        self._rows = rows if rows is not None else []
        self._fts, self._index = fts, index

    def __len__(self) -> int:
        return len(self._keys) if self._keys is not None else len(self._rows)

    def first(self, n: int) -> Matches:
        if self._keys is not None:
            return Matches(self._keys[:n])
        return Matches(None, self._rows[:n], self._fts, self._index)

    def keys(self, lo: int, hi: int) -> list[bytes]:
        if self._keys is not None:
            return self._keys[lo:hi]
        assert self._fts is not None and self._index is not None
        return self._fts.keys(self._index.stored, self._rows[lo:hi])


def run_search(txn: Transaction, table: str, plan: SearchPlan, limit: int = MAX_RESULTS + 1) -> Matches:
    """The best ``limit`` documents matching ``plan``, best first (by default 1025: one more
    than can be used, to tell that there are more); ``load_results`` reads them."""
    if not plan.terms:
        return Matches([])
    info = txn.table(table)
    index = info.text_indexes.get(plan.index) if info is not None else None
    positions = {name: i for i, name in enumerate(plan.filter_fields)}
    filters = [(positions[f], v) for f, v in plan.filters]
    txn._count_range()
    if index is None:  # the table (or its index) does not exist yet: nothing, but watched
        # (every key: not b"" to ff, which the live-query index takes for an encoded prefix)
        txn.reads.add(KeyRange(table, index_name(plan.index), b"", b"\xff\xff"))
        return Matches([])
    for r in search_ranges(index, plan.terms, filters):
        txn.reads.add(r)
    wanted = [filter_token(*f) for f in filters]
    assert info is not None
    if txn.sees_index(info):
        fts = TextIndexStore(txn._src().conn)
        try:
            # (a last term that only extends itself is the same search as a plain term, faster)
            prefix = not fts.only_term(index.stored, plan.terms[-1])
            return Matches(None, fts.ranked(index.stored, _match(plan.terms, wanted, prefix), limit), fts, index)
        except sqlite3.OperationalError:  # an index this snapshot predates: scan the table
            pass
    return Matches(_search_in_python(txn, info, index, plan.terms, wanted, limit))


def _search_in_python(
    txn: Transaction, info: Any, index: TextIndex, terms: list[str], wanted: list[str], limit: int
) -> list[bytes]:
    """The search with the transaction's own versions (a mutation's buffered writes, an
    exclusive transaction's writes, the past) ranked in Python with the index's statistics as
    the transaction sees them."""
    exact, last = set(terms[:-1]), terms[-1]

    def holds(tokens: list[str]) -> bool:
        return any(t in exact or t.startswith(last) for t in tokens)

    changed = txn.buffered_versions(info)
    if changed is not None:
        # A mutation's buffered writes over the snapshot's index: the snapshot's matches (all
        # of them, unfiltered: document frequencies count every match) and totals, corrected.
        fts = TextIndexStore(txn._src().conn)
        try:
            stored = fts.matches(index.stored, _match(terms, []))
            rows, tokens = fts.totals(index.stored)
        except sqlite3.OperationalError:  # an index this snapshot predates
            changed = None
    if changed is None:  # the past, an exclusive transaction: every document, tokenized
        stored, rows, tokens = [], 0, 0
        changed = {}
        for key, text, plain in txn.table_rows(info):
            changed[key] = (None, load_row(key, text, plain))
    candidates = [candidate(k, t.split(), f.split()) for k, t, f in stored if k not in changed]
    filter_count = len(index.get_filters)
    for key, (before, after) in changed.items():
        found = index.tokens(before)
        if found is not None:
            rows -= 1
            tokens -= len(found) + filter_count
        found = index.tokens(after)
        if found is not None:
            assert after is not None
            rows += 1
            tokens += len(found) + filter_count
            if holds(found):
                candidates.append(candidate(key, found, index.filter_tokens(after)))
    return bm25_order(candidates, rows, tokens, terms, wanted, limit)


def load_results(txn: Transaction, table: str, keys: list[bytes]) -> list[dict]:
    """The documents stored under ``keys`` as ``txn`` sees them (counted as read)."""
    info = txn.table(table)
    if info is None:
        return []
    out = []
    for key in keys:
        found = txn.document_at_key(info, key)
        if found is not None:
            txn._count_read(found[1])
            out.append(found[0])
    return out
