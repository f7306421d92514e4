"""Issue 4: live widgets. How many repaints reach the front end when the data changes fast.

A writer thread commits one message per millisecond while a ``LiveQuery`` (the latest 20
messages) is live. Its updates travel the real path: subscription callback (dispatcher
thread) → ``KernelBridge`` → an asyncio loop on the main thread standing in for the kernel's
→ trait set under ``hold_sync`` → one comm message, recorded by a comm that timestamps what
it would send to the browser. Baseline, measured in the same run: the subscription's own
``on_update`` callbacks (what a widget would get without the bridge).

g. widget updates per second (throttled to ``throttle_hz``, 20) vs callback deliveries/s;
h. lag of the last update: from the last write's commit to the comm message showing it,
   vs the same lag for the subscription callback.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

from bench._common import Result, make_result, median

GROUP = "live widgets (kernel bridge)"
THROTTLE_HZ = 20.0


def _run_once(duration: float) -> dict[str, Any]:
    import comm
    from comm.base_comm import BaseComm

    import convex_notebook as cn
    from convex_notebook import v
    from convex_notebook.notebook import bridge as bridge_module
    from convex_notebook.notebook.widgets import LiveQuery

    sent: list[tuple[float, dict]] = []

    class TimestampedComm(BaseComm):
        def publish_msg(self, msg_type: str, data: Any = None, metadata: Any = None, buffers: Any = None, **k: Any) -> None:
            if msg_type == "comm_msg" and data and data.get("method") == "update":
                sent.append((time.perf_counter(), data["state"]))

    original_create = comm.create_comm
    comm.create_comm = lambda *a, **kw: TimestampedComm(*a, **kw)
    app = cn.Backend(echo_logs=False)

    @app.query
    def latest(ctx: Any) -> Any:
        return ctx.db.query("messages").order("desc").take(20)

    @app.mutation(args={"body": v.string()})
    def send(ctx: Any, body: str) -> Any:
        return ctx.db.insert("messages", {"body": body})

    callbacks: list[tuple[float, Any]] = []

    async def scenario() -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        bridge = bridge_module.KernelBridge(loop, throttle_hz=THROTTLE_HZ)
        previous = bridge_module.set_bridge(bridge)
        try:
            widget = LiveQuery(app, "latest", bridge=bridge)
            sub = app.subscribe("latest", on_update=lambda value: callbacks.append((time.perf_counter(), value[0]["body"])))
            sent.clear()
            writes: list[float] = []

            def writer() -> None:
                start = time.perf_counter()
                i = 0
                while True:
                    due = start + i * 0.001  # one write per millisecond
                    now = time.perf_counter()
                    if due - start >= duration:
                        break
                    if due > now:
                        time.sleep(due - now)
                    app.mutation("send", {"body": f"m{i}"})
                    writes.append(time.perf_counter())
                    i += 1

            thread = threading.Thread(target=writer, name="bench-writer")
            started = time.perf_counter()
            thread.start()
            while thread.is_alive():
                await asyncio.sleep(0.005)  # the "kernel" is idle: the bridge runs freely
            last_body = f"m{len(writes) - 1}"
            deadline = time.perf_counter() + 30
            while time.perf_counter() < deadline:
                if sent and sent[-1][1].get("_rows") and sent[-1][1]["_rows"][0]["cells"][1] == last_body:
                    break
                await asyncio.sleep(0.001)
            app.wait_for_callbacks()
            ended = writes[-1]
            renders = [t for t, state in sent if "_rows" in state]
            widget_last = next(t for t, state in reversed(sent) if state.get("_rows") and state["_rows"][0]["cells"][1] == last_body)
            callback_last = next(t for t, body in reversed(callbacks) if body == last_body)
            span = ended - started
            result = {
                "writes": len(writes),
                "span": span,
                "renders": len(renders),
                "callbacks": len(callbacks),
                "widget_rate": len(renders) / span,
                "callback_rate": len(callbacks) / span,
                "write_rate": len(writes) / span,
                "widget_lag": widget_last - ended,
                "callback_lag": callback_last - ended,
                "posts": bridge.stats.posts,
                "applied": bridge.stats.applied,
            }
            widget.close()
            sub.unsubscribe()
            return result
        finally:
            bridge_module.set_bridge(previous)

    try:
        return asyncio.run(scenario())
    finally:
        comm.create_comm = original_create
        app.close()


def run(quick: bool) -> list[Result]:
    duration, repeats = (1.0, 2) if quick else (3.0, 5)
    runs = [_run_once(duration) for _ in range(repeats)]

    def med(key: str) -> float:
        return median([r[key] for r in runs])

    note_common = (
        f"median of {repeats} runs of {duration:g} s; writer: one `app.mutation` per ms from a thread "
        f"(achieved {med('write_rate'):,.0f} writes/s); LiveQuery of the latest 20 messages, bridge "
        f"throttled to {THROTTLE_HZ:g} Hz on an asyncio loop standing in for the kernel's"
    )
    return [
        make_result(
            "g. widget updates per second at one write per ms",
            med("widget_rate"), "/s", med("callback_rate"), "subscription on_update callbacks per second",
            goal=f"≤ 0.05x: throttled to ≈ {THROTTLE_HZ:g}/s whatever the write rate", check=lambda r: r <= 0.05,
            group=GROUP,
            note=(
                f"{note_common}; comm update messages counted at the comm (what the browser receives); "
                f"bridge posts {med('posts'):,.0f} → applied {med('applied'):,.0f}"
            ),
            extra={"runs": runs},
        ),
        make_result(
            "h. lag of the last widget update after the last write",
            med("widget_lag"), "s", med("callback_lag"), "the same lag for the on_update callback",
            goal=f"≤ one throttle interval ({1 / THROTTLE_HZ * 1000:.0f} ms) plus a render", group=GROUP,
            note=f"{note_common}; from the last mutation's return to the comm message showing its row",
        ),
    ]
