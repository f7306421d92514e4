"""Snapshot ZIPs in Convex's layout (``npx convex export`` / ``npx convex import x.zip``).

    README.md
    _tables/documents.jsonl              {"name": "tasks", "id": 10001}   per user table
    tasks/generated_schema.jsonl         "uniform"
    tasks/documents.jsonl                one document per line, export_json values

Documents keep their ``_id`` and ``_creationTime`` (references between tables stay valid):
each table keeps its table number, which ids encode. Reading, ``generated_schema.jsonl``
``"uniform"`` (current Convex) means export_json values; a snapshot without it is read as
plain JSON (numbers are Float64, ``$``-wrappers decoded). Legacy inferred-shape schemas of
old Convex exports are refused with a clear error. File storage comes with
``include_file_storage``: ``_storage/documents.jsonl`` and the files at ``_storage/<id>``,
imported with their ids. A mounted component's tables (``likes/counts`` in the database) are
under ``_components/likes/`` as in Convex (``_components/likes/counts/documents.jsonl`` and
``_components/likes/_tables/documents.jsonl``); importing them needs the component mounted
under that name (``app.use(component, name="likes")``). Nested components are refused.
"""

from __future__ import annotations

import io
import os
import re
import tempfile
import time
import zipfile
import zlib
from typing import TYPE_CHECKING, Any

from ..engine.stored import SYSTEM_TABLES, load_rows
from ..values import decode_id, encode_id, from_json
from ..values._codec import _encode
from . import _load
from .errors import ImportFileError
from .jsonvalues import from_export_json, to_export_json
from .paths import snapshot_target

if TYPE_CHECKING:
    from ..backend.app import Backend

__all__ = ["export_snapshot", "import_snapshot"]

STORAGE_TABLE = "_storage"

README = """# Welcome to your Convex snapshot export!

This ZIP file contains a snapshot of the tables in your Convex deployment.

Documents for each table are listed as lines of JSON in
<table_name>/documents.jsonl files.

For details on the format and how to use this snapshot with npx convex import,
check out [the docs](https://docs.convex.dev/database/import-export/export).
"""

_DOCUMENTS = re.compile(r"^(.*/)?([^/]+)/documents\.jsonl$")
_SCHEMA = re.compile(r"^(.*/)?([^/]+)/generated_schema\.jsonl$")


def export_snapshot(
    app: Backend, path: str | os.PathLike[str], *, include_file_storage: bool = False, at: Any = None
) -> str:
    """Write every table of ``app`` to a snapshot ZIP; return the file's path.

    ``path`` is the ZIP to write, or an existing directory (the file is then named
    ``snapshot_<nanoseconds>.zip`` as Convex does). The snapshot is one consistent read, and
    the file appears complete or not at all (written aside, then renamed).
    ``include_file_storage`` (``--include-file-storage``) adds ``_storage/documents.jsonl``
    and each file's bytes at ``_storage/<id>``. ``at``: the snapshot at that time (as
    ``app.query(..., at=)`` takes it).
    """
    target = snapshot_target(path, f"snapshot_{time.time_ns()}.zip")
    directory = os.path.dirname(os.path.abspath(target))
    fd, tmp = tempfile.mkstemp(prefix=".snapshot-", suffix=".zip", dir=directory)
    os.close(fd)
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
            zf.writestr("README.md", README)
            when = None if at is None else app.timestamp(at)
            with app.read_snapshot(at=when) as txn:
                tables = sorted((txn.table(name).number, name) for name in app.table_names())
                by_prefix: dict[str, list[str]] = {}
                for number, name in tables:
                    mount, _, table = name.rpartition("/")
                    by_prefix.setdefault(f"_components/{mount}/" if mount else "", []).append(
                        _encode({"name": table, "id": number}) + "\n"
                    )
                by_prefix.setdefault("", [])
                for prefix, lines in by_prefix.items():
                    zf.writestr(f"{prefix}_tables/documents.jsonl", "".join(lines))
                if include_file_storage:
                    _write_storage(txn, zf)
                for number, name in tables:
                    mount, _, table = name.rpartition("/")
                    base = f"_components/{mount}/{table}" if mount else name
                    zf.writestr(f"{base}/generated_schema.jsonl", '"uniform"\n')
                    with zf.open(f"{base}/documents.jsonl", "w") as out:
                        for rows in txn.iter_documents_ordered(number):
                            lines = [_encode(to_export_json(doc)) for doc in load_rows(rows)]
                            out.write(("\n".join(lines) + "\n").encode("utf-8"))
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return target


def _write_storage(txn: Any, zf: zipfile.ZipFile) -> None:
    """``_storage/documents.jsonl`` and ``_storage/<id>`` (inside the export's read)."""
    info = txn.table(STORAGE_TABLE)
    lines = []
    if info is not None:
        for rows in txn.iter_documents_ordered(info.number):
            for doc in load_rows(rows):
                data = txn.get_file(doc["_id"])
                if data is not None:
                    zf.writestr(f"{STORAGE_TABLE}/{doc['_id']}", data)
                lines.append(_encode(to_export_json(doc)))
    zf.writestr(f"{STORAGE_TABLE}/documents.jsonl", "".join(line + "\n" for line in lines))


def _read_storage(zf: zipfile.ZipFile, entry: str) -> tuple[list[dict], dict[str, bytes], int | None]:
    """The snapshot's file storage: its documents, their bytes by id, and its table number."""
    docs: list[dict] = []
    for line, raw in enumerate(_load.decode_text(_read(zf, entry), entry).split("\n"), 1):
        if not raw.strip():
            continue
        doc = _load.decode_line(raw, entry, line, from_export_json)
        if not isinstance(doc.get("_id"), str) or decode_id(doc["_id"]) is None:
            raise ImportFileError(entry, line, "a _storage document needs its _id")
        docs.append(doc)
    names = set(zf.namelist())
    files: dict[str, bytes] = {}
    for doc in docs:
        member = f"{entry.rsplit('/', 1)[0]}/{doc['_id']}"
        if member not in names:
            raise ImportFileError(member, None, f"the file of storage id {doc['_id']} is missing from the snapshot")
        files[doc["_id"]] = _read(zf, member)
    number = decode_id(docs[0]["_id"])[0] if docs else None  # type: ignore[index]
    return docs, files, number


def _storage_writer(docs: list[dict], files: dict[str, bytes], number: int | None, mode: str) -> Any:
    """Writes the snapshot's files in the import's transaction, ids kept (renumbered to ours)."""

    def write(txn: Any) -> None:
        ours = txn.system_table(STORAGE_TABLE)
        if mode == "replace":
            for rows in list(txn.iter_documents_ordered(ours.number)):
                for old in load_rows(rows):
                    txn.delete(old["_id"])
                    txn.delete_file(old["_id"])
        for doc in docs:
            table_number, internal = decode_id(doc["_id"])  # type: ignore[misc]
            doc_id = encode_id(ours.number, internal) if table_number != ours.number else doc["_id"]
            fields = {k: v for k, v in doc.items() if k not in ("_id", "_creationTime")}
            try:
                txn.insert_system(STORAGE_TABLE, fields, doc_id=doc_id, creation_time=doc.get("_creationTime"))
            except Exception as exc:  # noqa: BLE001 - named for the file
                raise ImportFileError(f"{STORAGE_TABLE}/documents.jsonl", None, str(exc)) from None
            txn.put_file(doc_id, files[doc["_id"]])

    return write


def _decoder(file: str, schema_line: Any) -> Any:
    if schema_line is None:
        return from_json  # no generated schema: plain JSON (as Convex reads it), $-wrappers too
    if schema_line == "uniform":
        return from_export_json
    raise ImportFileError(
        file, 1,
        "this snapshot uses the legacy inferred-shape generated schema of old Convex exports, "
        "which is not supported: export it again with a current Convex version",
    )


def import_snapshot(
    app: Backend, path: str | os.PathLike[str], *, mode: str = "insert", clear_other_tables: bool = False
) -> dict[str, int]:
    """Import every table of a snapshot ZIP, keeping ids and creation times; return the
    number of documents per table.

    ``mode="insert"`` (the default, like ``npx convex import``) fails if a table of the
    snapshot already has documents; ``"replace"`` replaces those tables (``--replace``);
    ``"append"`` adds to them. Tables the snapshot does not mention are left alone, unless
    ``clear_other_tables`` (``--replace-all``) empties them. All tables are written in one
    transaction: on any error, nothing is.
    """
    _load.check_mode(mode)
    file = os.fspath(path)
    name = os.path.basename(file)
    try:
        zf = zipfile.ZipFile(file)
    except zipfile.BadZipFile:
        raise ImportFileError(name, None, "not a ZIP file (expected a Convex snapshot export)") from None
    except FileNotFoundError:
        raise ImportFileError(name, None, "no such file") from None
    return _import_zip(app, zf, name, mode, clear_other_tables)


def import_snapshot_data(
    app: Backend, data: bytes, *, mode: str = "insert", name: str = "snapshot.zip", clear_other_tables: bool = False
) -> dict[str, int]:
    """:func:`import_snapshot` of a ZIP already in memory (a server's request body)."""
    _load.check_mode(mode)
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise ImportFileError(name, None, "not a ZIP file (expected a Convex snapshot export)") from None
    return _import_zip(app, zf, name, mode, clear_other_tables)


def _import_zip(app: Backend, zf: zipfile.ZipFile, name: str, mode: str, clear_other_tables: bool) -> dict[str, int]:
    with zf:
        entries = zf.namelist()
        numbers: dict[str, int] = {}
        schemas: dict[str, Any] = {}
        documents: dict[str, str] = {}
        for entry in entries:
            for pattern, kind in ((_DOCUMENTS, "documents"), (_SCHEMA, "schema")):
                m = pattern.match(entry)
                if not m:
                    continue
                prefix, table = m.group(1) or "", m.group(2)
                if "_components/" in prefix:
                    parts = prefix.split("/")
                    if len(parts) != 3 or parts[0] != "_components":
                        raise ImportFileError(entry, None, "nested components are not supported")
                    table = f"{parts[1]}/{table}"  # a mounted component's table
                found = documents if kind == "documents" else schemas
                if table in found:  # e.g. an export zipped again beside its unzipped copy
                    raise ImportFileError(
                        entry, None, f"table {table!r} is also in {found[table]}: a snapshot holds each table once"
                    )
                found[table] = entry
        if not documents:
            raise ImportFileError(
                name, None, "not a Convex snapshot: it has no <table>/documents.jsonl entries"
            )
        storage = _read_storage(zf, documents[STORAGE_TABLE]) if STORAGE_TABLE in documents else None
        for listing in [t for t in documents if t.rpartition("/")[2] == "_tables"]:
            mount = listing.rpartition("/")[0]
            for listed, listed_number in _table_numbers(zf, documents[listing]):
                numbers[f"{mount}/{listed}" if mount else listed] = listed_number
        loads = []
        for table in sorted(documents):
            if table.rpartition("/")[2].startswith("_"):
                continue  # other system tables: not imported (as Convex)
            entry = documents[table]
            if "/" in table and table not in app.table_names():
                mount = table.partition("/")[0]
                raise ImportFileError(
                    entry, None,
                    f"component {mount!r} has no table {table.partition('/')[2]!r} here: mount it first "
                    f"(app.use(component, name={mount!r}))",
                )
            schema_line = None
            if table in schemas:
                first = _read(zf, schemas[table]).split(b"\n", 1)[0]
                schema_line = _load.parse_json(first, schemas[table], 1) if first.strip() else None
            decode = _decoder(schemas.get(table, entry), schema_line)
            load = _load.TableLoad(table, entry, number=numbers.get(table))
            _load.read_lines(_read(zf, entry), entry, decode, load)
            loads.append(load)
    if storage is None:
        return _load.write_tables(app, loads, mode, clear_other_tables=clear_other_tables)
    docs, files, number = storage
    ours = SYSTEM_TABLES[STORAGE_TABLE]
    counts = _load.write_tables(
        app, loads, mode, clear_other_tables=clear_other_tables,
        extra_remap={number: ours} if number is not None and number != ours else None,
        before=_storage_writer(docs, files, number, mode),
    )
    counts[STORAGE_TABLE] = len(docs)
    return counts


def _table_numbers(zf: zipfile.ZipFile, entry: str) -> list[tuple[str, int]]:
    """The ``(name, table number)`` lines of a ``_tables/documents.jsonl``, each checked: a
    number no id can encode would fail later, in the write, naming no file."""
    out = []
    for line, raw in enumerate(_load.decode_text(_read(zf, entry), entry).split("\n"), 1):
        if not raw.strip():
            continue
        row = _load.parse_json(raw, entry, line)
        try:
            name, number = row["name"], int(row["id"])
        except (ValueError, KeyError, TypeError, OverflowError) as exc:  # OverflowError: int(inf)
            raise ImportFileError(entry, line, f'expected {{"name": ..., "id": ...}}: {exc}') from None
        if not isinstance(name, str) or not name:
            raise ImportFileError(entry, line, f"a table's name must be a non-empty string, got {name!r:.60}")
        if not 0 < number < 1 << 32:
            raise ImportFileError(entry, line, f"table {name!r} has number {number}: table numbers are 1..2^32-1")
        out.append((name, number))
    return out


def _read(zf: zipfile.ZipFile, entry: str) -> bytes:
    try:
        return zf.read(entry)
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError) as exc:
        raise ImportFileError(entry, None, f"cannot read this entry of the ZIP: {exc}") from None
