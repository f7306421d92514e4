"""HTTP actions: routes (exact, then longest prefix), requests and responses, the action ctx,
errors as 500s, and app.fetch without a server."""

from __future__ import annotations

from typing import Any

import pytest

import convex_notebook as cn


@pytest.fixture
def app() -> Any:
    backend = cn.Backend(echo_logs=False)

    @backend.mutation
    def send(ctx: Any, body: str) -> str:
        return ctx.db.insert("messages", {"body": body})

    @backend.query
    def count(ctx: Any) -> float:
        return float(len(ctx.db.query("messages").collect()))

    @backend.http.route(path="/messages", method="POST")
    def post_message(ctx: Any, request: cn.HttpRequest) -> cn.HttpResponse:
        message_id = ctx.run_mutation("send", {"body": request.json()["body"]})
        return cn.HttpResponse(message_id, status=201, headers={"Location": f"/messages/{message_id}"})

    @backend.http.route(path="/messages", method="GET")
    def count_messages(ctx: Any, request: cn.HttpRequest) -> dict:
        return {"count": ctx.run_query("count"), "page": request.query.get("page")}

    @backend.http.route(path_prefix="/files/", method="GET")
    def files(ctx: Any, request: cn.HttpRequest) -> str:
        return f"prefix route for {request.path}"

    @backend.http.route(path_prefix="/files/special/", method="GET")
    def special(ctx: Any, request: cn.HttpRequest) -> bytes:
        return b"longest prefix wins"

    yield backend
    backend.close()


def test_routes_requests_and_responses(app: cn.Backend) -> None:
    created = app.fetch("/messages", method="POST", json={"body": "hi"})
    assert created.status == 201 and created.headers["Location"] == f"/messages/{created.text()}"
    assert app.fetch("/messages?page=2").json() == {"count": 1.0, "page": "2"}
    assert app.fetch("/files/a/b.txt").text() == "prefix route for /files/a/b.txt"
    assert app.fetch("/files/special/x").content == b"longest prefix wins"
    missing = app.fetch("/nothing")
    assert missing.status == 404 and missing.json()["code"] == "NoMatchingRoute"
    assert app.fetch("/messages", method="DELETE").status == 404  # no route for that method
    assert [e.kind for e in app.logs if e.path == "POST /messages"] == ["httpAction"]


def test_failures_are_500s_with_the_error(app: cn.Backend) -> None:
    @app.http.route(path="/boom", method="GET")
    def boom(ctx: Any, request: cn.HttpRequest) -> None:
        print("about to fail")
        raise cn.ConvexError("no way")

    @app.http.route(path="/bad-return", method="GET")
    def bad_return(ctx: Any, request: cn.HttpRequest) -> Any:
        return {1, 2}

    r = app.fetch("/boom")
    assert r.status == 500 and "no way" in r.json()["message"]
    entry = [e for e in app.logs if e.path == "GET /boom"][-1]
    assert not entry.ok and entry.lines == ["[LOG] about to fail"]
    assert app.fetch("/bad-return").status == 500


def test_async_handlers_and_redefinition(app: cn.Backend) -> None:
    @app.http.route(path="/async", method="GET")
    async def first(ctx: Any, request: cn.HttpRequest) -> str:
        return "one"

    assert app.fetch("/async").text() == "one"

    @app.http.route(path="/async", method="GET")
    async def second(ctx: Any, request: cn.HttpRequest) -> str:
        count = await ctx.run_query("count")
        return f"two ({count:g})"

    assert app.fetch("/async").text() == "two (0)"  # the cell ran again: replaced


@pytest.mark.parametrize("kwargs, message", [
    ({"method": "FETCH", "path": "/x"}, "method is one of"),
    ({"method": "GET"}, "exactly one of"),
    ({"method": "GET", "path": "/x", "path_prefix": "/y/"}, "exactly one of"),
    ({"method": "GET", "path": "x"}, "starts with '/'"),
    ({"method": "GET", "path": "/api/mine"}, "reserved"),
    ({"method": "GET", "path_prefix": "/files"}, "ends with '/'"),
])
def test_bad_routes_are_clear_errors(app: cn.Backend, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        app.http.route(**kwargs, handler=lambda ctx, request: "x")
