"""``ctx.scheduler`` / ``ctx.storage`` in ``async def`` actions: calls that return awaitables.

In Convex every ``ctx`` call returns a Promise that is already running:
``await ctx.scheduler.runAfter(...)``. Here, in an ``async def`` action, each call of these
objects starts at once (on a worker thread, so the event loop stays free) and returns an
``asyncio.Task`` to await for its result:

    job = await ctx.scheduler.run_after(0, "m:f", {})
    data = await ctx.storage.get(storage_id)

As with a Promise, a call that is never awaited still runs (its errors are then lost: await
it). In a plain ``def`` action the same calls return their results directly.
"""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["AsyncFriendly"]


class AsyncFriendly:
    """A proxy whose method calls run in a thread and return a started ``asyncio.Task``."""

    __slots__ = ("_target",)

    def __init__(self, target: Any) -> None:
        self._target = target

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._target, name)
        if not callable(attr) or name.startswith("_"):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                asyncio.get_running_loop()
            except RuntimeError:  # not on the action's event loop (a helper thread): plain call
                return attr(*args, **kwargs)
            return asyncio.ensure_future(asyncio.to_thread(attr, *args, **kwargs))

        call.__name__ = name
        call.__doc__ = attr.__doc__
        return call

    def __repr__(self) -> str:
        return repr(self._target)
