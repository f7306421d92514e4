"""A real ipykernel (through jupyter_client): background mutations reach the widget's comm.

This is what the browser sees: ``comm_msg`` updates on iopub for the LiveQuery's comm,
produced by the bridge on the kernel's loop whoever made the change.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

SETUP = """
import threading, asyncio, time
import convex_notebook as cn
from convex_notebook import v
app = cn.Backend(echo_logs=False)

@app.query
def messages(ctx):
    return ctx.db.query("messages").collect()

@app.mutation(args={"body": v.string()})
def send(ctx, body):
    return ctx.db.insert("messages", {"body": body})

lq = app.live("messages")
lq
"""


class Kernel:
    def __init__(self) -> None:
        from jupyter_client.manager import start_new_kernel

        self.km, self.kc = start_new_kernel(kernel_name="python3", startup_timeout=60)
        self.iopub: list[dict] = []

    def execute(self, code: str, timeout: float = 60) -> list[dict]:
        """Run a cell; returns every iopub message up to its idle status (kept in self.iopub)."""
        msg_id = self.kc.execute(code)
        seen: list[dict] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                msg = self.kc.get_iopub_msg(timeout=1)
            except Exception:  # queue.Empty
                continue
            self.iopub.append(msg)
            seen.append(msg)
            if msg["msg_type"] == "error" and msg["parent_header"].get("msg_id") == msg_id:
                raise AssertionError("cell failed: " + "\n".join(msg["content"]["traceback"]))
            if (
                msg["msg_type"] == "status"
                and msg["content"]["execution_state"] == "idle"
                and msg["parent_header"].get("msg_id") == msg_id
            ):
                return seen
        raise AssertionError(f"cell did not finish within {timeout}s: {code[:80]}")

    def drain_until(self, predicate: Any, timeout: float = 60) -> dict:
        """Read iopub (between cells: the kernel is idle) until a message matches."""
        for msg in self.iopub:
            if predicate(msg):
                return msg
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                msg = self.kc.get_iopub_msg(timeout=1)
            except Exception:
                continue
            self.iopub.append(msg)
            if predicate(msg):
                return msg
        raise AssertionError("expected message never arrived")

    def text(self, code: str) -> str:
        out = []
        for msg in self.execute(code):
            if msg["msg_type"] == "stream":
                out.append(msg["content"]["text"])
            elif msg["msg_type"] == "execute_result":
                out.append(msg["content"]["data"]["text/plain"])
        return "".join(out)

    def close(self) -> None:
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)


@pytest.fixture(scope="module")
def kernel() -> Any:
    k = Kernel()
    yield k
    k.close()


def updates_for(messages: list[dict], comm_id: str) -> list[dict]:
    return [
        m["content"]["data"]["state"]
        for m in messages
        if m["msg_type"] == "comm_msg"
        and m["content"]["comm_id"] == comm_id
        and m["content"]["data"].get("method") == "update"
    ]


def test_widget_opens_complete(kernel: Kernel) -> None:
    messages = kernel.execute(SETUP)
    opened = [m for m in messages if m["msg_type"] == "comm_open"]
    live = [m for m in opened if m["content"]["data"]["state"].get("_title") == "messages"]
    assert len(live) == 1
    state = live[0]["content"]["data"]["state"]
    assert state["_status"] == "live" and state["_rows"] == [] and state["_total"] == 0
    shown = [m for m in messages if m["msg_type"] == "execute_result"]
    assert shown[0]["content"]["data"]["text/plain"] == "LiveQuery('messages', rows=0, status='live')"
    assert "application/vnd.jupyter.widget-view+json" in shown[0]["content"]["data"]


def test_background_thread_updates_reach_the_front_end_after_the_cell(kernel: Kernel) -> None:
    comm_id = kernel.text("print(lq.model_id)").strip()
    # The cell starts a writer thread and returns at once: the kernel is idle while it writes.
    kernel.execute(
        "def writer():\n"
        "    for i in range(5):\n"
        "        app.mutation('send', {'body': f'bg{i}'})\n"
        "        time.sleep(0.02)\n"
        "threading.Thread(target=writer).start()\n"
    )
    final = kernel.drain_until(
        lambda m: m["msg_type"] == "comm_msg"
        and m["content"]["comm_id"] == comm_id
        and m["content"]["data"].get("state", {}).get("_total") == 5
    )
    rows = final["content"]["data"]["state"]["_rows"]
    assert [r["cells"][1] for r in rows] == [f"bg{i}" for i in range(5)]
    updates = updates_for(kernel.iopub, comm_id)
    assert 1 <= len(updates) <= 5  # coalesced: never more renders than changes
    # every update is one whole render (hold_sync): rows, total and seq travel together
    assert all({"_rows", "_total", "_seq"} <= set(u) for u in updates)


def test_a_later_cell_updates_the_already_rendered_widget(kernel: Kernel) -> None:
    comm_id = kernel.text("print(lq.model_id)").strip()
    kernel.execute("app.mutation('send', {'body': 'from a later cell'})")
    final = kernel.drain_until(
        lambda m: m["msg_type"] == "comm_msg"
        and m["content"]["comm_id"] == comm_id
        and m["content"]["data"].get("state", {}).get("_total") == 6
    )
    changed = final["content"]["data"]["state"]["_changed"]
    assert len(changed) == 1 and changed[0] == final["content"]["data"]["state"]["_rows"][-1]["key"]


def test_updates_render_while_a_cell_awaits(kernel: Kernel) -> None:
    out = kernel.text(
        "async def scenario():\n"
        "    threading.Thread(target=lambda: [app.mutation('send', {'body': f'aw{i}'}) for i in range(3)]).start()\n"
        "    await lq.wait_for_async(lambda rows: len(rows) == 9, timeout=30)\n"
        "    # the bridge runs on this same loop: while we await, it brings the widget up to date\n"
        "    for _ in range(3000):\n"
        "        if lq._total == 9:\n"
        "            return 'rendered while awaiting'\n"
        "        await asyncio.sleep(0.01)\n"
        "    return 'not rendered'\n"
        "print(await scenario())\n"
    )
    assert out.strip() == "rendered while awaiting"


def test_bridge_is_bound_to_the_kernel_loop(kernel: Kernel) -> None:
    out = kernel.text(
        "from convex_notebook.notebook.bridge import get_bridge\n"
        "b = get_bridge()\n"
        "print(b.loop is get_ipython().kernel.io_loop.asyncio_loop, b.stats.posts >= b.stats.applied)\n"
    )
    assert out.strip() == "True True"


def test_dashboard_follows_commits_from_a_thread(kernel: Kernel) -> None:
    comm_id = kernel.text("d = cn.Dashboard(app)\nprint(d.model_id)").strip()
    kernel.execute("threading.Thread(target=lambda: app.mutation('send', {'body': 'dash'})).start()")
    final = kernel.drain_until(
        lambda m: m["msg_type"] == "comm_msg"
        and m["content"]["comm_id"] == comm_id
        and any(t.get("count") == 10 for t in m["content"]["data"].get("state", {}).get("_tables", []))
    )
    assert final["content"]["data"]["state"]["_tables"] == [{"name": "messages", "count": 10}]


def _execute_in_cell(kernel: Kernel, code: str, cell_id: str) -> None:
    """An execute_request carrying JupyterLab's cellId metadata."""
    msg = kernel.kc.session.msg(
        "execute_request",
        {"code": code, "silent": False, "store_history": True, "user_expressions": {}, "allow_stdin": False,
         "stop_on_error": True},
        metadata={"cellId": cell_id},
    )
    kernel.kc.shell_channel.send(msg)
    kernel.drain_until(
        lambda m: m["msg_type"] == "status"
        and m["content"]["execution_state"] == "idle"
        and m["parent_header"].get("msg_id") == msg["header"]["msg_id"]
    )


def test_rerunning_a_cell_closes_its_widget(kernel: Kernel) -> None:
    kernel.execute("before = app.subscription_hub.subscription_count")
    _execute_in_cell(kernel, "w = app.live('messages')\nfirst = w", "cell-abc")
    _execute_in_cell(kernel, "w = app.live('messages')", "cell-abc")
    out = kernel.text("print(first.closed, w.closed, app.subscription_hub.subscription_count - before)")
    assert out.strip() == "True False 1"
