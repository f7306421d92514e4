"""HTTP actions on the served deployment: any path outside /api, the caller's identity from
a Bearer token, and the server's own API untouched."""

from __future__ import annotations

from typing import Any

import httpx

import convex_notebook as cn

from server_helpers import jwt


def test_served_routes_with_identity(app: cn.Backend, server: Any) -> None:
    @app.http.route(path="/whoami", method="GET")
    def whoami(ctx: Any, request: cn.HttpRequest) -> dict:
        identity = ctx.auth.get_user_identity()
        return {"subject": identity["subject"] if identity else None, "agent": request.headers.get("user-agent")}

    @app.http.route(path="/echo", method="POST")
    def echo(ctx: Any, request: cn.HttpRequest) -> cn.HttpResponse:
        return cn.HttpResponse(request.body, headers={"Content-Type": request.headers.get("content-type", "")})

    r = httpx.get(server.url + "/whoami", headers={"User-Agent": "test"})
    assert r.status_code == 200 and r.json() == {"subject": None, "agent": "test"}
    r = httpx.get(server.url + "/whoami", headers={"Authorization": f"Bearer {jwt({'sub': 'u1'})}"})
    assert r.json()["subject"] == "u1"
    r = httpx.post(server.url + "/echo", content=b"\x00\x01", headers={"Content-Type": "application/x-raw"})
    assert r.content == b"\x00\x01" and r.headers["content-type"] == "application/x-raw"
    assert httpx.get(server.url + "/nowhere").status_code == 404
    assert httpx.get(server.url + "/api/unknown").json()["code"] == "NotFound"  # /api stays the API's
    assert httpx.get(server.url + "/version").status_code == 200
