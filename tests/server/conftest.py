"""Fixtures of the server tests: a real uvicorn server on a free port, in this process."""

from __future__ import annotations

from typing import Any, Iterator

import pytest

import convex_notebook as cn

from server_helpers import make_app


@pytest.fixture
def app() -> Iterator[cn.Backend]:
    backend = make_app()
    yield backend
    backend.close()


@pytest.fixture
def server(app: cn.Backend) -> Iterator[Any]:
    handle = app.serve(port=0, block=False, print_admin_key=False, ping_interval=0.5)
    yield handle
    handle.stop()
