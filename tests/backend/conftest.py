"""Fixtures for the function layer: a quiet in-memory backend on a virtual clock."""

from __future__ import annotations

import pytest

import convex_notebook as cn


@pytest.fixture
def app():
    backend = cn.Backend(clock=cn.VirtualClock(), echo_logs=False)
    yield backend
    backend.close()
