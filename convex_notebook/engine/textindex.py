"""Text search indexes kept on commit: SQLite FTS5 tables maintained with the documents.

Every search index of the schema is an FTS5 table (``store.fulltext``) written in the same
SQLite transaction as the documents it indexes, by whatever wrote them: a mutation's commit,
an exclusive transaction (imports, DataFrames, clearing a table), a schema push (which builds
a new index from the documents, and drops a removed one). It is never rebuilt on read. At
commit, the documents a commit wrote (its write set's ``by_creation_time`` keys) are read back
and each index's row of each is rewritten when its tokens or filter values changed.

Reactivity and optimistic validation use a synthetic index per search index,
``search:<name>``, whose keys are a document's terms (and, per filter field, its value followed
by each term): a search reads the keys of its terms (the last one as a prefix) under its first
filter's value, so a write whose old and new documents hold none of them does not touch it.
Ranking statistics (document count, lengths, document frequencies) may drift meanwhile, as in
Convex. A very large write (an import) writes one key every search reads instead.

Ranking is FTS5's BM25 (k1 1.2, b 0.75) on the search field, where a document's length also
counts one token per filter field; ``bm25_order`` computes the same numbers in Python for the
searches FTS5 cannot answer alone: inside a mutation that wrote to the table (its buffered
writes must be found), and in the past (time travel), which scan the table as it was.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..store.fulltext import StoredTextIndex, TextIndexStore
from ..values import MISSING, encode_value
from .filters import field_getter
from .readset import KeyRange, WriteSet, point_range
from .stored import load_row

if TYPE_CHECKING:
    from .database import Database, TableInfo

__all__ = [
    "MAX_TERM_LENGTH", "TextIndex", "apply_declared", "bm25_order", "build_rows", "filter_token",
    "natural_rowid", "search_ranges", "sync_commit", "tokenize",
]

MAX_TERM_LENGTH = 32
K1, B = 1.2, 0.75  # FTS5's bm25() constants (Convex's too)
_TOKEN = re.compile(r"[^\W_]+")  # runs of letters and digits
_SIGN = 1 << 63
# Past this many documents, a commit's search keys become one key every search reads.
MAX_KEYED_DOCUMENTS = 1000
_EVERY_SEARCH = b"*"  # that key (sorts before the b"f" and b"t" keys)
_BATCH = 500  # keys per "IN (...)" read


def tokenize(text: str) -> list[str]:
    """Lowercased runs of letters and digits; terms longer than 32 characters are dropped."""
    return [t for t in _TOKEN.findall(text.lower()) if len(t) <= MAX_TERM_LENGTH]


def filter_token(position: int, value: Any) -> str:
    """The FTS5 term naming filter field number ``position`` equal to ``value`` (MISSING for
    an absent field): ASCII letters and digits, one token for the ``ascii`` tokenizer."""
    data = b"\x00" if value is MISSING else b"\x01" + encode_value(value)
    return "f" + hashlib.blake2b(bytes((position,)) + data, digest_size=16).hexdigest()


def natural_rowid(key: bytes) -> int:
    """A document's FTS5 rowid: its creation time (the key's 8 order bytes, sign bit removed)."""
    return int.from_bytes(key[1:9], "big") - _SIGN


def index_name(name: str) -> str:
    """The synthetic index a search index's terms are read and written under."""
    return f"search:{name}"


@dataclass
class TextIndex:
    """A search index of a table: its stored row, and how to read a document for it."""

    stored: StoredTextIndex
    table: str
    get_text: Callable[[dict], Any] = field(repr=False)
    get_filters: tuple[Callable[[dict], Any], ...] = field(repr=False)

    @classmethod
    def of(cls, stored: StoredTextIndex, table: str) -> TextIndex:
        return cls(stored, table, field_getter(stored.search_field), tuple(field_getter(f) for f in stored.filter_fields))

    @property
    def name(self) -> str:
        return self.stored.name

    def tokens(self, doc: dict | None) -> list[str] | None:
        """The search field's terms (None: not indexed, the field is no string)."""
        if doc is None:
            return None
        value = self.get_text(doc)
        return tokenize(value) if type(value) is str else None

    def filter_tokens(self, doc: dict) -> list[str]:
        return [filter_token(i, get(doc)) for i, get in enumerate(self.get_filters)]


def _doc_keys(terms: Iterable[str], filters: Iterable[str]) -> list[bytes]:
    """The synthetic index keys of one indexed document."""
    encoded = [t.encode() for t in set(terms)]
    keys = [b"t" + t for t in encoded]
    for f in filters:
        base = b"f" + f.encode()
        keys += [base + t for t in encoded]
    return keys


def search_ranges(index: TextIndex, terms: list[str], filters: list[tuple[int, Any]]) -> list[KeyRange]:
    """What a search reads: its terms (the last also as a prefix), under its first filter."""
    name, table = index_name(index.name), index.table
    base = b"f" + filter_token(*filters[0]).encode() if filters else b"t"
    ranges = [point_range(table, name, _EVERY_SEARCH)]
    ranges += [point_range(table, name, base + t.encode()) for t in set(terms[:-1])]
    last = base + terms[-1].encode()
    # (UTF-8 never holds 0xff; not ``last + ff``, which the live-query index takes for a
    # prefix of encoded index keys, which these keys are not)
    ranges.append(KeyRange(table, name, last, last + b"\xff\xff"))
    return ranges


# -- maintenance ------------------------------------------------------------------------------
def sync_commit(db: Database, writes: WriteSet) -> None:
    """Bring the search indexes of the tables ``writes`` wrote up to date with their documents
    (inside the commit's SQLite transaction, on the writer connection), and add the written
    search keys to ``writes``."""
    store = db.store
    for table in [t for t in writes.tables if t in db.text_tables]:
        info = db.table(table)
        keys = writes.keys.get((table, "by_creation_time"))
        if info is None or not info.text_indexes or not keys:
            continue
        keys = list(dict.fromkeys(keys))
        keyed = len(keys) <= MAX_KEYED_DOCUMENTS
        fts = TextIndexStore(store.conn)
        if not keyed and not store.count_documents(info.number):  # a table cleared: at once
            for index in info.text_indexes.values():
                fts.clear(index.stored)
                writes.add(table, index_name(index.name), _EVERY_SEARCH)
            continue
        docs = _current_documents(store.conn, info.number, keys)
        for index in info.text_indexes.values():
            written: list[bytes] = []
            for key in keys:
                natural = natural_rowid(key)
                old = fts.find(index.stored, natural, key)
                doc = docs.get(key)
                tokens = index.tokens(doc)
                if tokens is not None:
                    assert doc is not None
                    filters = index.filter_tokens(doc)
                    text, ftext = " ".join(tokens), " ".join(filters)
                    if keyed:
                        written += _doc_keys(tokens, filters)
                    if old is not None and old[1] == text and old[2] == ftext:
                        continue  # another field changed: the index row stays
                if old is not None:
                    fts.delete(index.stored, old[0], natural, key)
                    if keyed:
                        written += _doc_keys(old[1].split(), old[2].split())
                if tokens is not None:
                    fts.insert(index.stored, natural, key, text, ftext)
            name = index_name(index.name)
            if not keyed:
                writes.add(table, name, _EVERY_SEARCH)
            elif written:
                writes.keys.setdefault((table, name), []).extend(written)


def _current_documents(conn: Any, number: int, keys: list[bytes]) -> dict[bytes, dict]:
    """The documents stored under ``keys`` now (absent keys: deleted)."""
    docs: dict[bytes, dict] = {}
    for lo in range(0, len(keys), _BATCH):
        part = keys[lo : lo + _BATCH]
        marks = ",".join("?" * len(part))
        for key, text, plain in conn.execute(
            f"SELECT key, json, plain FROM documents WHERE table_number = ? AND key IN ({marks})", (number, *part)
        ):
            docs[key] = load_row(key, text, plain)
    return docs


def build_rows(index: TextIndex, rows: Iterable[tuple[bytes, str, int]]) -> list[tuple[int, bytes, str, str]]:
    """FTS rows ``(natural rowid, key, tokens, filters)`` of stored ``(key, json, plain)`` rows."""
    out = []
    for key, text, plain in rows:
        doc = load_row(key, text, plain)
        tokens = index.tokens(doc)
        if tokens is not None:
            out.append((natural_rowid(key), key, " ".join(tokens), " ".join(index.filter_tokens(doc))))
    return out


def _backfill(db: Database, info: TableInfo, index: TextIndex) -> None:
    fts = TextIndexStore(db.store.conn)
    lo, hi = b"", b"\xff"
    while True:
        rows = db.store.scan(info.number, None, lo, hi, False, 10_000)
        fts.insert_many(index.stored, build_rows(index, rows))
        if len(rows) < 10_000:
            return
        lo = rows[-1][0] + b"\x00"


def apply_declared(db: Database, info: TableInfo, declared: Iterable[Any]) -> bool:
    """Make ``info``'s search indexes the ``declared`` ones (inside an exclusive transaction):
    drop the others and those whose fields changed, create and fill the new ones. True when
    something changed."""
    wanted = {d.name: (d.search_field, tuple(d.filter_fields)) for d in declared}
    fts = TextIndexStore(db.store.conn)
    changed = False
    for name, index in list(info.text_indexes.items()):
        stored = index.stored
        if wanted.get(name) != (stored.search_field, stored.filter_fields):
            fts.drop(stored)
            del info.text_indexes[name]
            changed = True
    for name, (search_field, filter_fields) in wanted.items():
        if name not in info.text_indexes:
            index = TextIndex.of(fts.create(info.number, name, search_field, filter_fields), info.name)
            _backfill(db, info, index)
            info.text_indexes[name] = index
            changed = True
    return changed


# -- ranking in Python (buffered writes, the past) ---------------------------------------------
@dataclass
class Candidate:
    """An indexed document that holds some query term: its key, terms and filter tokens."""

    key: bytes
    counts: Counter
    length: int
    filters: list[str]


def candidate(key: bytes, tokens: list[str], filters: list[str]) -> Candidate:
    return Candidate(key, Counter(tokens), len(tokens) + len(filters), filters)


def _frequencies(c: Candidate, exact: list[str], last: str) -> list[int]:
    found = [c.counts.get(t, 0) for t in exact]
    found.append(sum(n for token, n in c.counts.items() if token.startswith(last)))
    return found


def bm25_order(
    candidates: list[Candidate], rows: int, tokens: int, terms: list[str], wanted: list[str], limit: int
) -> list[bytes]:
    """The keys of the ``candidates`` whose filter tokens include ``wanted``, best first, as
    FTS5's ``bm25()`` ranks them (``rows``, ``tokens``: the index's totals; candidates: every
    indexed document holding a term). Ties: the newest first."""
    if not rows:
        return []
    exact, last = terms[:-1], terms[-1]
    table_tf = [_frequencies(c, exact, last) for c in candidates]
    idf = []
    for i in range(len(terms)):
        hits = sum(1 for tf in table_tf if tf[i])
        value = math.log((rows - hits + 0.5) / (hits + 0.5))
        idf.append(value if value > 0.0 else 1e-6)
    average = tokens / rows
    scored = []
    for c, tf in zip(candidates, table_tf):
        if not any(tf) or any(w not in c.filters for w in wanted):
            continue
        score = 0.0
        for w, f in zip(idf, tf):
            if f:
                score += w * (f * (K1 + 1.0)) / (f + K1 * (1 - B + B * c.length / average))
        scored.append((-score, c.key))
    scored.sort(key=lambda s: (s[0], _descending(s[1])))
    return [s[1] for s in scored[:limit]]


def _descending(key: bytes) -> bytes:
    return bytes(255 - b for b in key) + b"\xff"
