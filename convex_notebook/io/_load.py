"""Shared by the importers: parse JSON lines, then write whole tables in one transaction."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..engine import bulk
from ..engine.stored import SYSTEM_TABLES
from ..engine.transaction import DatabaseError
from ..errors import InvalidValueError
from ..values import Int64, decode_id, encode_id
from .errors import ImportFileError

if TYPE_CHECKING:
    from ..backend.app import Backend

MODES = ("insert", "replace", "append")


@dataclass
class TableLoad:
    """The documents of one table to import, and where each came from."""

    table: str
    file: str
    docs: list[dict[str, Any]] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)  # 1-based line (or item) of each document
    number: int | None = None  # table number to keep (snapshot _tables), if known


def check_mode(mode: str) -> None:
    if mode not in MODES:
        raise ValueError(f"mode= takes 'insert', 'replace' or 'append', got {mode!r}")


def parse_json(text: str | bytes, file: str, line: int | None) -> Any:
    """``json.loads(text)``; malformed JSON, or JSON nested deeper than the parser recurses
    (a RecursionError would name no file), is an :class:`ImportFileError` saying where."""
    try:
        return json.loads(text)
    except RecursionError:
        raise ImportFileError(file, line, "JSON nested too deeply to parse") from None
    except ValueError as exc:
        raise ImportFileError(file, line, f"not valid JSON: {exc}") from None


def decode_line(text: str, file: str, line: int, decode: Callable[[Any], Any]) -> dict[str, Any]:
    """One JSON document from one line (errors name the file and line)."""
    return decode_document(parse_json(text, file, line), file, line, decode)


def decode_document(obj: Any, file: str, line: int, decode: Callable[[Any], Any]) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise ImportFileError(file, line, f"expected a JSON object (a document), got {type(obj).__name__}")
    try:
        doc = decode(obj)
    except InvalidValueError as exc:
        raise ImportFileError(file, line, str(exc)) from None
    ct = doc.get("_creationTime")
    if type(ct) is Int64:  # written as an integer: still a Float64 timestamp
        doc["_creationTime"] = float(ct)
    return doc


def decode_text(data: bytes, file: str) -> str:
    """A file's bytes as UTF-8 text; anything else is refused naming the line (never
    replaced by U+FFFD, which would import a different value than the file holds)."""
    if data.startswith(b"\xef\xbb\xbf"):
        raise ImportFileError(file, 1, "starts with a UTF-8 byte order mark, which is not supported")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ImportFileError(file, line, f"not UTF-8 text: {exc.reason}") from None


def read_lines(data: bytes, file: str, decode: Callable[[Any], Any], load: TableLoad) -> None:
    """Parse JSONL ``data`` into ``load`` (blank lines are skipped)."""
    text = decode_text(data, file)
    for number, raw in enumerate(text.split("\n"), 1):
        if not raw.strip():
            continue
        load.docs.append(decode_line(raw, file, number, decode))
        load.lines.append(number)


def _first_id_number(load: TableLoad) -> int | None:
    for doc in load.docs:
        doc_id = doc.get("_id")
        if isinstance(doc_id, str):
            decoded = decode_id(doc_id)
            return decoded[0] if decoded else None
    return None


def _plan_numbers(txn: Any, loads: list[TableLoad]) -> dict[int, int]:
    """Choose each table's number: the exported one when it is free here, else another one.
    Returns the renumbering ``{exported: chosen}`` to apply to every id in the import."""
    used = {txn.table(name).number: name for name in txn.table_names()}
    used.update({number: name for name, number in SYSTEM_TABLES.items()})  # reserved, made or not
    wanted = {load.table: (load.number if load.number is not None else _first_id_number(load)) for load in loads}
    claimed: set[int] = set()
    fresh = max([10000, *used, *(n for n in wanted.values() if n is not None)]) + 1
    remap: dict[int, int] = {}
    for load in loads:
        want = wanted[load.table]
        if want is None:
            continue
        info = txn.table(load.table)
        free = (want not in used or used[want] == load.table) and want not in claimed
        if info is not None and info.number == want:
            target = want
        elif info is not None and not (free and bulk.table_count(txn, load.table) == 0):
            target = info.number  # a table that keeps its number: the ids follow it
        elif free:
            target = want
        else:
            target, fresh = fresh, fresh + 1
        claimed.add(target)
        load.number = target
        if target != want:
            remap[want] = target
    return remap


def _remap_ids(x: Any, remap: dict[int, int]) -> Any:
    t = type(x)
    if t is str:
        if 30 <= len(x) <= 40:
            decoded = decode_id(x)
            if decoded is not None and decoded[0] in remap:
                return encode_id(remap[decoded[0]], decoded[1])
        return x
    if t is dict:
        return {k: _remap_ids(e, remap) for k, e in x.items()}
    if t is list:
        return [_remap_ids(e, remap) for e in x]
    return x


def write_tables(
    app: Backend, loads: Iterable[TableLoad], mode: str, *, keep_ids: bool = True, clear_other_tables: bool = False,
    extra_remap: dict[int, int] | None = None, before: Callable[[Any], None] | None = None,
) -> dict[str, int]:
    """Import every table of ``loads`` in one transaction: all of them, or nothing.

    Ids are kept: a table keeps the number its ids encode when that number is free here;
    otherwise it gets another one and every id of it, references in other documents of the
    import included, is rewritten to match (so references stay valid). ``extra_remap`` adds
    renumberings (file storage ids), ``before(txn)`` other writes in the same transaction.
    """
    loads = list(loads)
    out: dict[str, int] = {}
    with app.exclusive_write() as txn:
        if clear_other_tables:  # ``--replace-all``: tables the import does not mention end up empty
            named = {load.table for load in loads}
            for name in app.table_names():
                if name not in named:
                    bulk.clear_table(txn, name)
        for load in loads:
            if mode == "insert":
                count = bulk.table_count(txn, load.table)
                if count:
                    raise ImportFileError(
                        load.file, None,
                        f"table {load.table!r} already has {count} documents: import with "
                        "mode='replace' to replace them, or mode='append' to add to them",
                    )
            elif mode == "replace":
                bulk.clear_table(txn, load.table)
        if before is not None:  # other writes of the same import (file storage), same transaction
            before(txn)
        if keep_ids:
            remap = {**(extra_remap or {}), **_plan_numbers(txn, loads)}
            if remap:
                for load in loads:
                    load.docs = [_remap_ids(d, remap) for d in load.docs]
        for load in loads:
            try:
                bulk.ensure_table(txn, load.table, load.number if keep_ids else None)
                docs = load.docs
                if not keep_ids:
                    docs = [{k: v for k, v in d.items() if k not in ("_id", "_creationTime")} for d in docs]
                bulk.insert_documents(txn, load.table, docs, keep_system_fields=keep_ids)
            except bulk.ImportRowError as exc:
                raise ImportFileError(load.file, load.lines[exc.row], exc.reason) from exc
            except ImportFileError:
                raise
            except DatabaseError as exc:
                raise ImportFileError(load.file, None, str(exc)) from exc
            out[load.table] = len(load.docs)
    return out
