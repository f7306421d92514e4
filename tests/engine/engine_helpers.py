"""Helpers shared by the engine suites."""

from __future__ import annotations

import re
from typing import Any, Callable

import pytest

import convex_notebook as cn


def fails(app: cn.Backend, fn: Callable[[Any], Any], phrase: str) -> BaseException:
    """Run ``fn(ctx)`` as an inline mutation; assert it fails with ``phrase`` (a literal
    substring) in the message, and return the exception."""
    with pytest.raises((cn.ConvexFunctionError, cn.ConvexError, cn.InvalidValueError)) as info:
        app.run(fn)
    assert re.search(re.escape(phrase), str(info.value)), f"{phrase!r} not in {str(info.value)!r}"
    return info.value


def all_docs(app: cn.Backend, table: str) -> list[dict]:
    return app.run(lambda ctx: ctx.db.query(table).collect())
