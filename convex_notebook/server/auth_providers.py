"""Auth providers: the content of Convex's ``auth.config.ts``, and user tokens checked against it.

    app = cn.Backend(auth={"providers": [
        {"domain": "https://issuer.example.com", "applicationID": "my-app"},            # OIDC
        {"type": "customJwt", "issuer": "https://auth.example.com", "applicationID": "my-app",
         "jwks": "https://auth.example.com/.well-known/jwks.json", "algorithm": "RS256"},
    ]})

A token is matched to a provider by its ``iss`` (and ``aud``, when the provider has an
``applicationID``), then verified with PyJWT as Convex verifies it: the signature with the
provider's published keys (JWKS), the issuer, the audience, ``exp`` and ``nbf`` with a small
clock skew. ``alg: none`` and HMAC algorithms never pass. OIDC providers are discovered through
``{domain}/.well-known/openid-configuration``; every JWKS is cached and fetched again when a
token names a key id (``kid``) it does not hold (key rotation), at most once per
``min_refresh_seconds`` for such misses.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jwt
from jwt.exceptions import PyJWKError, PyJWKSetError

from .auth import CLOCK_SKEW_SECONDS, NO_PROVIDER_MESSAGE, AuthenticationError

__all__ = [
    "NO_PROVIDER_MESSAGE",
    "AuthConfigError",
    "AuthProviders",
    "CustomJwtProvider",
    "OidcProvider",
    "parse_auth_config",
]

JWKS_MAX_AGE_SECONDS = 3600.0  # a cached JWKS is fetched again after this long
FETCH_TIMEOUT_SECONDS = 10.0
MAX_FETCH_BYTES = 1024 * 1024
# Asymmetric algorithms an OIDC provider may sign with (HS* would make the public key a secret).
OIDC_ALGORITHMS = ("RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384", "PS512", "EdDSA")
CUSTOM_JWT_ALGORITHMS = ("RS256", "ES256")  # as Convex


class AuthConfigError(ValueError):
    """An auth config (``auth={...}``, ``auth.config.py``) that is not one Convex would accept."""


@dataclass(frozen=True)
class OidcProvider:
    """``{"domain": issuer_url, "applicationID": audience}``."""

    domain: str
    application_id: str

    def describe(self) -> str:
        return f"OIDC(domain={self.domain}, applicationID={self.application_id})"

    def matches(self, issuer: str, audiences: list[str]) -> bool:
        # Some providers (Auth0) write the issuer with a trailing slash and the domain without.
        return issuer.rstrip("/") == self.domain.rstrip("/") and self.application_id in audiences


@dataclass(frozen=True)
class CustomJwtProvider:
    """``{"type": "customJwt", "issuer", "jwks", "algorithm", "applicationID"?}``."""

    issuer: str
    jwks: str
    algorithm: str
    application_id: str | None = None

    def describe(self) -> str:
        return f"CustomJWT(issuer={self.issuer}, applicationID={self.application_id or 'none'})"

    def matches(self, issuer: str, audiences: list[str]) -> bool:
        if issuer != self.issuer:
            return False
        return self.application_id is None or self.application_id in audiences


Provider = OidcProvider | CustomJwtProvider

_OIDC_KEYS = {"domain", "applicationID"}
_CUSTOM_KEYS = {"type", "issuer", "jwks", "algorithm", "applicationID"}


def _url(value: Any, where: str, *, data_uri: bool = False) -> str:
    if not isinstance(value, str) or not value.strip():
        raise AuthConfigError(f"{where} must be a non-empty string (a URL), got {value!r}")
    value = value.strip()
    scheme = urllib.parse.urlsplit(value).scheme.lower()
    allowed = ("http", "https", "data") if data_uri else ("http", "https")
    if scheme not in allowed:
        raise AuthConfigError(f"{where} must be an {' or '.join(allowed)} URL, got {value[:80]!r}")
    return value


def parse_auth_config(config: Any) -> list[Provider]:
    """The providers of an auth config (``{"providers": [...]}``), checked; ``None`` → ``[]``."""
    if config is None:
        return []
    providers = getattr(config, "providers", None) if not isinstance(config, Mapping) else config.get("providers")
    if isinstance(config, Mapping):
        extra = set(config) - {"providers"}
        if extra:
            raise AuthConfigError(f"Unknown auth config field(s) {sorted(extra)}: it has only 'providers'")
    if providers is None:
        raise AuthConfigError("An auth config needs 'providers', a list: {'providers': [...]}")
    if isinstance(providers, (str, bytes, Mapping)) or not isinstance(providers, Sequence):
        raise AuthConfigError(f"The auth config's 'providers' must be a list, got {type(providers).__name__}")
    out: list[Provider] = []
    for i, raw in enumerate(providers):
        where = f"providers[{i}]"
        if not isinstance(raw, Mapping):
            raise AuthConfigError(f"{where} must be a dict, got {type(raw).__name__}")
        kind = raw.get("type")
        if kind is None or kind == "oidc":
            extra = set(raw) - _OIDC_KEYS - {"type"}
            if extra:
                hint = " (a custom JWT provider needs \"type\": \"customJwt\")" if extra & _CUSTOM_KEYS else ""
                raise AuthConfigError(f"{where}: unknown field(s) {sorted(extra)} for an OIDC provider{hint}")
            app_id = raw.get("applicationID")
            if not isinstance(app_id, str) or not app_id:
                raise AuthConfigError(f"{where}.applicationID must be a non-empty string (the tokens' 'aud')")
            out.append(OidcProvider(_url(raw.get("domain"), f"{where}.domain"), app_id))
        elif kind == "customJwt":
            extra = set(raw) - _CUSTOM_KEYS
            if extra:
                raise AuthConfigError(f"{where}: unknown field(s) {sorted(extra)} for a customJwt provider")
            issuer = raw.get("issuer")
            if not isinstance(issuer, str) or not issuer:
                raise AuthConfigError(f"{where}.issuer must be a non-empty string (the tokens' 'iss')")
            algorithm = raw.get("algorithm")
            if algorithm not in CUSTOM_JWT_ALGORITHMS:
                raise AuthConfigError(
                    f"{where}.algorithm must be one of {', '.join(CUSTOM_JWT_ALGORITHMS)}, got {algorithm!r}"
                )
            app_id = raw.get("applicationID")
            if app_id is not None and (not isinstance(app_id, str) or not app_id):
                raise AuthConfigError(f"{where}.applicationID must be a non-empty string when given")
            jwks = _url(raw.get("jwks"), f"{where}.jwks", data_uri=True)
            if jwks.startswith("data:"):
                _read_data_uri(jwks, f"{where}.jwks")  # refuse a broken one now, not at the first token
            out.append(CustomJwtProvider(issuer, jwks, algorithm, app_id))
        else:
            raise AuthConfigError(f"{where}.type must be 'customJwt' (or absent, for OIDC), got {kind!r}")
    return out


# -- fetching keys ---------------------------------------------------------------------------


def _read_data_uri(uri: str, where: str) -> bytes:
    header, sep, payload = uri[len("data:"):].partition(",")
    if not sep:
        raise AuthConfigError(f"{where} is a data: URI without a ',' before its content")
    if header.lower().endswith(";base64"):
        try:
            return base64.b64decode(payload, validate=False)
        except (binascii.Error, ValueError) as exc:
            raise AuthConfigError(f"{where} is a data: URI whose base64 content is invalid: {exc}") from None
    return urllib.parse.unquote_to_bytes(payload)


def http_get_json(url: str) -> Any:
    """GET ``url`` and parse its JSON (at most 1 MiB); raises :class:`OSError` saying why not."""
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=FETCH_TIMEOUT_SECONDS) as response:
            body = response.read(MAX_FETCH_BYTES + 1)
    except urllib.error.HTTPError as exc:
        raise OSError(f"GET {url} answered HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise OSError(f"GET {url} failed: {getattr(exc, 'reason', exc)}") from None
    if len(body) > MAX_FETCH_BYTES:
        raise OSError(f"GET {url}: the answer is larger than {MAX_FETCH_BYTES} bytes")
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise OSError(f"GET {url}: the answer is not JSON") from None


Fetch = Callable[[str], Any]


class _KeySet:
    """The keys (JWKS) of one provider, cached; fetched again on a key id it does not hold."""

    def __init__(self, provider: Provider, fetch: Fetch) -> None:
        self.provider = provider
        self.fetch = fetch
        self.keys: dict[str | None, jwt.PyJWK] = {}
        self.algorithms: tuple[str, ...] = (
            (provider.algorithm,) if isinstance(provider, CustomJwtProvider) else OIDC_ALGORITHMS
        )
        self.fetched_at: float | None = None
        self.last_miss_refresh = float("-inf")
        self.fetches = 0  # how many times the JWKS was fetched (tests look)
        self.lock = threading.Lock()

    def _jwks_url(self) -> str:
        provider = self.provider
        if isinstance(provider, CustomJwtProvider):
            return provider.jwks
        url = provider.domain.rstrip("/") + "/.well-known/openid-configuration"
        metadata = self.fetch(url)
        if not isinstance(metadata, dict) or not isinstance(metadata.get("jwks_uri"), str):
            raise OSError(f"{url} has no 'jwks_uri'")
        issuer = metadata.get("issuer")
        if not isinstance(issuer, str) or issuer.rstrip("/") != provider.domain.rstrip("/"):
            raise OSError(f"{url} names issuer {issuer!r}, not {provider.domain!r}")
        supported = metadata.get("id_token_signing_alg_values_supported")
        if isinstance(supported, list):
            self.algorithms = tuple(a for a in OIDC_ALGORITHMS if a in supported) or self.algorithms
        return _url(metadata["jwks_uri"], f"{url}'s jwks_uri")

    def _load(self) -> None:
        url = self._jwks_url()
        raw = json.loads(_read_data_uri(url, "jwks")) if url.startswith("data:") else self.fetch(url)
        if not isinstance(raw, dict):
            raise OSError(f"the JWKS at {url[:80]} is not a JSON object")
        try:
            keyset = jwt.PyJWKSet.from_dict(raw)
        except (PyJWKSetError, PyJWKError, TypeError, ValueError, KeyError, AttributeError) as exc:
            raise OSError(f"the JWKS at {url[:80]} holds no usable key: {exc}") from None
        self.keys = {key.key_id: key for key in keyset.keys}
        self.fetched_at = time.monotonic()
        self.fetches += 1

    def key_for(self, kid: str | None, min_refresh_seconds: float) -> jwt.PyJWK:
        with self.lock:
            try:
                now = time.monotonic()
                if self.fetched_at is None or now - self.fetched_at > JWKS_MAX_AGE_SECONDS:
                    self._load()
                elif kid not in self.keys and now - self.last_miss_refresh >= min_refresh_seconds:
                    self.last_miss_refresh = now  # a rotated key: fetch again (rate-limited)
                    self._load()
            except (OSError, ValueError) as exc:
                raise AuthenticationError(
                    f"Could not fetch the keys of auth provider {self.provider.describe()}: {exc}",
                    code="AuthProviderUnavailable",
                ) from None
            if kid is None and len(self.keys) == 1:
                return next(iter(self.keys.values()))
            key = self.keys.get(kid)
            if key is None:
                why = (
                    f"the token has no 'kid' header and the JWKS of {self.provider.describe()} holds "
                    f"{len(self.keys)} keys" if kid is None
                    else f"key id {kid!r} is not in the JWKS of {self.provider.describe()}"
                )
                raise AuthenticationError(f"Could not verify token claim: {why}", code="Unauthenticated")
            return key


# -- verifying -------------------------------------------------------------------------------


def _audiences(aud: Any) -> list[str]:
    if isinstance(aud, str):
        return [aud]
    if isinstance(aud, list):
        return [a for a in aud if isinstance(a, str)]
    return []


class AuthProviders:
    """A verifier for the providers of one auth config: ``claims = providers.verify(token)``."""

    def __init__(
        self, config: Any, *, fetch: Fetch | None = None, min_refresh_seconds: float = 10.0,
        leeway: float = CLOCK_SKEW_SECONDS,
    ) -> None:
        self.config = config
        self.providers = parse_auth_config(config)
        self.min_refresh_seconds = min_refresh_seconds
        self.leeway = leeway
        self._keysets = [_KeySet(p, fetch or http_get_json) for p in self.providers]

    def __bool__(self) -> bool:
        return bool(self.providers)

    def __repr__(self) -> str:
        return f"<AuthProviders {', '.join(p.describe() for p in self.providers) or 'none'}>"

    def keyset(self, index: int) -> _KeySet:
        return self._keysets[index]

    def no_provider_message(self) -> str:
        if not self.providers:
            return f"{NO_PROVIDER_MESSAGE} (no providers configured)"
        listed = ", ".join(p.describe() for p in self.providers)
        return f"{NO_PROVIDER_MESSAGE}. Check that the token's issuer and audience match one of: {listed}"

    def find(self, token: str) -> tuple[_KeySet, dict, dict] | None:
        """The key set of the provider whose issuer (and audience) the token names, with the
        token's unverified header and claims; None when no provider matches."""
        try:
            header = jwt.get_unverified_header(token)
            claims = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise AuthenticationError(f"Could not parse as id token: {exc}", code="InvalidAuthHeader") from None
        except RecursionError:
            raise AuthenticationError("Could not parse as id token: JSON nested too deeply", code="InvalidAuthHeader") from None
        issuer = claims.get("iss")
        if not isinstance(issuer, str):
            return None
        audiences = _audiences(claims.get("aud"))
        for keyset in self._keysets:
            if keyset.provider.matches(issuer, audiences):
                return keyset, header, claims
        return None

    @staticmethod
    def _check_algorithm(alg: Any, keyset: _KeySet) -> None:
        if alg not in keyset.algorithms:
            raise AuthenticationError(
                f"Could not verify token claim: algorithm {alg!r} is not accepted by "
                f"{keyset.provider.describe()} (accepted: {', '.join(keyset.algorithms)})",
                code="Unauthenticated",
            )

    def verify(self, token: str) -> dict:
        """The claims of a token one of the providers signed; :class:`AuthenticationError` else."""
        found = self.find(token)
        if found is None:
            raise AuthenticationError(self.no_provider_message(), code="NoAuthProvider")
        keyset, header, claims = found
        alg = header.get("alg")
        provider = keyset.provider
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise AuthenticationError("Could not parse as id token: 'kid' must be a string", code="InvalidAuthHeader")
        self._check_algorithm(alg, keyset)  # before fetching anything: 'none' never gets that far
        key = keyset.key_for(kid, self.min_refresh_seconds)
        self._check_algorithm(alg, keyset)  # discovery may have narrowed the list
        application_id = provider.application_id
        assert isinstance(alg, str)  # _check_algorithm accepted it
        try:
            return jwt.decode(
                token, key, algorithms=[alg], audience=application_id,
                issuer=claims["iss"],  # already matched to the provider (trailing slash aside)
                leeway=self.leeway,
                options={"require": ["iss", "sub", "exp"], "verify_aud": application_id is not None},
            )
        except jwt.ExpiredSignatureError:
            raise AuthenticationError("Token expired (its 'exp' is in the past)", code="IdTokenExpired") from None
        except jwt.ImmatureSignatureError:
            raise AuthenticationError("Token is not valid yet (its 'nbf' is in the future)", code="Unauthenticated") from None
        except jwt.InvalidSignatureError:
            raise AuthenticationError(
                f"Could not verify token claim: the signature does not match the keys of {provider.describe()}",
                code="Unauthenticated",
            ) from None
        except jwt.PyJWTError as exc:
            raise AuthenticationError(f"Could not verify token claim: {exc}", code="Unauthenticated") from None
