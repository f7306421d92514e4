"""Snapshots with file storage (--include-file-storage): the files travel with their ids, and
references to them stay valid even when the snapshot numbered its _storage table otherwise."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any

import pytest

import convex_notebook as cn
from convex_notebook.io import ImportFileError
from convex_notebook.values import decode_id, encode_id


def backend_with_a_file() -> tuple[cn.Backend, str]:
    app = cn.Backend(echo_logs=False)

    @app.action
    def save(ctx: Any, text: str) -> str:
        return ctx.storage.store(text.encode(), content_type="text/plain")

    storage_id = app.action("save", {"text": "hello file"})
    app.run(lambda ctx: ctx.db.insert("photos", {"file": storage_id, "title": "one"}))
    return app, storage_id


def read_file(app: cn.Backend, storage_id: str) -> Any:
    @app.action
    def read(ctx: Any, sid: str) -> Any:
        return ctx.storage.get(sid)

    return app.action("read", {"sid": storage_id})


def test_export_and_import_with_files(tmp_path: Path) -> None:
    app, storage_id = backend_with_a_file()
    plain = app.export_snapshot(tmp_path / "plain.zip")
    assert not any(n.startswith("_storage/") for n in zipfile.ZipFile(plain).namelist())
    full = app.export_snapshot(tmp_path / "full.zip", include_file_storage=True)
    assert {f"_storage/{storage_id}", "_storage/documents.jsonl"} <= set(zipfile.ZipFile(full).namelist())
    copy = cn.Backend(echo_logs=False)
    assert copy.import_snapshot(full) == {"photos": 1, "_storage": 1}
    assert read_file(copy, storage_id) == b"hello file"
    assert copy.run(lambda ctx: ctx.db.system.get(storage_id)) == app.run(lambda ctx: ctx.db.system.get(storage_id))
    with pytest.raises(ImportFileError, match="already exists"):  # insert: the file is there already
        copy.import_snapshot(full, mode="append")
    assert copy.import_snapshot(full, mode="replace") == {"photos": 1, "_storage": 1}
    assert copy.run(lambda ctx: len(ctx.db.system.query("_storage").collect())) == 1
    app.close()
    copy.close()


def test_storage_ids_are_renumbered_with_their_references(tmp_path: Path) -> None:
    """A snapshot whose _storage table has another number (as another deployment's may)."""
    app, storage_id = backend_with_a_file()
    full = app.export_snapshot(tmp_path / "full.zip", include_file_storage=True)
    number, internal = decode_id(storage_id)
    theirs = encode_id(77, internal)
    out = tmp_path / "theirs.zip"
    with zipfile.ZipFile(full) as src, zipfile.ZipFile(out, "w") as dst:
        for name in src.namelist():
            data = src.read(name)
            if name.endswith(".jsonl"):
                data = data.replace(storage_id.encode(), theirs.encode())
            dst.writestr(name.replace(storage_id, theirs), data)
    copy = cn.Backend(echo_logs=False)
    copy.import_snapshot(out)
    ref = copy.run(lambda ctx: ctx.db.query("photos").first()["file"])
    assert decode_id(ref) == (number, internal) and read_file(copy, ref) == b"hello file"
    app.close()
    copy.close()


def test_a_missing_file_refuses_the_whole_import(tmp_path: Path) -> None:
    app, storage_id = backend_with_a_file()
    full = app.export_snapshot(tmp_path / "full.zip", include_file_storage=True)
    broken = tmp_path / "broken.zip"
    with zipfile.ZipFile(full) as src, zipfile.ZipFile(broken, "w") as dst:
        for name in src.namelist():
            if name != f"_storage/{storage_id}":
                dst.writestr(name, src.read(name))
    copy = cn.Backend(echo_logs=False)
    with pytest.raises(ImportFileError, match="missing from the snapshot"):
        copy.import_snapshot(broken)
    assert copy.table_names() == [] and copy.run(lambda ctx: ctx.db.system.query("_storage").collect()) == []
    app.close()
    copy.close()


@pytest.mark.parametrize("entry", ["_storage/documents.jsonl", "_tables/documents.jsonl"])
def test_bytes_that_are_not_utf8_in_a_listing_are_refused_not_replaced(tmp_path: Path, entry: str) -> None:
    # (they were decoded with errors="replace": a content type or table name read as '\ufffd')
    app, _ = backend_with_a_file()
    full = app.export_snapshot(tmp_path / "full.zip", include_file_storage=True)
    broken = tmp_path / "broken.zip"
    with zipfile.ZipFile(full) as src, zipfile.ZipFile(broken, "w") as dst:
        for name in src.namelist():
            data = src.read(name)
            dst.writestr(name, data.replace(b"text/plain", b"text/\xff") + b'{"name": "x\xff", "id": 10009}\n'
                         if name == entry else data)
    copy = cn.Backend(echo_logs=False)
    with pytest.raises(ImportFileError, match=rf"{entry}, line \d: not UTF-8"):
        copy.import_snapshot(broken)
    assert copy.table_names() == [] and copy.run(lambda ctx: ctx.db.system.query("_storage").collect()) == []
    app.close()
    copy.close()
