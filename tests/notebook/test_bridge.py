"""KernelBridge: thread-safe posting, coalescing, throttling, delivery on the loop's thread."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from convex_notebook.notebook.bridge import KernelBridge, get_bridge, set_bridge


class Target:
    def __init__(self) -> None:
        self.applied: list[str] = []

    def _apply_update(self) -> None:
        self.applied.append(threading.current_thread().name)


class FakeLoop:
    """Records what the bridge asks of the loop; runs it only when told."""

    def __init__(self) -> None:
        self.soon: list[Any] = []
        self.later: list[tuple[float, Any]] = []

    def call_soon_threadsafe(self, fn: Any, *args: Any) -> None:
        self.soon.append(lambda: fn(*args))

    def call_later(self, delay: float, fn: Any, *args: Any) -> None:
        self.later.append((delay, lambda: fn(*args)))

    def is_closed(self) -> bool:
        return False

    def run_soon(self) -> None:
        calls, self.soon = self.soon, []
        for call in calls:
            call()


def test_manual_mode_waits_for_flush() -> None:
    bridge = KernelBridge(None)
    target = Target()
    bridge.post(target)
    bridge.post(target)
    assert target.applied == [] and bridge.pending == 1
    assert bridge.flush() == 1
    assert len(target.applied) == 1
    assert bridge.stats.snapshot() == {"posts": 2, "flushes": 1, "applied": 1}


def test_posts_from_many_threads_wake_the_loop_once() -> None:
    loop = FakeLoop()
    bridge = KernelBridge(loop)  # type: ignore[arg-type]
    targets = [Target() for _ in range(4)]
    threads = [threading.Thread(target=lambda t=t: [bridge.post(t) for _ in range(100)]) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(loop.soon) == 1  # one wake-up for 400 posts
    loop.run_soon()  # first flush: nothing flushed before, so it runs at once
    assert [len(t.applied) for t in targets] == [1, 1, 1, 1]
    assert bridge.stats.posts == 400 and bridge.stats.applied == 4


def test_throttle_defers_the_next_flush() -> None:
    loop = FakeLoop()
    bridge = KernelBridge(loop, throttle_hz=10)  # type: ignore[arg-type]
    target = Target()
    bridge.post(target)
    loop.run_soon()
    assert len(target.applied) == 1 and loop.later == []
    bridge.post(target)
    bridge.post(target)
    loop.run_soon()  # right after a flush: scheduled for later, not run now
    assert len(target.applied) == 1
    (delay, flush), = loop.later
    assert 0 < delay <= 0.1
    flush()
    assert len(target.applied) == 2
    bridge.post(target)  # after the deferred flush the bridge arms again
    assert len(loop.soon) == 1


def test_unthrottled_bridge_flushes_immediately() -> None:
    loop = FakeLoop()
    bridge = KernelBridge(loop, throttle_hz=0)  # type: ignore[arg-type]
    target = Target()
    for _ in range(3):
        bridge.post(target)
        loop.run_soon()
    assert len(target.applied) == 3 and loop.later == []


def test_discard_and_dead_targets() -> None:
    bridge = KernelBridge(None)
    keep, drop = Target(), Target()
    bridge.post(keep)
    bridge.post(drop)
    bridge.discard(drop)
    gone = Target()
    bridge.post(gone)
    del gone  # weakly held: a collected widget is skipped
    import gc

    gc.collect()
    assert bridge.flush() == 1
    assert len(keep.applied) == 1 and drop.applied == []


def test_a_failing_target_does_not_stop_the_others(capsys: pytest.CaptureFixture[str]) -> None:
    class Broken:
        def _apply_update(self) -> None:
            raise RuntimeError("boom")

    bridge = KernelBridge(None)
    broken, fine = Broken(), Target()
    bridge.post(broken)
    bridge.post(fine)
    bridge.flush()
    assert len(fine.applied) == 1
    assert "boom" in capsys.readouterr().err


def test_real_loop_applies_on_the_loop_thread() -> None:
    """A loop on its own thread stands in for the kernel's: updates land on that thread."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="fake-kernel-loop", daemon=True)
    thread.start()
    try:
        bridge = KernelBridge(loop, throttle_hz=50)
        target = Target()
        done = threading.Event()

        class Signalling(Target):
            def _apply_update(self) -> None:
                super()._apply_update()
                if len(self.applied) >= 1:
                    done.set()

        signalling = Signalling()
        writers = [threading.Thread(target=lambda: [bridge.post(signalling) or bridge.post(target) for _ in range(50)])
                   for _ in range(3)]
        for w in writers:
            w.start()
        for w in writers:
            w.join()
        assert done.wait(10)
        asyncio.run_coroutine_threadsafe(asyncio.sleep(0.2), loop).result(10)
        # every application happened on the loop's thread, never on a writer thread
        assert set(signalling.applied) == {"fake-kernel-loop"}
        assert set(target.applied) == {"fake-kernel-loop"}
        assert 1 <= len(target.applied) <= 150
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


def test_a_closed_loop_does_not_raise() -> None:
    loop = asyncio.new_event_loop()
    loop.close()
    bridge = KernelBridge(loop)
    bridge.post(Target())  # must not raise from a subscription callback


def test_process_bridge_is_manual_outside_a_kernel() -> None:
    previous = set_bridge(None)
    try:
        assert get_bridge().loop is None
        assert get_bridge() is get_bridge()
    finally:
        set_bridge(previous)
