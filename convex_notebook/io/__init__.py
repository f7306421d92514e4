"""Convex's data import/export formats, without pandas.

* :func:`export_snapshot` / :func:`import_snapshot`: the ZIP of ``npx convex export`` /
  ``npx convex import x.zip`` (``<table>/documents.jsonl``, ``<table>/generated_schema.jsonl``,
  ``_tables/documents.jsonl``, ``README.md``); ids and creation times are kept.
* :func:`import_table` / :func:`export_table`: one table from/to JSONL, a JSON array or CSV
  (``npx convex import --table``).

Imports are all-or-nothing: a malformed file raises :class:`ImportFileError` naming the file
and line, and nothing is written.
"""

from __future__ import annotations

from .errors import ImportFileError
from .jsonvalues import from_export_json, to_export_json
from .snapshot import export_snapshot, import_snapshot
from .tables import export_table, import_table

__all__ = [
    "ImportFileError",
    "export_snapshot",
    "export_table",
    "from_export_json",
    "import_snapshot",
    "import_table",
    "to_export_json",
]
