"""Which live queries does a commit touch? A stabbing index over read ranges.

Every live query registers the key ranges it read. A commit hands over the keys it wrote
(old and new index keys of each document); we must find the queries whose ranges contain any
of them, at a cost that grows with the queries affected, not with all of them.

Almost every range a query reads is one of two shapes, each matched in O(1) per written key:
* a **point** ``[k, k+00)``: ``db.get`` and writes' own reads;
* a **prefix** ``[p, p+FF)``: an index range made of equalities only, read to its end
  (``collect``, a full table scan, an exhausted page). A written key is in it iff ``p`` is one
  of the key's element-boundary prefixes, and a key has only a handful of elements.
Anything else (bounded ranges, scans cut short by ``take``/``first``/``paginate``) goes to a
list sorted by ``lo``, searched with bisect and checked for ``hi``.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Hashable, Iterable
from typing import Any

from .readset import KeyRange, WriteSet

__all__ = ["RangeIndex", "element_boundaries"]


def _skip_escaped(b: bytes, j: int) -> int:
    """Index just after an escaped, 00-terminated body starting at ``j``."""
    n = len(b)
    while True:
        j = b.index(0, j)
        if j + 1 < n and b[j + 1] == 0xFF:  # an escaped 00 inside the body
            j += 2
            continue
        return j + 1


def _skip(b: bytes, i: int) -> int:
    """Index just after the element encoding that starts at ``i`` (see ``values._keys``)."""
    tag = b[i]
    if tag in (1, 2, 5, 6):  # missing, null, false, true
        return i + 1
    if tag in (3, 4):  # int64, float64
        return i + 9
    if tag in (7, 8):  # string, bytes
        return _skip_escaped(b, i + 1)
    if tag == 9:  # array: elements then 00
        j = i + 1
        while b[j] != 0:
            j = _skip(b, j)
        return j + 1
    if tag == 10:  # object: (01 key-body value)* then 00
        j = i + 1
        while b[j] != 0:
            j = _skip_escaped(b, j + 1)
            j = _skip(b, j)
        return j + 1
    raise ValueError(f"not an index key: unknown tag {tag:#x} at {i}")


def element_boundaries(key: bytes) -> list[int]:
    """Offsets where each element of an encoded key tuple ends."""
    out, i, n = [], 0, len(key)
    while i < n:
        i = _skip(key, i)
        out.append(i)
    return out


class _IndexRanges:
    """The ranges registered on one ``(table, index)``."""

    __slots__ = ("_los", "_sorted", "general", "points", "prefixes")

    def __init__(self) -> None:
        self.points: dict[bytes, set[Hashable]] = defaultdict(set)
        self.prefixes: dict[bytes, set[Hashable]] = defaultdict(set)
        self.general: dict[Hashable, list[tuple[bytes, bytes]]] = defaultdict(list)
        self._sorted: list[tuple[bytes, bytes, Any]] | None = None
        self._los: list[bytes] = []

    def add(self, owner: Hashable, lo: bytes, hi: bytes) -> None:
        if hi == lo + b"\x00":
            self.points[lo].add(owner)
        elif hi == lo + b"\xff":
            self.prefixes[lo].add(owner)
        else:
            self.general[owner].append((lo, hi))
            self._sorted = None

    def remove(self, owner: Hashable, lo: bytes, hi: bytes) -> None:
        if hi == lo + b"\x00":
            _discard(self.points, lo, owner)
        elif hi == lo + b"\xff":
            _discard(self.prefixes, lo, owner)
        else:
            ranges = self.general.get(owner)
            if ranges is not None:
                try:
                    ranges.remove((lo, hi))
                except ValueError:
                    pass
                if not ranges:
                    del self.general[owner]
            self._sorted = None

    def stab(self, key: bytes, out: set[Hashable]) -> None:
        owners = self.points.get(key)
        if owners:
            out.update(owners)
        if self.prefixes:
            prefixes = self.prefixes
            owners = prefixes.get(b"")
            if owners:
                out.update(owners)
            for end in element_boundaries(key):
                owners = prefixes.get(key[:end])
                if owners:
                    out.update(owners)
        if self.general:
            if self._sorted is None:
                self._sorted = sorted(
                    ((lo, hi, owner) for owner, ranges in self.general.items() for lo, hi in ranges),
                    key=lambda item: item[0],
                )
                self._los = [item[0] for item in self._sorted]
            items = self._sorted
            # Ranges starting at or before the key; those ending after it contain it.
            stop = bisect.bisect_right(self._los, key)
            for lo, hi, owner in items[:stop]:
                if key < hi:
                    out.add(owner)

    def __bool__(self) -> bool:
        return bool(self.points or self.prefixes or self.general)


def _discard(table: dict[bytes, set[Hashable]], key: bytes, owner: Hashable) -> None:
    owners = table.get(key)
    if owners is not None:
        owners.discard(owner)
        if not owners:
            del table[key]


class RangeIndex:
    """Read ranges of many owners (live queries), searchable by written key."""

    def __init__(self) -> None:
        self._by_index: dict[tuple[str, str], _IndexRanges] = {}
        self._owned: dict[Hashable, list[KeyRange]] = {}

    def __len__(self) -> int:
        return len(self._owned)

    def set_ranges(self, owner: Hashable, ranges: Iterable[KeyRange]) -> None:
        """Replace everything ``owner`` watches."""
        self.remove(owner)
        kept = [r for r in ranges if r.lo < r.hi]
        for r in kept:
            slot = self._by_index.get((r.table, r.index))
            if slot is None:
                slot = self._by_index[(r.table, r.index)] = _IndexRanges()
            slot.add(owner, r.lo, r.hi)
        self._owned[owner] = kept

    def remove(self, owner: Hashable) -> None:
        for r in self._owned.pop(owner, ()):
            slot = self._by_index.get((r.table, r.index))
            if slot is not None:
                slot.remove(owner, r.lo, r.hi)
                if not slot:
                    del self._by_index[(r.table, r.index)]

    def affected(self, writes: WriteSet) -> set[Hashable]:
        """Owners whose ranges contain at least one written key."""
        out: set[Hashable] = set()
        if not self._by_index:  # nothing watched (e.g. no live queries, cache off)
            return out
        for (table, index), keys in writes.keys.items():
            slot = self._by_index.get((table, index))
            if slot is None:
                continue
            for key in keys:
                slot.stab(key, out)
        return out
