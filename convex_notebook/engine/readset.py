"""Read sets and write sets: the data that drives invalidation and validates optimistic commits.

Ranges are half-open ``[lo, hi)`` intervals over order-preserving index keys, named by
``(table, index)`` rather than by internal ids so that a read of a table that does not exist
yet still matches the first insert into it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..values import encode_value

__all__ = ["CATALOG_TABLE", "KeyRange", "ReadSet", "WriteSet", "catalog_range", "point_range", "table_range"]

# Creating a table writes its name under this (table, index), as Convex's ``_tables`` system
# table would: a read of the list of tables watches it and re-runs when one appears.
CATALOG_TABLE = "_tables"
_EVERYTHING = (b"", b"\xff")  # every index key (keys never start with 0xff)


@dataclass
class KeyRange:
    """Keys ``lo <= k < hi`` of one index. Mutable: a scan widens ``hi`` as it reads."""

    table: str
    index: str
    lo: bytes
    hi: bytes

    def contains(self, key: bytes) -> bool:
        return self.lo <= key < self.hi

    @property
    def empty(self) -> bool:
        return self.lo >= self.hi


def point_range(table: str, index: str, key: bytes) -> KeyRange:
    """The range holding exactly ``key`` (full keys never extend one another)."""
    return KeyRange(table, index, key, key + b"\x00")


def table_range(table: str) -> KeyRange:
    """Every document of ``table`` (its whole ``by_id`` index): any write to it intersects."""
    return KeyRange(table, "by_id", *_EVERYTHING)


def catalog_range() -> KeyRange:
    """The list of tables: intersected by the commit that creates one."""
    return KeyRange(CATALOG_TABLE, "by_id", *_EVERYTHING)


@dataclass
class ReadSet:
    """What one execution read: index ranges, plus whether it looked at the identity."""

    ranges: list[KeyRange] = field(default_factory=list)
    read_identity: bool = False

    def add(self, r: KeyRange) -> KeyRange:
        self.ranges.append(r)
        return r

    def merge(self, other: ReadSet) -> None:
        self.ranges.extend(other.ranges)
        self.read_identity = self.read_identity or other.read_identity

    def intersects(self, writes: WriteSet) -> bool:
        """True when any written key falls in any range read (the invalidation rule)."""
        return self.first_intersection(writes) is not None

    def first_intersection(self, writes: WriteSet) -> str | None:
        """The table of the first range read that a written key falls in (None: none does)."""
        keys = writes.keys
        if not keys:
            return None
        for r in self.ranges:
            touched = keys.get((r.table, r.index))
            if touched and any(r.lo <= k < r.hi for k in touched):
                return r.table
        return None


@dataclass
class WriteSet:
    """Old and new index keys of every document a commit wrote, per ``(table, index)``."""

    keys: dict[tuple[str, str], list[bytes]] = field(default_factory=dict)
    tables: set[str] = field(default_factory=set)
    documents: int = 0
    everything: bool = False  # a schema change: every result may differ


    def add(self, table: str, index: str, key: bytes) -> None:
        keys = self.keys.get((table, index))
        if keys is None:  # (setdefault would build an empty list on every call)
            self.keys[(table, index)] = [key]
        else:
            keys.append(key)

    def add_table_created(self, table: str) -> None:
        """Record a new table (for reads of the table list; see ``catalog_range``)."""
        self.add(CATALOG_TABLE, "by_id", encode_value(table))

    def merge(self, other: WriteSet) -> None:
        for k, v in other.keys.items():
            self.keys.setdefault(k, []).extend(v)
        self.tables |= other.tables
        self.documents += other.documents
        self.everything = self.everything or other.everything

    def __bool__(self) -> bool:
        return bool(self.keys) or self.everything
