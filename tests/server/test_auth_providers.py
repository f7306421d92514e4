"""Auth providers (API.md §8, issue 14): user tokens are verified as Convex verifies them.

Tokens are signed with keys the tests generate (server_helpers.TestIssuer); OIDC discovery and
JWKS are served by a local HTTP server on 127.0.0.1 (server_helpers.OidcServer). Over HTTP a
refused token is a 401 naming what is wrong; over the sync protocol an AuthError, then the
socket closes. Nothing a refused caller asked for runs.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from typing import Any, Iterator

import httpx
import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives import serialization

import convex_notebook as cn
from convex_notebook.server.auth import AuthenticationError
from convex_notebook.server.auth_providers import AuthConfigError, AuthProviders, parse_auth_config

from server_helpers import ISSUER, OidcServer, RawSync, TestIssuer, forged, messages, mods_by_id

NO_PROVIDER = "No auth provider found matching the given token"


def me(server: Any, token: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return httpx.post(server.url + "/api/query", json={"path": "me", "args": {}}, headers=headers, timeout=30)


def define_me(app: cn.Backend) -> None:
    @app.query
    def me(ctx: Any) -> Any:
        return ctx.auth.get_user_identity()

    @app.mutation
    def write_as_me(ctx: Any) -> Any:
        who = ctx.auth.get_user_identity()
        ctx.db.insert("messages", {"author": who["subject"] if who else "anonymous", "body": "written"})


@pytest.fixture
def oidc() -> Iterator[OidcServer]:
    provider = OidcServer()
    yield provider
    provider.close()


def served(app: cn.Backend, **options: Any) -> Any:
    define_me(app)
    return app.serve(port=0, block=False, print_admin_key=False, **options)


# -- custom JWT providers ---------------------------------------------------------------------


def test_a_good_token_gives_the_identity_as_convex_maps_it(app: cn.Backend) -> None:
    with served(app) as server:
        token = ISSUER.sign({
            "sub": "user|42", "name": "Ada Lovelace", "email": "ada@example.com", "email_verified": True,
            "given_name": "Ada", "properties": {"id": "123", "favoriteColor": "red"}, "roles": ["a", "b"],
        })
        r = me(server, token)
        assert r.status_code == 200, r.text
        assert r.json()["value"] == {
            "subject": "user|42",
            "issuer": ISSUER.issuer,
            "tokenIdentifier": f"{ISSUER.issuer}|user|42",
            "name": "Ada Lovelace",
            "email": "ada@example.com",
            "emailVerified": True,
            "givenName": "Ada",
            "properties.id": "123",
            "properties.favoriteColor": "red",
            "roles": ["a", "b"],
        }


def test_es256_custom_jwt_provider_and_no_application_id(app: cn.Backend) -> None:
    issuer = TestIssuer("https://es.issuer.test", audience=None, algorithm="ES256")
    app.set_auth({"providers": [issuer.custom_provider()]})
    with served(app) as server:
        r = me(server, issuer.sign({"sub": "es-user"}))
        assert r.status_code == 200 and r.json()["value"]["subject"] == "es-user"
        # Without an applicationID the audience is not checked (as Convex).
        r = me(server, issuer.sign({"sub": "es-user", "aud": "anything"}))
        assert r.status_code == 200
        # An RS256 token from that issuer is refused: the provider says ES256.
        rsa = TestIssuer("https://es.issuer.test", audience=None, algorithm="RS256")
        r = me(server, rsa.sign({"sub": "x"}))
        assert r.status_code == 401 and "algorithm 'RS256' is not accepted" in r.json()["message"]


@pytest.mark.parametrize("case", ["bad signature", "wrong issuer", "wrong audience", "expired", "nbf in future",
                                  "no sub", "no exp", "alg none", "hs256 with the public key", "garbage"])
def test_bad_tokens_are_refused_with_a_reason(app: cn.Backend, case: str) -> None:
    now = int(time.time())
    other = TestIssuer()  # another key: same issuer name, its own key under our kid
    pem = ISSUER.keys[ISSUER.kid].public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    tokens = {
        "bad signature": (other.sign({"sub": "u"}, kid=ISSUER.kid, key=other.keys[other.kid]), "Unauthenticated", "signature"),
        "wrong issuer": (ISSUER.sign({"sub": "u", "iss": "https://evil.test"}), "NoAuthProvider", NO_PROVIDER),
        "wrong audience": (ISSUER.sign({"sub": "u", "aud": "another-app"}), "NoAuthProvider", NO_PROVIDER),
        "expired": (ISSUER.sign({"sub": "u", "iat": now - 7200, "exp": now - 3600}), "IdTokenExpired", "expired"),
        "nbf in future": (ISSUER.sign({"sub": "u", "nbf": now + 3600}), "Unauthenticated", "nbf"),
        "no sub": (pyjwt.encode({k: v for k, v in ISSUER.claims({}).items()}, ISSUER.keys[ISSUER.kid],
                                algorithm="RS256", headers={"kid": ISSUER.kid}), "Unauthenticated", "sub"),
        "no exp": (pyjwt.encode({k: v for k, v in ISSUER.claims({"sub": "u"}).items() if k != "exp"},
                                ISSUER.keys[ISSUER.kid], algorithm="RS256", headers={"kid": ISSUER.kid}),
                   "Unauthenticated", "exp"),
        "alg none": (forged(ISSUER.claims({"sub": "admin"})), "Unauthenticated", "algorithm 'none' is not accepted"),
        "hs256 with the public key": (_hs256(ISSUER.claims({"sub": "admin"}), pem, ISSUER.kid), "Unauthenticated",
                                      "algorithm 'HS256' is not accepted"),
        "garbage": ("not.a.jwt", "InvalidAuthHeader", "Could not parse"),
    }
    token, code, text = tokens[case]
    with served(app) as server:
        r = me(server, token)
        assert r.status_code == 401, r.text
        body = r.json()
        assert body["code"] == code and text in body["message"], body
        # Nothing ran for the refused caller.
        r = httpx.post(server.url + "/api/mutation", json={"path": "write_as_me", "args": {}},
                       headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401
    assert app.run(lambda ctx: ctx.db.query("messages").collect()) == []


def _hs256(claims: dict, secret: bytes, kid: str) -> str:
    """A token 'signed' with HMAC using the provider's public key as the secret (key confusion)."""
    def part(d: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(d).encode()).decode().rstrip("=")

    import hashlib
    import hmac

    signing_input = f"{part({'alg': 'HS256', 'typ': 'JWT', 'kid': kid})}.{part(claims)}"
    sig = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + base64.urlsafe_b64encode(sig).decode().rstrip("=")


def test_a_small_clock_skew_is_tolerated(app: cn.Backend) -> None:
    now = int(time.time())
    with served(app) as server:
        # Expired 5 s ago, or valid from 5 s ahead: clocks differ a little (30 s of leeway).
        assert me(server, ISSUER.sign({"sub": "u", "iat": now - 600, "exp": now - 5})).status_code == 200
        assert me(server, ISSUER.sign({"sub": "u", "nbf": now + 5})).status_code == 200


def test_the_issues_forged_token_no_longer_passes(app: cn.Backend) -> None:
    """Issue 14: Authorization: Bearer {"alg":"none"}.{"sub":"admin"} made the identity 'admin'."""
    token = forged({"sub": "admin"})
    with served(app) as server:
        r = me(server, token)
        assert r.status_code == 401 and r.json()["code"] == "NoAuthProvider"
        assert r.json()["message"].startswith(NO_PROVIDER)
    app.set_auth(None)  # and with no providers at all
    with served(app) as server:
        r = me(server, token)
        assert r.status_code == 401 and r.json()["code"] == "NoAuthProvider"
        assert r.json()["message"].startswith(f"{NO_PROVIDER} (no providers configured)")
        assert me(server, None).json()["value"] is None  # anonymous calls still work


def test_no_providers_refuses_every_user_token_even_good_ones() -> None:
    app = cn.Backend(echo_logs=False)
    try:
        with served(app) as server:
            r = me(server, ISSUER.sign({"sub": "u"}))
            assert r.status_code == 401 and "(no providers configured)" in r.json()["message"]
            assert "dev_tokens" in r.json()["message"]
    finally:
        app.close()


def test_dev_tokens_accept_unverified_tokens_only_when_asked(app: cn.Backend, capsys: Any) -> None:
    app.set_auth(None)
    with served(app, dev_tokens=True) as server:
        assert "DEV TOKENS" in capsys.readouterr().err  # said at start
        r = me(server, forged({"sub": "dev-user", "name": "Dev"}))
        assert r.json()["value"]["subject"] == "dev-user"
    # With providers too: a token a provider claims is still verified.
    app.set_auth({"providers": [ISSUER.custom_provider()]})
    other = TestIssuer()
    with served(app, dev_tokens=True) as server:
        assert me(server, forged({"sub": "anyone", "iss": "https://elsewhere.test"})).status_code == 200
        r = me(server, other.sign({"sub": "u"}, kid=ISSUER.kid, key=other.keys[other.kid]))
        assert r.status_code == 401 and "signature" in r.json()["message"]
        assert me(server, ISSUER.sign({"sub": "real"})).json()["value"]["subject"] == "real"


def test_set_auth_while_serving_takes_effect(app: cn.Backend) -> None:
    issuer = TestIssuer("https://later.test")
    with served(app) as server:
        assert me(server, issuer.sign({"sub": "u"})).status_code == 401
        app.set_auth({"providers": [ISSUER.custom_provider(), issuer.custom_provider()]})
        assert me(server, issuer.sign({"sub": "u"})).json()["value"]["issuer"] == "https://later.test"


# -- OIDC providers (discovery) ---------------------------------------------------------------


def test_oidc_discovery_caches_and_refreshes_on_an_unknown_kid(app: cn.Backend, oidc: OidcServer) -> None:
    app.set_auth({"providers": [oidc.provider()]})
    with served(app) as server:
        first = oidc.issuer.kid
        r = me(server, oidc.issuer.sign({"sub": "oidc-user"}))
        assert r.status_code == 200, r.text
        assert r.json()["value"]["tokenIdentifier"] == f"{oidc.url}|oidc-user"
        assert oidc.hits == {"/.well-known/openid-configuration": 1, "/jwks": 1}
        assert me(server, oidc.issuer.sign({"sub": "again"})).status_code == 200
        assert oidc.hits["/jwks"] == 1  # cached
        # The provider rotates its key: a token with the new kid makes us fetch the JWKS again.
        old_key = oidc.issuer.keys[first]
        oidc.issuer.rotate()
        assert oidc.issuer.kid != first
        r = me(server, oidc.issuer.sign({"sub": "rotated"}))
        assert r.status_code == 200 and r.json()["value"]["subject"] == "rotated"
        assert oidc.hits["/jwks"] == 2
        # The old key is gone from the JWKS: a token signed with it is refused, and so is any
        # kid the JWKS does not hold (without fetching again: such refreshes are rate-limited).
        r = me(server, oidc.issuer.sign({"sub": "x"}, kid=first, key=old_key))
        assert r.status_code == 401 and first in r.json()["message"]
        r = me(server, oidc.issuer.sign({"sub": "x"}, kid="no-such-kid", key=oidc.issuer.keys[oidc.issuer.kid]))
        assert r.status_code == 401 and "no-such-kid" in r.json()["message"]
        assert oidc.hits["/jwks"] == 2
        # Wrong audience for this domain: no provider matches.
        r = me(server, oidc.issuer.sign({"sub": "x", "aud": "not-ours"}))
        assert r.status_code == 401 and r.json()["code"] == "NoAuthProvider"


def test_oidc_trailing_slash_and_unreachable_provider(app: cn.Backend, oidc: OidcServer) -> None:
    app.set_auth({"providers": [{"domain": oidc.url + "/", "applicationID": oidc.issuer.audience}]})
    with served(app) as server:
        assert me(server, oidc.issuer.sign({"sub": "u"})).status_code == 200
        oidc.close()  # the provider goes away: a token whose keys we need cannot be checked
        providers = AuthProviders({"providers": [oidc.provider()]})
        with pytest.raises(AuthenticationError) as info:
            providers.verify(oidc.issuer.sign({"sub": "u"}))
        assert info.value.code == "AuthProviderUnavailable" and "Could not fetch the keys" in str(info.value)
        # The served deployment still has the keys cached.
        assert me(server, oidc.issuer.sign({"sub": "u"})).status_code == 200


# -- the sync protocol ------------------------------------------------------------------------


def test_websocket_authenticate_verifies_like_http(app: cn.Backend) -> None:
    async def main(url: str) -> None:
        c = await RawSync(url).open()
        await c.modify(c.add(0, "me"))
        await c.send({"type": "Authenticate", "baseVersion": 0, "tokenType": "User",
                      "value": ISSUER.sign({"sub": "ws-user", "name": "Grace"})})
        t = await c.recv_type("Transition")
        who = mods_by_id(t)[0]["value"]
        assert t["endVersion"]["identity"] == 1
        assert who["subject"] == "ws-user" and who["tokenIdentifier"] == f"{ISSUER.issuer}|ws-user"
        # The issue's forged token: AuthError with Convex's message, then the socket closes.
        await c.send({"type": "Authenticate", "baseVersion": 1, "tokenType": "User", "value": forged({"sub": "admin"})})
        error = await c.recv_type("AuthError")
        assert error["error"].startswith(NO_PROVIDER) and error["baseVersion"] == 1
        close = await c.closed()
        assert close is not None and close.code == 1000

        # An expired token on a fresh connection: refused too, nothing written.
        d = await RawSync(url).open()
        now = int(time.time())
        await d.send({"type": "Authenticate", "baseVersion": 0, "tokenType": "User",
                      "value": ISSUER.sign({"sub": "late", "iat": now - 7200, "exp": now - 3600})})
        await d.send({"type": "Mutation", "requestId": 0, "udfPath": "write_as_me", "args": [{}]})
        error = await d.recv_type("AuthError")
        assert "expired" in error["error"]
        await d.closed()

    with served(app) as server:
        asyncio.run(main(server.url))
    assert messages(app) == []


# -- configs ----------------------------------------------------------------------------------


@pytest.mark.parametrize("config, text", [
    ({"providers": "x"}, "must be a list"),
    ({}, "needs 'providers'"),
    ({"providers": [], "extra": 1}, "Unknown auth config field"),
    ({"providers": [{"domain": "https://a"}]}, "applicationID"),
    ({"providers": [{"domain": "ftp://a", "applicationID": "x"}]}, "domain must be an http or https URL"),
    ({"providers": [{"type": "customJwt", "issuer": "i", "jwks": "https://k", "algorithm": "HS256"}]}, "algorithm"),
    ({"providers": [{"type": "customJwt", "issuer": "i", "algorithm": "RS256"}]}, "jwks"),
    ({"providers": [{"issuer": "i", "jwks": "https://k", "algorithm": "RS256"}]}, "customJwt"),
    ({"providers": [{"type": "oauth"}]}, "type must be 'customJwt'"),
    ({"providers": [{"type": "customJwt", "issuer": "i", "jwks": "data:nocomma", "algorithm": "RS256"}]}, "data: URI"),
])
def test_bad_configs_are_refused_naming_the_field(config: Any, text: str) -> None:
    with pytest.raises(AuthConfigError) as info:
        parse_auth_config(config)
    assert text in str(info.value)
    with pytest.raises(AuthConfigError):
        cn.Backend(auth=config)


def test_a_custom_jwt_provider_with_a_jwks_url(app: cn.Backend, oidc: OidcServer) -> None:
    issuer = oidc.issuer
    app.set_auth({"providers": [{"type": "customJwt", "issuer": issuer.issuer, "jwks": oidc.url + "/jwks",
                                 "algorithm": "RS256", "applicationID": issuer.audience}]})
    with served(app) as server:
        assert me(server, issuer.sign({"sub": "u"})).json()["value"]["subject"] == "u"
        assert oidc.hits.get("/.well-known/openid-configuration") is None and oidc.hits["/jwks"] == 1


def test_discovery_and_jwks_problems_are_named() -> None:
    """Driven through an injected fetch (no network): what a provider publishes is checked."""
    issuer = TestIssuer("https://idp.test")
    config = {"providers": [{"domain": "https://idp.test", "applicationID": issuer.audience}]}
    token = issuer.sign({"sub": "u"})

    def serving(metadata: Any, jwks: Any) -> Any:
        def fetch(url: str) -> Any:
            return metadata if url.endswith("/openid-configuration") else jwks
        return fetch

    good_meta = {"issuer": "https://idp.test", "jwks_uri": "https://idp.test/jwks"}
    cases = [
        ({"issuer": "https://other.test", "jwks_uri": "https://idp.test/jwks"}, issuer.jwks(), "names issuer"),
        ({"issuer": "https://idp.test"}, issuer.jwks(), "no 'jwks_uri'"),
        (good_meta, {"keys": [{"kty": "RSA"}]}, "no usable key"),
        (good_meta, ["not", "an", "object"], "not a JSON object"),
    ]
    for metadata, jwks, text in cases:
        with pytest.raises(AuthenticationError) as info:
            AuthProviders(config, fetch=serving(metadata, jwks)).verify(token)
        assert info.value.code == "AuthProviderUnavailable" and text in str(info.value), (text, str(info.value))
    providers = AuthProviders(config, fetch=serving(good_meta, issuer.jwks()))
    assert providers.verify(token)["sub"] == "u"
    # One key in the JWKS: a token without a kid may use it; with two keys it must name one.
    unnamed = pyjwt.encode(issuer.claims({"sub": "v"}), issuer.keys[issuer.kid], algorithm="RS256")
    assert providers.verify(unnamed)["sub"] == "v"
    issuer.rotate(keep_old=True)
    two = AuthProviders(config, fetch=serving(good_meta, issuer.jwks()))
    with pytest.raises(AuthenticationError) as info:
        two.verify(unnamed)
    assert "no 'kid' header" in str(info.value)
