"""The notebook layer: magics, live widgets, dashboard, rich display (IPython lives here only).

Modules import IPython/anywidget when used, so ``import convex_notebook`` stays light:

* ``magics``: ``%load_ext convex_notebook``, ``%convex``, ``%%convex_schema``,
  ``%%convex_module``, ``%%convex_query``;
* ``widgets``: ``LiveQuery`` (``app.live(...)``); ``bridge``: the one path from subscription
  threads into the kernel's loop; ``dashboard``: ``cn.Dashboard(app)``;
* ``display``: tables, results and errors as rich display objects.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Dashboard", "LiveQuery", "load_ipython_extension", "unload_ipython_extension"]


def __getattr__(name: str) -> Any:
    if name == "LiveQuery":
        from .widgets import LiveQuery

        return LiveQuery
    if name == "Dashboard":
        from .dashboard import Dashboard

        return Dashboard
    if name in ("load_ipython_extension", "unload_ipython_extension"):
        from . import magics

        return getattr(magics, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
