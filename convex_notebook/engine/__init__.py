"""The engine: transactions, query execution, index ranges, filters, pagination, read sets."""

from .clock import Clock, SystemClock, VirtualClock
from .database import Database, IndexInfo, SchemaError, TableInfo
from .filters import FilterBuilder
from .query import InvalidCursorError, Query, QueryError
from .ranges import IndexRangeBuilder, IndexRangeError
from .readset import KeyRange, ReadSet, WriteSet
from .transaction import DatabaseError, Transaction, TransactionLimits

__all__ = [
    "Clock",
    "Database",
    "DatabaseError",
    "FilterBuilder",
    "IndexInfo",
    "IndexRangeBuilder",
    "IndexRangeError",
    "InvalidCursorError",
    "KeyRange",
    "Query",
    "QueryError",
    "ReadSet",
    "SchemaError",
    "SystemClock",
    "TableInfo",
    "Transaction",
    "TransactionLimits",
    "VirtualClock",
    "WriteSet",
]
