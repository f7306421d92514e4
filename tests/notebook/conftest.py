"""Fixtures of the notebook-layer tests: a recording comm, a manual bridge, an IPython shell."""

from __future__ import annotations

from typing import Any

import comm
import pytest
from comm.base_comm import BaseComm

import convex_notebook as cn
from convex_notebook.notebook import bridge as bridge_module
from convex_notebook.notebook import widgets as widgets_module


class RecordingComm(BaseComm):
    """A comm that keeps every message the kernel side would send to the front end."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.sent: list[tuple[str, dict | None]] = []
        super().__init__(*args, **kwargs)

    def publish_msg(self, msg_type: str, data: Any = None, metadata: Any = None, buffers: Any = None, **keys: Any) -> None:
        self.sent.append((msg_type, data))

    def updates(self) -> list[dict]:
        """The ``state`` of every ``update`` message, in order."""
        return [d["state"] for t, d in self.sent if t == "comm_msg" and d and d.get("method") == "update"]


@pytest.fixture
def recording_comm(monkeypatch: pytest.MonkeyPatch) -> type[RecordingComm]:
    monkeypatch.setattr(comm, "create_comm", lambda *a, **kw: RecordingComm(*a, **kw))
    return RecordingComm


@pytest.fixture
def bridge() -> Any:
    """A manual bridge (no kernel loop): updates wait for ``bridge.flush()``."""
    manual = bridge_module.KernelBridge(None)
    previous = bridge_module.set_bridge(manual)
    yield manual
    bridge_module.set_bridge(previous)


@pytest.fixture(autouse=True)
def _isolate_widgets() -> Any:
    """Close widgets a test left open and forget which cell made them."""
    yield
    widgets_module.close_all()
    widgets_module._by_cell.clear()
    widgets_module._current["cell"] = None


@pytest.fixture
def app() -> Any:
    backend = cn.Backend(echo_logs=False)
    yield backend
    backend.close()


@pytest.fixture
def chat(app: Any) -> Any:
    """A small chat app: messages:list, messages:send, messages:edit."""
    from convex_notebook import v

    messages = app.module("messages")

    @messages.query(args={"channel": v.optional(v.string())})
    def list(ctx: Any, channel: str = "general") -> Any:
        return [m for m in ctx.db.query("messages").collect() if m.get("channel", "general") == channel]

    @messages.mutation(args={"body": v.string(), "channel": v.optional(v.string())})
    def send(ctx: Any, body: str, channel: str = "general") -> Any:
        return ctx.db.insert("messages", {"body": body, "channel": channel})

    @messages.mutation(args={"id": v.id("messages"), "body": v.string()})
    def edit(ctx: Any, id: str, body: str) -> None:
        ctx.db.patch(id, {"body": body})

    return app


@pytest.fixture
def shell(bridge: Any) -> Any:
    """An IPython shell with the extension loaded and fresh magics state."""
    from IPython.testing.globalipapp import get_ipython

    from convex_notebook.notebook import magics as magics_module

    ip = get_ipython()
    shown: list[list[str]] = []
    import re

    ansi = re.compile(r"\x1b\[[0-9;]*m")
    ip._showtraceback = lambda etype, evalue, stb: shown.append([ansi.sub("", line) for line in stb])  # type: ignore[method-assign]
    magics_module.unload_ipython_extension(ip)
    ip.config.pop("ConvexMagics", None)  # %config of an earlier test
    magics_module.load_ipython_extension(ip)  # a fresh ConvexMagics (what %load_ext does)
    magics = magics_module.current_magics(ip)
    ip.tracebacks = shown  # type: ignore[attr-defined]
    yield ip
    from convex_notebook.notebook.tracebacks import show_full_tracebacks

    show_full_tracebacks(False)  # %convex debug on of a test
    if magics is not None and magics.app is not None:
        magics.app.close()
    for name in [k for k in ip.user_ns if not k.startswith("_") and k not in ("In", "Out", "exit", "quit", "get_ipython")]:
        ip.user_ns.pop(name, None)
