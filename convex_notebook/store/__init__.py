"""Persistence behind one small interface (SQLite: a file, or in memory)."""

from .sqlite import FIRST_TABLE_NUMBER, SqliteStore, StoredIndex

__all__ = ["FIRST_TABLE_NUMBER", "SqliteStore", "StoredIndex"]
