"""Who is calling: admin keys, user tokens (JWTs) and the identities they stand for.

A user token is verified by the deployment's auth providers (``auth_providers.py``: Convex's
``auth.config.ts``); its claims become the caller's identity as Convex builds a
``UserIdentity`` (``sub`` → ``subject``, ``iss`` → ``issuer``, ``tokenIdentifier`` =
``issuer|subject``, OpenID claims in camelCase, custom claims kept, nested ones as dotted
keys). With no providers every user token is refused, unless the server runs with dev tokens
(``dev_tokens=True``), which takes a token's claims unverified, for local experiments only.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import secrets
import time
from collections.abc import Callable
from typing import Any

from ..values import convex_value

__all__ = [
    "AuthenticationError",
    "Credentials",
    "TokenVerifier",
    "admin_key_matches",
    "generate_admin_key",
    "identity_from_claims",
    "parse_authorization",
    "split_authorization",
    "unverified_claims",
    "user_identity",
]

DEFAULT_ISSUER = "https://convex-notebook.local"
# Convex's own words (its backend's NoAuthProvider error).
NO_PROVIDER_MESSAGE = "No auth provider found matching the given token"
CLOCK_SKEW_SECONDS = 30  # leeway on a token's exp / nbf / iat (clocks differ a little)

# A verifier gets the raw token and returns its claims (or raises AuthenticationError).
TokenVerifier = Callable[[str], dict]

_CLAIM_NAMES = {
    "sub": "subject",
    "iss": "issuer",
    "given_name": "givenName",
    "family_name": "familyName",
    "preferred_username": "preferredUsername",
    "profile": "profileUrl",
    "picture": "pictureUrl",
    "email_verified": "emailVerified",
    "phone_number": "phoneNumber",
    "phone_number_verified": "phoneNumberVerified",
    "updated_at": "updatedAt",
}
# Registered JWT claims that describe the token, not the user.
_TOKEN_CLAIMS = {"aud", "exp", "iat", "nbf", "jti", "azp", "nonce", "auth_time", "at_hash"}


class AuthenticationError(Exception):
    """A token or key was refused; the message says why, ``code`` is Convex's error code."""

    def __init__(self, message: str, code: str = "Unauthenticated") -> None:
        super().__init__(message)
        self.code = code


def generate_admin_key() -> str:
    return "convex-notebook|" + secrets.token_hex(32)


def admin_key_matches(given: str | None, expected: str | None) -> bool:
    if not given or not expected:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


def _b64url(segment: str) -> bytes:
    padded = segment + "=" * (-len(segment) % 4)
    return base64.urlsafe_b64decode(padded)


def unverified_claims(token: str) -> dict:
    """The payload of a JWT, without checking its signature (but checking ``exp``/``nbf``)."""
    parts = token.split(".")
    if len(parts) != 3:
        raise AuthenticationError(
            "Could not parse as id token: expected three dot-separated parts", code="InvalidAuthHeader"
        )
    try:
        claims = json.loads(_b64url(parts[1]))
    except (binascii.Error, ValueError, UnicodeDecodeError, RecursionError):
        raise AuthenticationError(
            "Could not parse as id token: its payload is not base64url JSON", code="InvalidAuthHeader"
        ) from None
    if not isinstance(claims, dict):
        raise AuthenticationError("Could not parse as id token: its payload is not a JSON object", code="InvalidAuthHeader")
    return claims


def _claim_value(value: Any) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, (str, float)):
        return value
    if isinstance(value, int):
        return float(value) if abs(value) <= 2**53 else str(value)
    return json.loads(json.dumps(value))  # a plain JSON copy


def identity_from_claims(claims: dict) -> dict:
    """A Convex ``UserIdentity`` from JWT claims; refuses expired or not-yet-valid tokens.

    Nested custom claims become dotted keys, as in Convex: ``{"properties": {"id": "1"}}``
    gives ``identity["properties.id"] == "1"``."""
    now = time.time()
    exp, nbf = claims.get("exp"), claims.get("nbf")
    if isinstance(exp, (int, float)) and not isinstance(exp, bool) and exp < now - CLOCK_SKEW_SECONDS:
        raise AuthenticationError("Token expired (its 'exp' is in the past)", code="IdTokenExpired")
    if isinstance(nbf, (int, float)) and not isinstance(nbf, bool) and nbf > now + CLOCK_SKEW_SECONDS:
        raise AuthenticationError("Token is not valid yet (its 'nbf' is in the future)")
    identity: dict[str, Any] = {}

    def add(prefix: str, value: Any) -> None:
        if isinstance(value, dict) and value:
            for key, inner in value.items():
                if isinstance(key, str) and key and not key.startswith("$"):
                    add(f"{prefix}.{key}", inner)
        else:
            identity[prefix] = _claim_value(value)

    for key, value in claims.items():
        if key in _TOKEN_CLAIMS or not isinstance(key, str) or key.startswith("$") or not key:
            continue
        add(_CLAIM_NAMES.get(key, key), value)
    subject = identity.get("subject")
    if not isinstance(subject, str) or not subject:
        raise AuthenticationError("The token has no 'sub' claim (the user's subject)")
    issuer = identity.get("issuer")
    if not isinstance(issuer, str) or not issuer:
        issuer = identity["issuer"] = DEFAULT_ISSUER
    identity["tokenIdentifier"] = f"{issuer}|{subject}"
    try:
        return convex_value(identity)
    except Exception as exc:  # noqa: BLE001 - any claim convex_value refuses
        raise AuthenticationError(f"The token's claims are not Convex values: {exc}") from None


def identity_from_attributes(attributes: dict) -> dict:
    """An impersonated identity (Authenticate's ``impersonating``), already camelCase."""
    identity = dict(attributes)
    subject = identity.get("subject")
    if not isinstance(subject, str) or not subject:
        raise AuthenticationError("An impersonated identity needs a 'subject'")
    issuer = identity.setdefault("issuer", DEFAULT_ISSUER)
    identity.setdefault("tokenIdentifier", f"{issuer}|{subject}")
    try:
        return convex_value(identity)
    except Exception as exc:  # noqa: BLE001 - any identity convex_value refuses
        raise AuthenticationError(f"The impersonated identity is not a Convex value: {exc}") from None


class Credentials:
    """What a request proved: admin (with an optional impersonated identity), a user, or nobody."""

    __slots__ = ("admin", "identity")

    def __init__(self, admin: bool = False, identity: dict | None = None) -> None:
        self.admin = admin
        self.identity = identity

    def __repr__(self) -> str:
        who = "admin" if self.admin else "user" if self.identity else "anonymous"
        return f"<Credentials {who}>"


ANONYMOUS = Credentials()


def split_authorization(header: str | None) -> tuple[str, str] | None:
    """``(scheme, value)`` of an ``Authorization`` header (scheme lower-cased); None if absent."""
    if header is None or not header.strip():
        return None
    scheme, _, value = header.strip().partition(" ")
    return scheme.lower(), value.strip()


def parse_authorization(
    header: str | None, admin_key: str | None, verify: TokenVerifier | None = None
) -> Credentials:
    """``Authorization: Convex <adminKey>`` / ``Bearer <jwt>`` / nothing → :class:`Credentials`.

    ``verify`` turns a user token into its (verified) claims; without it every user token is
    refused."""
    parts = split_authorization(header)
    if parts is None:
        return ANONYMOUS
    scheme, value = parts
    if scheme == "convex":
        if not admin_key_matches(value, admin_key):
            raise AuthenticationError("The admin key is not valid for this deployment", code="BadAdminKey")
        return Credentials(admin=True)
    if scheme == "bearer":
        if not value:
            raise AuthenticationError("Empty bearer token", code="InvalidAuthHeader")
        return Credentials(identity=user_identity(value, verify))
    raise AuthenticationError(
        "Authorization header must be 'Bearer <token>' or 'Convex <admin key>'", code="InvalidAuthHeader"
    )


def user_identity(token: str, verify: TokenVerifier | None) -> dict:
    """The identity a user token stands for, its claims checked by ``verify`` (None: refused)."""
    if verify is None:
        raise AuthenticationError(f"{NO_PROVIDER_MESSAGE} (no providers configured)", code="NoAuthProvider")
    try:
        claims = verify(token)
    except AuthenticationError:
        raise
    except RecursionError:
        raise AuthenticationError("Could not parse as id token: JSON nested too deeply", code="InvalidAuthHeader") from None
    except Exception as exc:  # noqa: BLE001 - PyJWT and its crypto backends raise many types
        raise AuthenticationError(f"Token verification failed: {exc}") from None
    if not isinstance(claims, dict):
        raise AuthenticationError("Token verification failed")
    return identity_from_claims(claims)
