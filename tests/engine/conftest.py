"""Fixtures for the engine suites: quiet backends (memory or file) on a virtual clock."""

from __future__ import annotations

import pytest

import convex_notebook as cn


@pytest.fixture
def app():
    backend = cn.Backend(clock=cn.VirtualClock(), echo_logs=False)
    yield backend
    backend.close()


@pytest.fixture
def file_app(tmp_path):
    backend = cn.Backend(tmp_path / "app.sqlite3", clock=cn.VirtualClock(), echo_logs=False)
    yield backend
    backend.close()

