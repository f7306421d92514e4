"""Versions of documents laid over what a store snapshot holds.

Two kinds of transaction read "the store, except for these documents":

* a mutation, whose own writes are buffered until it commits (optimistic concurrency: the
  store is only written once the commit is validated), and
* a read in the past (time travel), for which the documents written since are replaced by
  the versions they had then (``engine.history``).

A :class:`TableOverlay` holds those versions for one table, keyed by storage key, and merges
them into index scans: the store's rows for overlaid keys are skipped, and the overlay's own
entries (computed from its documents) are interleaved in index order.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable
from typing import TYPE_CHECKING

from .stored import CT_KEY_LEN, load_row

if TYPE_CHECKING:
    from .database import IndexInfo

__all__ = ["Row", "TableOverlay", "merge_rows"]

# (index key, stored text, plain flag): the rows scans return.
Row = tuple[bytes, str, int]


class Version:
    """One document's version in an overlay: the document (None: it does not exist) with its
    stored text and plain flag."""

    __slots__ = ("doc", "plain", "text")

    def __init__(self, doc: dict | None, text: str = "", plain: int = 1) -> None:
        self.doc = doc
        self.text = text
        self.plain = plain


class TableOverlay:
    """The overlaid documents of one table (see module docstring)."""

    def __init__(self, table_number: int) -> None:
        self.table_number = table_number
        self.versions: dict[bytes, Version] = {}  # storage key -> version
        self.by_id: dict[bytes, bytes] = {}  # encoded id -> storage key
        self._sorted: dict[str, list[tuple[bytes, bytes]]] = {}  # index name -> [(entry key, storage key)]

    def __len__(self) -> int:
        return len(self.versions)

    def set(self, key: bytes, doc: dict | None, text: str = "", plain: int = 1) -> None:
        """Overlay the document stored under ``key`` (None: absent)."""
        self.versions[key] = Version(doc, text, plain)
        self.by_id[key[CT_KEY_LEN:]] = key
        self._sorted.clear()

    def get(self, key: bytes) -> Version | None:
        return self.versions.get(key)

    def key_for_id(self, id_key: bytes) -> bytes | None:
        return self.by_id.get(id_key)

    def copy(self) -> TableOverlay:
        other = TableOverlay(self.table_number)
        other.versions = dict(self.versions)
        other.by_id = dict(self.by_id)
        return other

    def entries(self, index: IndexInfo) -> list[tuple[bytes, bytes]]:
        """``(entry key, storage key)`` of the present documents in ``index``'s order."""
        cached = self._sorted.get(index.name)
        if cached is None:
            name = index.name
            out: list[tuple[bytes, bytes]] = []
            for key, version in self.versions.items():
                doc = version.doc
                if doc is None:
                    continue
                if name == "by_creation_time":
                    entry = key
                elif name == "by_id":
                    entry = key[CT_KEY_LEN:]
                else:
                    entry = index.prefix(doc) + key if index.prefix is not None else key  # type: ignore[misc]
                out.append((entry, key))
            out.sort()
            cached = self._sorted[index.name] = out
        return cached

    def in_range(
        self, index: IndexInfo, lo: bytes, hi: bytes, descending: bool
    ) -> list[tuple[bytes, bytes, Version]]:
        """``(entry key, storage key, version)`` of the overlay's present documents with an
        entry in ``[lo, hi)``, in scan order."""
        entries = self.entries(index)
        start = bisect_left(entries, (lo,))
        end = bisect_left(entries, (hi,))
        found = [(entry, key, self.versions[key]) for entry, key in entries[start:end]]
        if descending:
            found.reverse()
        return found

    def rows(self) -> list[tuple[bytes, str, int]]:
        """``(storage key, text, plain)`` of the present documents, in key order."""
        return sorted((k, v.text, v.plain) for k, v in self.versions.items() if v.doc is not None)


def merge_rows(
    fetch: Callable[[bytes, bytes, int], tuple[list[Row], list[dict]]],
    overlay: TableOverlay,
    index: IndexInfo,
    lo: bytes,
    hi: bytes,
    descending: bool,
    limit: int,
    storage_key_of: Callable[[bytes], bytes],
) -> tuple[list[Row], list[dict]]:
    """Up to ``limit`` rows of ``index`` in ``[lo, hi)`` in scan order and their documents,
    the store's (``fetch(lo, hi, limit)``) merged with ``overlay``'s: exactly
    ``min(limit, rows in range)``.

    Store rows whose document the overlay replaces are skipped, fetching further pages as
    needed, so old or buffered versions never make a ``take(n)`` come back short.
    """
    versions = overlay.versions
    kept: list[tuple[bytes, Row, dict]] = []
    a, b = lo, hi
    while len(kept) < limit:
        rows, docs = fetch(a, b, limit)
        for row, doc in zip(rows, docs):
            if storage_key_of(row[0]) not in versions:
                kept.append((row[0], row, doc))
        if len(rows) < limit:
            break
        last = rows[-1][0]
        if descending:
            b = last
        else:
            a = last + b"\x00"
    for entry, key, version in overlay.in_range(index, lo, hi, descending):
        # (each reader gets its own copy of the document)
        kept.append((entry, (entry, version.text, version.plain), load_row(key, version.text, version.plain)))
    kept.sort(key=lambda item: item[0], reverse=descending)
    del kept[limit:]
    return [k[1] for k in kept], [k[2] for k in kept]
