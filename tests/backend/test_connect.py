"""cn.connect(URL): memory:// and sqlite:/// give embedded Backends; bad URLs are clear errors."""

from __future__ import annotations

import os

import pytest

import convex_notebook as cn


@pytest.mark.parametrize("url", ["memory://", ":memory:"])
def test_memory(url):
    app = cn.connect(url)
    try:
        assert isinstance(app, cn.Backend)
        assert app.path is None

        @app.mutation
        def add(ctx):
            return ctx.db.insert("t", {})

        app.mutation("add")
        assert app.count("t") == 1
    finally:
        app.close()


def test_default_is_memory():
    app = cn.connect()
    try:
        assert isinstance(app, cn.Backend) and app.path is None
    finally:
        app.close()


def test_memory_backends_are_independent():
    a, b = cn.connect("memory://"), cn.connect("memory://")
    try:
        a.run(lambda ctx: ctx.db.insert("t", {}))
        assert a.count("t") == 1 and b.count("t") == 0
    finally:
        a.close()
        b.close()


def test_sqlite_absolute_path_persists(tmp_path):
    path = tmp_path / "app.sqlite3"
    url = f"sqlite:///{path}"  # an absolute path gives sqlite:////...
    assert url.startswith("sqlite:////")
    app = cn.connect(url, echo_logs=False)
    try:
        assert isinstance(app, cn.Backend)
        assert os.path.abspath(app.path) == str(path)
        app.run(lambda ctx: ctx.db.insert("notes", {"text": "kept"}))
    finally:
        app.close()
    assert path.exists()
    again = cn.connect(url)
    try:
        assert again.run(lambda ctx: [d["text"] for d in ctx.db.query("notes").collect()]) == ["kept"]
    finally:
        again.close()


def test_sqlite_relative_path_is_relative_to_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    app = cn.connect("sqlite:///data.sqlite3")
    try:
        app.run(lambda ctx: ctx.db.insert("t", {}))
    finally:
        app.close()
    assert (tmp_path / "data.sqlite3").exists()


def test_sqlite_url_matches_backend_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    with cn.connect("sqlite:///sub/x.sqlite3") as app:
        app.run(lambda ctx: ctx.db.insert("t", {}))
    with cn.Backend("sub/x.sqlite3") as same:
        assert same.count("t") == 1


def test_connect_passes_backend_options():
    clock = cn.VirtualClock(start_ms=5.0)
    app = cn.connect("memory://", clock=clock, echo_logs=False)
    try:
        assert app.clock is clock
        assert app.echo_logs is False
    finally:
        app.close()


@pytest.mark.parametrize(
    "url", ["ftp://example.com", "", "memory://extra", "postgres://localhost/db", "sqlite://", "sqlite:///", "tasks.db"]
)
def test_bad_urls_raise_value_error_naming_the_url(url):
    with pytest.raises(ValueError) as info:
        cn.connect(url)
    assert repr(url) in str(info.value)


@pytest.mark.parametrize("url", [None, 3, b"memory://"])
def test_non_string_url_is_a_type_error(url):
    with pytest.raises(TypeError, match="URL"):
        cn.connect(url)  # type: ignore[arg-type]
