"""One table from or to a file: JSONL, a JSON array, or CSV (``npx convex import --table``).

Reading, as Convex does:
* ``.jsonl``: one JSON object per line; ``.json``: one array of objects (at most 8 MiB: use
  JSONL beyond); values are plain JSON (numbers are Float64) plus the ``convex_encoded_json``
  wrappers ``{"$integer"|"$float"|"$bytes": ...}``, so our own exports read back exactly.
  ``encoding="export"`` reads ``export_json`` instead (JSON integers are Int64).
* ``.csv``: a header row of field names; each cell is a number (Float64) if it parses as one,
  else a string (an empty cell is the empty string). Non-finite numbers (``NaN``, ``inf``)
  become null, as in Convex (JSON has no such numbers).

``_id`` and ``_creationTime`` fields are kept (they must be ids of this table); documents
without them get new ones.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
from typing import TYPE_CHECKING, Any, Literal

from ..engine import bulk
from ..values import Int64, from_json, to_clean_json, to_json
from ..values._codec import _encode
from . import _load
from .errors import ImportFileError
from .jsonvalues import from_export_json, to_export_json
from .paths import table_target

if TYPE_CHECKING:
    from ..backend.app import Backend

__all__ = ["export_table", "import_table", "import_table_data", "write_documents"]

Format = Literal["jsonl", "json", "csv"]
JSON_ARRAY_LIMIT = 8 * 1024 * 1024
_EXTENSIONS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".csv": "csv"}
# Rust's f64::from_str, which Convex uses for CSV cells (no spaces, no underscores).
_RUST_FLOAT = re.compile(
    r"[+-]?(?:inf|infinity|nan|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)\Z", re.IGNORECASE
)


def table_format(path: str, fmt: str | None) -> str:
    """The format of a table file: ``fmt`` if given, else from its extension (checked)."""
    if fmt is None:
        fmt = _EXTENSIONS.get(os.path.splitext(path)[1].lower())
        if fmt is None:
            raise ValueError(f"Cannot tell the format of {path!r} from its name: pass format='jsonl', 'json' or 'csv'")
    if fmt not in ("jsonl", "json", "csv"):
        raise ValueError(f"format= takes 'jsonl', 'json' or 'csv', got {fmt!r}")
    return fmt


def csv_cell(s: str) -> Any:
    """A CSV cell as Convex reads it: a float if it parses as one, else the string."""
    if _RUST_FLOAT.match(s):
        x = float(s)
        return x if math.isfinite(x) else None
    return s


def import_table(
    app: Backend,
    table: str,
    path: str | os.PathLike[str],
    *,
    format: Format | None = None,
    mode: str = "insert",
    encoding: Literal["json", "export"] = "json",
) -> int:
    """Import a file into ``table`` in one transaction; return the number of documents.

    ``mode``: ``"insert"`` (the table must be empty), ``"append"``, or ``"replace"``
    (an empty file clears the table, as ``npx convex import --replace``).
    """
    _load.check_mode(mode)
    file = table_target(path)
    fmt = table_format(file, format)
    name = os.path.basename(file)
    try:
        with open(file, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise ImportFileError(name, None, "no such file") from None
    return import_table_data(app, table, data, format=fmt, mode=mode, encoding=encoding, name=name)  # type: ignore[arg-type]


def import_table_data(
    app: Backend,
    table: str,
    data: bytes,
    *,
    format: Format,
    mode: str = "insert",
    encoding: Literal["json", "export"] = "json",
    name: str = "data",
) -> int:
    """:func:`import_table` of bytes already read (a server's request body); errors say ``name``."""
    _load.check_mode(mode)
    fmt = table_format(name, format)
    if encoding not in ("json", "export"):
        raise ValueError(f"encoding= takes 'json' or 'export', got {encoding!r}")
    decode = from_json if encoding == "json" else from_export_json
    load = _load.TableLoad(table, name)
    if fmt == "jsonl":
        _load.read_lines(data, name, decode, load)
    elif fmt == "json":
        _read_array(data, name, decode, load)
    else:
        _read_csv(data, name, load)
    return _load.write_tables(app, [load], mode)[table]


def _read_array(data: bytes, name: str, decode: Any, load: _load.TableLoad) -> None:
    if len(data) > JSON_ARRAY_LIMIT:
        raise ImportFileError(
            name, None, f"a JSON array import is limited to 8 MiB ({len(data):,} bytes): use JSONL for more"
        )
    text = _load.decode_text(data, name)
    try:
        items = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ImportFileError(name, exc.lineno, f"not valid JSON: {exc.msg} (column {exc.colno})") from None
    except RecursionError:  # nested deeper than the parser recurses: the line is unknown
        raise ImportFileError(name, None, "JSON nested too deeply to parse") from None
    if not isinstance(items, list):
        raise ImportFileError(name, None, f"expected a JSON array of documents, got a {type(items).__name__}")
    # Line of each item start: JSON arrays are usually one item per line, else all on line 1.
    starts = _item_lines(text, len(items))
    for i, obj in enumerate(items):
        load.docs.append(_load.decode_document(obj, name, starts[i], decode))
        load.lines.append(starts[i])


def _item_lines(text: str, n: int) -> list[int]:
    """Best-effort 1-based line of each top-level array item (for error messages)."""
    decoder = json.JSONDecoder()
    lines, pos = [], text.index("[") + 1
    for _ in range(n):
        while text[pos] in " \t\r\n,":
            pos += 1
        lines.append(text.count("\n", 0, pos) + 1)
        _, pos = decoder.raw_decode(text, pos)
    return lines


def _read_csv(data: bytes, name: str, load: _load.TableLoad) -> None:
    text = _load.decode_text(data, name)
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise ImportFileError(name, 1, "a CSV import needs a header row of field names") from None
    except csv.Error as exc:
        raise ImportFileError(name, 1, f"malformed CSV: {exc}") from None
    fields = [h.strip(" ") for h in header]
    for f in fields:
        if not f:
            raise ImportFileError(name, 1, "empty field name in the CSV header")
    try:
        for row in reader:
            line = reader.line_num
            if not row:
                continue
            if len(row) != len(fields):
                raise ImportFileError(
                    name, line, f"this row has {len(row)} fields, the header has {len(fields)}"
                )
            load.docs.append({k: csv_cell(c) for k, c in zip(fields, row)})
            load.lines.append(line)
    except csv.Error as exc:
        raise ImportFileError(name, reader.line_num, f"malformed CSV: {exc}") from None


def export_table(
    app: Backend,
    table: str,
    path: str | os.PathLike[str],
    *,
    format: Format | None = None,
    encoding: Literal["encoded", "export", "clean"] = "encoded",
) -> int:
    """Write every document of ``table`` (``_id`` order) to a file; return how many.

    JSONL/JSON ``encoding``: ``"encoded"`` (``convex_encoded_json``: ``$integer``, ``$bytes``,
    ``$float``; lossless, and what :func:`import_table` reads by default), ``"export"``
    (Convex's ``export_json``, lossless: read back with ``encoding="export"``) or ``"clean"``
    (Convex's lossy "json": Int64 as a decimal string, bytes as base64). CSV is lossy: one
    column per field, strings as they are, other values as their clean JSON.
    """
    table_format(os.fspath(path), format)  # a bad path or format fails before reading anything
    with app.read_snapshot() as txn:
        docs = bulk.table_documents(txn, table)
    return write_documents(docs, path, format=format, encoding=encoding)


def write_documents(
    docs: list[dict],
    path: str | os.PathLike[str],
    *,
    format: Format | None = None,
    encoding: Literal["encoded", "export", "clean"] = "encoded",
) -> int:
    """Write documents to a JSONL, JSON or CSV file as :func:`export_table` does (the file
    appears complete or not at all); return how many."""
    file = table_target(path)
    fmt = table_format(file, format)
    encoders = {"encoded": to_json, "export": to_export_json, "clean": to_clean_json}
    if encoding not in encoders:
        raise ValueError(f"encoding= takes 'encoded', 'export' or 'clean', got {encoding!r}")
    encode = encoders[encoding]
    tmp = file + ".tmp"
    with open(tmp, "w", encoding="utf-8", newline="") as out:
        if fmt == "jsonl":
            out.writelines(_encode(encode(d)) + "\n" for d in docs)
        elif fmt == "json":
            out.write("[\n" + ",\n".join(_encode(encode(d)) for d in docs) + "\n]\n")
        else:
            fields: dict[str, None] = {}
            for d in docs:
                fields.update(dict.fromkeys(d))
            writer = csv.writer(out)
            writer.writerow(list(fields))
            for d in docs:
                writer.writerow([_csv_text(d[k]) if k in d else "" for k in fields])
    os.replace(tmp, file)
    return len(docs)


def _csv_text(x: Any) -> str:
    if type(x) is str:
        return x
    if type(x) is float and math.isfinite(x):
        if x.is_integer() and abs(x) < 2**53 and not (x == 0 and math.copysign(1, x) < 0):
            return str(int(x))  # as JavaScript prints a whole number: 120, not 120.0
        return repr(x)
    if type(x) is Int64:
        return str(int(x))
    return _encode(to_clean_json(x))
