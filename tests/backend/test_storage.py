"""File storage: ctx.storage by context, the _storage system table, atomic deletes, sha256
checks, and clear errors."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any

import pytest

import convex_notebook as cn


@pytest.fixture
def app() -> Any:
    backend = cn.Backend(echo_logs=False)

    @backend.action
    def save(ctx: Any, text: str, content_type: str | None = None) -> str:
        return ctx.storage.store(text.encode(), content_type=content_type)

    @backend.action
    def read(ctx: Any, sid: str) -> Any:
        return ctx.storage.get(sid)

    @backend.query
    def url(ctx: Any, sid: str) -> Any:
        return ctx.storage.get_url(sid)

    @backend.query
    def files(ctx: Any) -> Any:
        return ctx.db.system.query("_storage").collect()

    @backend.mutation
    def remove(ctx: Any, sid: str, then_fail: bool = False) -> None:
        ctx.storage.delete(sid)
        if then_fail:
            raise cn.ConvexError("undo")

    yield backend
    backend.close()


def test_store_get_url_and_the_system_table(app: cn.Backend) -> None:
    sid = app.action("save", {"text": "hello", "content_type": "text/plain"})
    assert app.action("read", {"sid": sid}) == b"hello"
    assert app.query("url", {"sid": sid}) == f"{app.site_url}/api/storage/{sid}"
    [doc] = app.query("files")
    assert doc["_id"] == sid and doc["size"] == 5.0 and doc["contentType"] == "text/plain"
    assert doc["sha256"] == hashlib.sha256(b"hello").hexdigest()
    assert app.run(lambda ctx: ctx.db.system.get("_storage", sid))["size"] == 5.0
    assert app.table_names() == []  # a system table, not a user one


def test_get_metadata_and_sources(app: cn.Backend, tmp_path: Path) -> None:
    path = tmp_path / "data.bin"
    path.write_bytes(b"\x00\x01\x02")

    @app.action
    def sources(ctx: Any) -> Any:
        a = ctx.storage.store(path)
        b = ctx.storage.store(io.BytesIO(b"stream"))
        c = ctx.storage.store(b"checked", sha256=hashlib.sha256(b"checked").hexdigest())
        return [ctx.storage.get(x) for x in (a, b, c)], ctx.storage.get_metadata(a)

    contents, meta = app.action("sources")
    assert contents == [b"\x00\x01\x02", b"stream", b"checked"]
    assert meta["size"] == 3.0 and meta["contentType"] is None and set(meta) == {"storageId", "sha256", "size", "contentType"}


def test_delete_is_part_of_the_mutation(app: cn.Backend) -> None:
    sid = app.action("save", {"text": "keep me"})
    with pytest.raises(cn.ConvexError):
        app.mutation("remove", {"sid": sid, "then_fail": True})
    assert app.action("read", {"sid": sid}) == b"keep me"  # rolled back with the mutation
    app.mutation("remove", {"sid": sid})
    assert app.action("read", {"sid": sid}) is None and app.query("url", {"sid": sid}) is None
    assert app.query("files") == []


def test_get_url_is_live(app: cn.Backend) -> None:
    sid = app.action("save", {"text": "x"})
    sub = app.subscribe("url", {"sid": sid})
    assert sub.value is not None
    app.mutation("remove", {"sid": sid})
    assert sub.value is None
    sub.unsubscribe()


@pytest.mark.parametrize("body, message", [
    (lambda ctx: ctx.storage.store("text, not bytes"), "takes bytes"),
    (lambda ctx: ctx.storage.store(b"x", sha256="0" * 64), "sha256"),
    (lambda ctx: ctx.storage.get("not an id"), "storage id"),
    (lambda ctx: ctx.storage.store(b"x", content_type=5), "content_type"),
])
def test_bad_calls_are_clear_errors_and_store_nothing(app: cn.Backend, body: Any, message: str) -> None:
    @app.action
    def bad(ctx: Any) -> Any:
        return body(ctx)

    with pytest.raises(cn.ConvexFunctionError, match=message):
        app.action("bad")
    assert app.query("files") == []


def test_what_each_context_offers(app: cn.Backend) -> None:
    sid = app.action("save", {"text": "x"})
    # Mutations cannot store or read bytes: that is for actions (and for app.run, below).
    for op in ("store", "get"):
        @app.mutation(name=f"bytes_{op}")
        def in_mutation(ctx: Any, op: str = op) -> Any:
            return ctx.storage.store(b"x") if op == "store" else ctx.storage.get(sid)

        with pytest.raises(cn.ConvexFunctionError, match="in actions only"):
            app.mutation(f"bytes_{op}")
    assert app.run(lambda ctx: ctx.storage.generate_upload_url()).startswith(f"{app.site_url}/api/storage/upload?token=")
    with pytest.raises(cn.ConvexFunctionError, match="storage id"):
        app.run(lambda ctx: ctx.storage.delete("x"))
    app.run(lambda ctx: ctx.storage.delete(sid))
    assert app.query("files") == []
