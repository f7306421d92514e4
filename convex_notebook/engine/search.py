"""Full-text search: ``.with_search_index(name, lambda q: q.search(field, text).eq(f, v))``.

Convex's semantics on a simple engine: text is split on whitespace and punctuation and
lowercased (terms over 32 characters are dropped); a document matches when its search field
holds any query term, the **last** query term also matching as a prefix (typeahead); the ``eq``
filters are exact (``eq(f, MISSING)`` matches documents without ``f``). Results come by
relevance, BM25 over the table's documents (ties: newest first), and at most 1024 of them
are considered, as Convex scans at most 1024 results from a search index.

The index is the documents themselves: each search tokenizes the table as the transaction
sees it (its own writes included), with a per-table cache of the tokens that a commit to the
table drops. A search reads the whole table, so any write to it re-runs a live search.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..values import MISSING, encode_value
from .filters import field_getter
from .readset import table_range
from .stored import load_row
from .transaction import DatabaseError

if TYPE_CHECKING:
    from .transaction import Transaction

__all__ = ["SearchFilterBuilder", "SearchPlan", "run_search", "tokenize"]

MAX_TERMS, MAX_FILTERS, MAX_TERM_LENGTH, MAX_RESULTS = 16, 8, 32, 1024
K1, B = 1.2, 0.75  # BM25's usual constants
_TOKEN = re.compile(r"[^\W_]+")  # runs of letters and digits


def tokenize(text: str) -> list[str]:
    """Lowercased runs of letters and digits; terms longer than 32 characters are dropped."""
    return [t for t in _TOKEN.findall(text.lower()) if len(t) <= MAX_TERM_LENGTH]


@dataclass
class SearchPlan:
    """One ``q.search(field, text)`` and its ``eq`` filters."""

    index: str
    field: str
    terms: list[str]
    filters: list[tuple[str, Any]] = dataclasses.field(default_factory=list)

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
        self.plan = SearchPlan(self._index.name, field_name, terms)
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


@dataclass
class _Entry:
    doc: dict  # for filtering and ranking only: results are decoded afresh from the row
    key: bytes
    text: str
    plain: int
    counts: Counter
    length: int


def _entries(txn: Transaction, table: str, search_field: str) -> list[_Entry]:
    """Every document of ``table`` as ``txn`` sees it, with its search field's tokens (kept in
    ``Database.table_caches`` between writes to the table: ``Database.cached``)."""
    info = txn.table(table)

    def build() -> list[_Entry]:
        entries: list[_Entry] = []
        if info is not None:
            get = field_getter(search_field)
            for row_key, text, plain in txn.table_rows(info):
                doc = load_row(row_key, text, plain)
                value = get(doc)
                if type(value) is str:
                    tokens = tokenize(value)
                    entries.append(_Entry(doc, row_key, text, plain, Counter(tokens), len(tokens)))
        return entries

    return txn.db.cached(txn, (table, f"search:{search_field}"), build)


def run_search(txn: Transaction, table: str, plan: SearchPlan) -> list[dict]:
    """The documents matching ``plan``, best first (at most 1025: one more than can be used)."""
    txn.reads.add(table_range(table))  # coarse but correct: any write to the table re-runs it
    if not plan.terms:
        return []
    entries = _entries(txn, table, plan.field)
    if plan.filters:
        wanted = [(field_getter(f), None if v is MISSING else encode_value(v)) for f, v in plan.filters]

        def passes(doc: dict) -> bool:
            for get, key in wanted:
                value = get(doc)
                if (None if value is MISSING else encode_value(value)) != key:
                    return False
            return True

        entries = [e for e in entries if passes(e.doc)]
    n = len(entries)
    if not n:
        return []
    average = sum(e.length for e in entries) / n or 1.0
    exact, last = plan.terms[:-1], plan.terms[-1]

    def frequencies(entry: _Entry) -> list[int]:
        counts = entry.counts
        found = [counts.get(t, 0) for t in exact]
        found.append(sum(c for token, c in counts.items() if token.startswith(last)))
        return found

    table_tf = [frequencies(e) for e in entries]
    df = [sum(1 for tf in table_tf if tf[i]) for i in range(len(plan.terms))]
    idf = [math.log(1 + (n - d + 0.5) / (d + 0.5)) for d in df]
    scored = []
    for entry, tf in zip(entries, table_tf):
        if not any(tf):
            continue
        norm = K1 * (1 - B + B * entry.length / average)
        score = sum(w * f * (K1 + 1) / (f + norm) for w, f in zip(idf, tf) if f)
        scored.append((-score, -entry.doc["_creationTime"], entry.doc["_id"], entry))
    scored.sort(key=lambda s: s[:3])
    # One beyond the cap, so that collect() can tell there were more (private copies).
    return [load_row(s[3].key, s[3].text, s[3].plain) for s in scored[: MAX_RESULTS + 1]]
