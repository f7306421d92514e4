"""Bulk data over HTTP, admin only: Convex's streaming export and its table import.

* ``GET /api/list_snapshot?tableName=&cursor=&snapshot=&format=``: Convex's streaming-export
  endpoint. Pages of documents (each with ``_table`` and ``_ts``) at one snapshot timestamp,
  ``{"values", "hasMore", "snapshot", "cursor"}``. This server keeps no history: a later page
  of a snapshot is served while its tables are unchanged since, else 400 ``SnapshotUnavailable``
  (start again without ``snapshot``); ``_ts`` is the snapshot's timestamp. ``format`` is
  ``json`` (Convex's) or ``convex_encoded_json`` (ours: exact Int64 and bytes); ``numItems``
  (ours) sets the page size.
* ``POST /api/import?tableName=&mode=&format=``: the single-request import of earlier
  ``npx convex import`` versions (``mode``: ``requireEmpty``, ``append``, ``replace``, or for a zip
  ``replaceAll``; ``format``: ``jsonLines``, ``jsonArray``, ``csv`` or ``zip``, a snapshot, which
  names its tables). The body is the file; one transaction, all or nothing; a malformed body is
  a 400 naming the line. Answers ``{"tableName", "numWritten", "tables"}``.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ..backend.system import table_page
from ..engine.history import HistoryError
from ..engine.transaction import DatabaseError
from ..errors import ConvexFunctionError
from .http import TS_HEADER, HttpApi, RequestError, json_response

__all__ = ["DataApi"]

PAGE_DEFAULT, PAGE_MAX = 1000, 8192
IMPORT_MODES = {"requireEmpty": "insert", "append": "append", "replace": "replace", "replaceAll": "replace"}
IMPORT_FORMATS = {"jsonLines": "jsonl", "jsonArray": "json", "csv": "csv", "zip": "zip"}


def import_file(backend: Any, data: bytes, fmt: str, mode: str, table: str | None, name: str) -> dict[str, int]:
    """Import a file in one of Convex's formats and modes (their CLI names, checked by the
    caller): a zip snapshot, or one table's file; returns the documents written per table."""
    from ..io.snapshot import import_snapshot_data
    from ..io.tables import import_table_data

    if fmt == "zip":
        return import_snapshot_data(
            backend, data, mode=IMPORT_MODES[mode], name=name, clear_other_tables=mode == "replaceAll"
        )
    assert table is not None
    return {table: import_table_data(backend, table, data, format=IMPORT_FORMATS[fmt], mode=IMPORT_MODES[mode], name=name)}  # type: ignore[arg-type]


def _encode_cursor(table: str, cursor: str | None) -> str:
    raw = json.dumps([table, cursor], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode("ascii")


def _decode_cursor(text: str) -> tuple[str, str | None]:
    try:
        table, cursor = json.loads(base64.urlsafe_b64decode(text.encode("ascii")))
        if isinstance(table, str) and (cursor is None or isinstance(cursor, str)):
            return table, cursor
    except (ValueError, TypeError, binascii.Error, UnicodeError):
        pass
    raise RequestError(400, "InvalidCursor", f"Not a list_snapshot cursor: {text[:60]!r}")


class DataApi(HttpApi):
    """``/api/list_snapshot`` and ``/api/import`` of one deployment."""

    @staticmethod
    def _int_param(request: Request, name: str) -> int | None:
        raw = request.query_params.get(name)
        if raw is None or raw == "":
            return None
        try:
            return int(raw)
        except ValueError:
            raise RequestError(400, "BadQueryParameter", f"'{name}' must be an integer, got {raw!r}") from None

    # -- streaming export -----------------------------------------------------------------------
    async def list_snapshot(self, request: Request) -> Response:
        async def run(request: Request) -> Response:
            self._require_admin(request)
            params = request.query_params
            encode = self._encoder(params.get("format"))
            only = params.get("tableName") or None
            snapshot = self._int_param(request, "snapshot")
            size = self._int_param(request, "numItems")
            size = PAGE_DEFAULT if size is None else size
            if not 1 <= size <= PAGE_MAX:
                raise RequestError(400, "BadQueryParameter", f"'numItems' must be between 1 and {PAGE_MAX}")
            position = _decode_cursor(params["cursor"]) if params.get("cursor") else None
            body = await self.dep.run_blocking(lambda: self._snapshot_page(only, snapshot, position, size, encode))
            return json_response(body)

        return await self._guard(request, run)

    def _snapshot_page(
        self, only: str | None, snapshot: int | None, position: tuple[str, str | None] | None, size: int, encode: Any
    ) -> dict:
        try:
            # Every page reads the history at the first page's timestamp: one snapshot.
            with self.dep.backend.read_snapshot(at=snapshot) as txn:
                return self._page_at(txn, only, snapshot, position, size, encode)
        except HistoryError as exc:
            raise RequestError(
                400, "SnapshotUnavailable", f"Cannot continue snapshot {snapshot}: {exc}. Start again without 'snapshot'."
            ) from None

    def _page_at(
        self, txn: Any, only: str | None, snapshot: int | None, position: tuple[str, str | None] | None, size: int,
        encode: Any,
    ) -> dict:
        """One ``list_snapshot`` page, read in ``txn``."""
        if snapshot is None:
            snapshot = txn.snapshot_ts
        tables = [only] if only is not None else sorted(self.dep.backend.table_names())
        if position is not None:
            if position[0] not in tables:
                raise RequestError(400, "InvalidCursor", f"The cursor is for table {position[0]!r}, not listed here")
            tables = tables[tables.index(position[0]):]
        values: list[Any] = []
        table, cursor = (tables[0] if tables else "", None) if position is None else position
        has_more = False
        while table:
            page, cursor, done = self._table_page(txn, table, cursor, size - len(values))
            for doc in page:
                out = encode(doc)
                out["_table"] = table
                out["_ts"] = snapshot
                values.append(out)
            if not done:
                has_more = True
                break
            following = tables.index(table) + 1
            if following == len(tables):
                break  # the end of the snapshot
            table, cursor = tables[following], None
            if len(values) >= size:
                has_more = True
                break
        return {"values": values, "hasMore": has_more, "snapshot": snapshot, "cursor": _encode_cursor(table, cursor)}

    def _table_page(self, txn: Any, table: str, cursor: str | None, size: int) -> tuple[list[dict], str | None, bool]:
        """Up to ``size`` documents of ``table`` after ``cursor``: (documents, next cursor, done)."""
        backend = self.dep.backend
        if size <= 0:
            return [], cursor, False
        if txn.table(table) is None:
            return [], None, True
        txn.paginated = False  # (one paginate per table page, in one transaction)
        try:
            result = table_page(backend, txn, table, {"numItems": size, "cursor": cursor})
        except (ConvexFunctionError, DatabaseError) as exc:
            raise RequestError(400, "InvalidCursor", f"Cannot continue the snapshot of {table!r}: {exc}") from None
        return result["page"], result["continueCursor"], bool(result["isDone"])

    # -- document deltas ------------------------------------------------------------------------
    async def document_deltas(self, request: Request) -> Response:
        """``GET /api/document_deltas?cursor=<ts>&tableName=&format=json``: the documents
        written after ``cursor`` (a ``list_snapshot`` snapshot, or a previous page's cursor),
        oldest first, each with ``_ts`` and ``_table``; deletions as ``{_id, _ts, _table,
        _deleted: true}``."""

        async def run(request: Request) -> Response:
            self._require_admin(request)
            params = request.query_params
            encode = self._encoder(params.get("format"))
            cursor = self._int_param(request, "cursor")
            if cursor is None:
                raise RequestError(400, "BadQueryParameter", "'cursor' is required (a list_snapshot snapshot)")
            size = self._int_param(request, "numItems")
            size = PAGE_DEFAULT if size is None else size
            if not 1 <= size <= PAGE_MAX:
                raise RequestError(400, "BadQueryParameter", f"'numItems' must be between 1 and {PAGE_MAX}")
            only = params.get("tableName") or None
            body = await self.dep.run_blocking(lambda: self._deltas(cursor, only, size, encode))
            return json_response(body)

        return await self._guard(request, run)

    def _deltas(self, cursor: int, only: str | None, size: int, encode: Any) -> dict:
        try:
            changes, end, has_more = self.dep.backend.document_deltas(cursor, size, table=only)
        except HistoryError as exc:
            raise RequestError(400, "InvalidCursor", f"Cannot read document deltas after {cursor}: {exc}") from None
        values = []
        for ts, table, doc_id, doc in changes:
            if doc is None:
                out: dict[str, Any] = {"_id": doc_id, "_deleted": True}
            else:
                out = encode(doc)
            out["_ts"] = ts
            out["_table"] = table
            values.append(out)
        return {"values": values, "hasMore": has_more, "cursor": end}

    # -- import -----------------------------------------------------------------------------------
    async def import_table(self, request: Request) -> Response:
        async def run(request: Request) -> Response:
            self._require_admin(request)
            params = request.query_params
            fmt = IMPORT_FORMATS.get(params.get("format", "jsonLines"))
            if fmt is None:
                raise RequestError(400, "BadQueryParameter", f"'format' is one of {', '.join(IMPORT_FORMATS)}")
            table = params.get("tableName")
            if fmt == "zip" and table:
                raise RequestError(400, "BadQueryParameter", "A zip snapshot names its own tables: give no 'tableName'")
            if fmt != "zip" and not table:
                raise RequestError(400, "BadQueryParameter", "'tableName' is required")
            mode_name = params.get("mode", "requireEmpty")
            mode = IMPORT_MODES.get(mode_name)
            if mode is None or (mode_name == "replaceAll" and fmt != "zip"):
                raise RequestError(400, "BadQueryParameter", f"'mode' is one of {', '.join(IMPORT_MODES)} (replaceAll: zip only)")
            data = await self._raw_body(request, self.dep.settings.max_import_bytes)
            backend = self.dep.backend
            try:
                counts = await self.dep.run_blocking(
                    import_file, backend, data, params.get("format", "jsonLines"), mode_name, table, "request body"
                )
            except DatabaseError as exc:  # a malformed body or rejected data: nothing was written
                raise RequestError(400, "ImportFailed", str(exc)) from None
            ts = backend.latest_ts()  # at or past the import's commit
            answer = {"tableName": table, "numWritten": sum(counts.values()), "tables": counts}
            return json_response(answer, headers={TS_HEADER: str(ts)})

        return await self._guard(request, run)
