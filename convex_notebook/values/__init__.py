"""Convex values in Python: types, checks and limits, sizes, order, key encoding, JSON, ids.

Pure functions, no I/O. See API.md §1 and PROTOCOL.md §1.
"""

from __future__ import annotations

from ._check import (
    MAX_ARRAY_LENGTH,
    MAX_DOCUMENT_NESTING,
    MAX_FIELD_NAME_LENGTH,
    MAX_OBJECT_FIELDS,
    MAX_TOP_LEVEL_FIELD_NAME_LENGTH,
    MAX_VALUE_NESTING,
    check_document,
    check_field_name,
    convex_value,
    normalize_document,
)
from ._codec import (
    dumps,
    dumps_document,
    from_json,
    loads,
    loads_document,
    to_clean_json,
    to_json,
)
from ._ids import decode_id, encode_id, id_table_number, is_id, new_id
from ._keys import decode_key, encode_key, encode_value, prefix_end
from ._model import INT64_MAX, INT64_MIN, MAX_SAFE_INT, MISSING, Int64, type_name
from ._order import compare, sort_key, values_equal
from ._size import (
    ID_LENGTH,
    MAX_DOCUMENT_SIZE,
    SYSTEM_FIELDS_SIZE,
    document_size,
    format_size,
    value_size,
)

__all__ = [
    "ID_LENGTH",
    "INT64_MAX",
    "INT64_MIN",
    "MAX_ARRAY_LENGTH",
    "MAX_DOCUMENT_NESTING",
    "MAX_DOCUMENT_SIZE",
    "MAX_FIELD_NAME_LENGTH",
    "MAX_OBJECT_FIELDS",
    "MAX_SAFE_INT",
    "MAX_TOP_LEVEL_FIELD_NAME_LENGTH",
    "MAX_VALUE_NESTING",
    "MISSING",
    "SYSTEM_FIELDS_SIZE",
    "Int64",
    "check_document",
    "check_field_name",
    "compare",
    "convex_value",
    "decode_id",
    "decode_key",
    "document_size",
    "dumps",
    "dumps_document",
    "encode_id",
    "encode_key",
    "encode_value",
    "format_size",
    "from_json",
    "id_table_number",
    "is_id",
    "loads",
    "loads_document",
    "new_id",
    "normalize_document",
    "prefix_end",
    "sort_key",
    "to_clean_json",
    "to_json",
    "type_name",
    "value_size",
    "values_equal",
]
