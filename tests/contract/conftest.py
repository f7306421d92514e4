"""Fixtures of the contract suite: every test runs on an embedded ``Backend`` and on a remote
client of the same kind of backend served in this process (``backend/contract.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import comm
import pytest
from comm.base_comm import BaseComm

import convex_notebook as cn
from convex_notebook import v


class _SilentComm(BaseComm):
    """A comm with no front end (widgets made by ``app.live`` send nowhere)."""

    def publish_msg(self, msg_type: str, data: Any = None, metadata: Any = None, buffers: Any = None, **keys: Any) -> None:
        pass


def make_backend() -> cn.Backend:
    """The functions every contract test calls (defined where they run: on the backend)."""
    app = cn.Backend(echo_logs=False)
    notes = app.module("notes")

    @notes.query
    def list(ctx: Any) -> Any:
        return ctx.db.query("notes").collect()

    @notes.query(args={"text": v.string()})
    def by_text(ctx: Any, text: str) -> Any:
        return [n for n in ctx.db.query("notes").collect() if n["text"] == text]

    @notes.mutation(args={"text": v.string(), "stars": v.optional(v.float64())})
    def add(ctx: Any, text: str, stars: float | None = None) -> Any:
        print("adding", text)
        return ctx.db.insert("notes", {"text": text} if stars is None else {"text": text, "stars": stars})

    @notes.action
    def shout(ctx: Any, text: str) -> str:
        return text.upper()

    @notes.internal_mutation
    def purge(ctx: Any) -> int:
        docs = ctx.db.query("notes").collect()
        for d in docs:
            ctx.db.delete(d["_id"])
        return len(docs)

    @notes.query
    def whoami(ctx: Any) -> Any:
        identity = ctx.auth.get_user_identity()
        return None if identity is None else identity["subject"]

    @notes.mutation
    def later(ctx: Any, text: str) -> Any:
        return ctx.scheduler.run_after(60_000, "notes:add", {"text": text})

    @notes.action
    def upload(ctx: Any, data: bytes) -> Any:
        return ctx.storage.store(data)

    return app


@pytest.fixture(params=["embedded", "remote"])
def pair(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[cn.Backend, Any]]:
    """``(backend, deployment)``: the backend that runs the functions, and the deployment under
    test: the backend itself, or a remote client (with the admin key) of it served here."""
    monkeypatch.setattr(comm, "create_comm", lambda *a, **kw: _SilentComm(*a, **kw))
    backend = make_backend()
    if request.param == "embedded":
        yield backend, backend
        backend.close()
        return
    handle = backend.serve(port=0, block=False, print_admin_key=False, ping_interval=0.5)
    client = cn.connect(handle.url, admin_key=handle.admin_key)
    try:
        yield backend, client
    finally:
        client.close()
        handle.stop()
        backend.close()


@pytest.fixture
def app(pair: tuple[cn.Backend, Any]) -> Any:
    """The deployment under test."""
    return pair[1]


@pytest.fixture
def backend(pair: tuple[cn.Backend, Any]) -> cn.Backend:
    """The backend behind it (the same object when embedded)."""
    return pair[0]
