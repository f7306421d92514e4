"""File storage: ``ctx.storage`` and the ``_storage`` system table.

A stored file is a ``_storage`` document (``{"sha256": hex, "size": bytes, "contentType"?}``)
plus its bytes in the same SQLite database, written in one transaction. What each ``ctx``
offers follows Convex: queries ``get_url``; mutations also ``generate_upload_url`` and
``delete`` (part of their transaction); actions also ``store``, ``get`` and ``get_metadata``.

URLs point at the deployment's HTTP server: ``GET {site}/api/storage/{id}`` serves a file
(with a ``Digest: sha-256=...`` header) and an upload URL takes one ``POST`` of the file's
bytes within an hour, answering ``{"storageId": ...}``. ``site`` is the served URL once
``app.serve()`` runs (``app.site_url``; before that, the address ``serve()`` uses by default).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import secrets
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..engine.transaction import DatabaseError, Transaction

if TYPE_CHECKING:
    from .app import Backend

__all__ = ["STORAGE_TABLE", "ActionStorage", "InlineStorage", "StorageReader", "StorageWriter", "store_file"]

STORAGE_TABLE = "_storage"
UPLOAD_URL_TTL_S = 3600


def _check_id(txn: Transaction, storage_id: Any, op: str) -> str:
    if not isinstance(storage_id, str) or txn.db.table_name_for_id(storage_id) != STORAGE_TABLE:
        raise DatabaseError(f"storage.{op}() takes a storage id (an Id<'_storage'>), got {storage_id!r}")
    return storage_id


def _bytes_of(data: Any) -> bytes:
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    if isinstance(data, os.PathLike):
        return Path(data).read_bytes()
    if hasattr(data, "read"):
        read = data.read()
        if isinstance(read, str):
            raise DatabaseError("storage.store() takes bytes: open the file in binary mode ('rb')")
        return bytes(read)
    raise DatabaseError(
        f"storage.store() takes bytes, a binary file object or a Path, got {type(data).__name__}"
    )


def _matches(expected: str, digest: bytes) -> bool:
    """A given sha256, in hex or base64, against the contents' digest."""
    if expected.lower() == digest.hex():
        return True
    try:
        return base64.b64decode(expected, validate=True) == digest
    except (binascii.Error, ValueError):
        return False


def store_file(
    backend: Backend, data: Any, content_type: str | None = None, sha256: str | None = None,
    txn: Transaction | None = None,
) -> str:
    """Store bytes as a new file (in ``txn``, or its own transaction); returns its ``_storage`` id."""
    raw = _bytes_of(data)
    digest = hashlib.sha256(raw).digest()
    if sha256 is not None and not _matches(str(sha256), digest):
        raise DatabaseError(f"storage.store(): the contents' sha256 is {digest.hex()}, not the {sha256!r} given")
    if content_type is not None and not isinstance(content_type, str):
        raise DatabaseError(f"storage.store(): content_type must be a string, got {content_type!r}")
    doc: dict[str, Any] = {"sha256": digest.hex(), "size": float(len(raw))}
    if content_type:
        doc["contentType"] = content_type
    if txn is not None:
        return _put(backend, txn, doc, raw)
    with backend.database.write() as write:
        return _put(backend, write, doc, raw)


def _put(backend: Backend, txn: Transaction, doc: dict, raw: bytes) -> str:
    storage_id = txn.insert_system(STORAGE_TABLE, doc)
    txn.put_file(storage_id, raw)
    return storage_id


class StorageReader:
    """``ctx.storage`` in queries: ``get_url``."""

    def __init__(self, backend: Backend, txn: Transaction) -> None:
        self._backend = backend
        self._txn = txn

    def get_url(self, storage_id: Any) -> str | None:
        """A URL serving the file, or None if there is no such file (a read: live)."""
        _check_id(self._txn, storage_id, "get_url")
        if self._txn.get(storage_id) is None:
            return None
        return f"{self._backend.site_url}/api/storage/{storage_id}"


class StorageWriter(StorageReader):
    """``ctx.storage`` in mutations: adds ``generate_upload_url`` and ``delete``."""

    def _actions_only(self, op: str) -> Any:
        raise DatabaseError(
            f"storage.{op}() is available in actions only (as in Convex): a mutation can hand out "
            "generate_upload_url() or schedule an action"
        )

    def store(self, *args: Any, **kwargs: Any) -> str:
        return self._actions_only("store")

    def get(self, *args: Any, **kwargs: Any) -> bytes | None:
        return self._actions_only("get")

    def get_metadata(self, *args: Any, **kwargs: Any) -> dict | None:
        return self._actions_only("get_metadata")

    def generate_upload_url(self) -> str:
        return _upload_url(self._backend)

    def delete(self, storage_id: Any) -> None:
        """Delete the file and its ``_storage`` document, with this mutation's transaction."""
        _check_id(self._txn, storage_id, "delete")
        if self._txn.get(storage_id) is None:
            raise DatabaseError(f"storage.delete(): no file {storage_id!r}")
        self._txn.delete(storage_id)
        self._txn.delete_file(storage_id)


class InlineStorage(StorageWriter):
    """``ctx.storage`` in ``app.run(lambda ctx: ...)``: a mutation's, plus ``store``, ``get`` and
    ``get_metadata`` inside the same transaction (convex-test's ``t.run`` can use file storage;
    Convex's own mutations cannot store or read bytes)."""

    def store(self, data: Any, content_type: str | None = None, sha256: str | None = None) -> str:  # type: ignore[override]
        return store_file(self._backend, data, content_type, sha256, txn=self._txn)

    def get(self, storage_id: Any) -> bytes | None:  # type: ignore[override]
        _check_id(self._txn, storage_id, "get")
        if self._txn.get(storage_id) is None:
            return None
        return self._txn.get_file(storage_id)

    def get_metadata(self, storage_id: Any) -> dict | None:  # type: ignore[override]
        _check_id(self._txn, storage_id, "get_metadata")
        doc = self._txn.get(storage_id)
        if doc is None:
            return None
        return {"storageId": storage_id, "sha256": doc["sha256"], "size": doc["size"],
                "contentType": doc.get("contentType")}


class ActionStorage:
    """``ctx.storage`` in actions: each call is its own transaction."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend

    def store(self, data: Any, content_type: str | None = None, sha256: str | None = None) -> str:
        """Store ``data`` (bytes, a binary file object or a Path); returns the storage id.
        ``sha256`` (hex or base64), when given, must match the contents."""
        return store_file(self._backend, data, content_type, sha256)

    def get(self, storage_id: Any) -> bytes | None:
        db = self._backend.database
        with db.read() as txn:
            _check_id(txn, storage_id, "get")
            if txn.get(storage_id) is None:
                return None
            return txn.get_file(storage_id)

    def get_url(self, storage_id: Any) -> str | None:
        with self._backend.database.read() as txn:
            return StorageReader(self._backend, txn).get_url(storage_id)

    def get_metadata(self, storage_id: Any) -> dict | None:
        """``{"storageId", "sha256", "size", "contentType"}`` (Convex's deprecated getMetadata)."""
        with self._backend.database.read() as txn:
            _check_id(txn, storage_id, "get_metadata")
            doc = txn.get(storage_id)
        if doc is None:
            return None
        return {"storageId": storage_id, "sha256": doc["sha256"], "size": doc["size"],
                "contentType": doc.get("contentType")}

    def delete(self, storage_id: Any) -> None:
        with self._backend.database.write() as txn:
            StorageWriter(self._backend, txn).delete(storage_id)

    def generate_upload_url(self) -> str:
        return _upload_url(self._backend)


def _upload_url(backend: Backend) -> str:
    """A one-use URL to POST a file to, valid for an hour."""
    token = secrets.token_urlsafe(24)
    now = time.monotonic()
    tokens = backend.upload_tokens
    for old in [t for t, expiry in tokens.items() if expiry < now]:
        tokens.pop(old, None)
    tokens[token] = now + UPLOAD_URL_TTL_S
    return f"{backend.site_url}/api/storage/upload?token={token}"


def take_upload_token(backend: Backend, token: str) -> bool:
    """Use up an upload token: True if it was valid."""
    expiry = backend.upload_tokens.pop(token, None)
    return expiry is not None and expiry >= time.monotonic()
