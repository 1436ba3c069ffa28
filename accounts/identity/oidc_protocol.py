"""The wire side of the OIDC adapter (see `accounts.identity.oidc`): configuration, the
discovery document and JWKS (cached in-process), the token and UserInfo endpoints over httpx,
and the ID token checks. Every function here may call the issuer: none may run inside a
database transaction. The errors are the adapter's: see `accounts.identity.oidc`.
"""

from __future__ import annotations

import functools
import hmac
import logging
import ssl
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus, urlsplit

import httpx
import jwt
from django.conf import settings

from core.errors import DomainError

logger = logging.getLogger("anju.identity.oidc")

LEEWAY_SECONDS = 30
CACHE_TTL_SECONDS = 3600
# Asymmetric algorithms only: `none` and HS* (which would make the client secret a signing
# key anyone holding it could use) are refused before any key is looked up.
ALGORITHM_KEY_TYPES = {"RS256": "RSA", "ES256": "EC"}
REQUIRED_CLAIMS = ["iss", "aud", "exp", "iat", "sub"]
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}

MESSAGE_RETRY = "统一身份认证未能完成，请返回登录页重新登录"


class OidcError(DomainError):
    kind = "invalid"


class OidcProviderError(OidcError):
    """The platform could not be used. `upstream` is True when the platform itself failed
    (unreachable, 5xx, malformed answers, refusing our client), False when it refused this
    particular login (an expired or reused code), which the applicant fixes by starting over.
    """

    code = "oidc_provider_error"
    message = "广东省统一身份认证平台暂时无法访问，请稍后再试"

    def __init__(self, message: str | None = None, *, upstream: bool) -> None:
        super().__init__(message=message)
        self.upstream = upstream


def _invalid_id_token(reason: str) -> OidcError:
    logger.warning("OIDC ID token refused: %s", reason)
    return OidcError("oidc_invalid_id_token", "身份认证结果校验未通过，请返回登录页重新登录")


def _upstream(reason: str) -> OidcProviderError:
    logger.warning("OIDC provider failure: %s", reason)
    return OidcProviderError(upstream=True)


@dataclass(frozen=True, slots=True)
class OidcConfig:
    issuer: str
    client_id: str
    client_secret: str
    scopes: str
    id_number_claim: str
    name_claim: str
    timeout: float

    @classmethod
    def from_settings(cls) -> OidcConfig:
        conf = settings.OIDC

        def text(key: str) -> str:
            return str(conf.get(key) or "")

        return cls(
            issuer=text("ISSUER"),
            client_id=text("CLIENT_ID"),
            client_secret=text("CLIENT_SECRET"),
            scopes=text("SCOPES") or "openid",
            id_number_claim=text("ID_NUMBER_CLAIM") or "id_card_no",
            name_claim=text("NAME_CLAIM") or "name",
            timeout=float(str(conf.get("TIMEOUT_SECONDS") or 5)),
        )

    @property
    def enabled(self) -> bool:
        return bool(self.issuer and self.client_id)


# In-process caches of the discovery document (by issuer) and the JWKS (by URI). A worker
# refetches after an hour, and the JWKS at once when a token names a key it does not hold.
_cache_lock = threading.Lock()
_discovery_cache: dict[str, tuple[float, dict[str, str]]] = {}
_jwks_cache: dict[str, tuple[float, list[Any]]] = {}


def oidc_cache_clear() -> None:
    """Forget every cached discovery document and JWKS (tests; a key rotation by hand)."""
    with _cache_lock:
        _discovery_cache.clear()
        _jwks_cache.clear()


@functools.cache
def _tls_context() -> ssl.SSLContext:
    # Loading the CA bundle is most of the cost of a new client; do it once per process.
    return httpx.create_ssl_context()


def _http_client(timeout: float) -> httpx.Client:
    return httpx.Client(timeout=timeout, follow_redirects=False, verify=_tls_context())


def _request_json(
    method: str,
    url: str,
    *,
    config: OidcConfig,
    headers: Mapping[str, str] | None = None,
    **kwargs: Any,
) -> tuple[int, Any]:
    """One request to the platform: (status, parsed JSON body or None)."""
    try:
        with _http_client(config.timeout) as client:
            response = client.request(
                method, url, headers={"Accept": "application/json", **(headers or {})}, **kwargs
            )
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise _upstream(f"{method} {url}: {exc.__class__.__name__}") from None
    try:
        body = response.json()
    except ValueError:
        body = None
    return response.status_code, body


def _secure_url(url: Any) -> bool:
    # Secrets and tokens travel to these URLs: TLS everywhere but the loopback interface.
    if not isinstance(url, str) or not url:
        return False
    parts = urlsplit(url)
    return parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS)


def discovery(config: OidcConfig) -> dict[str, str]:
    """The issuer's endpoints from its discovery document, cached for an hour. Raises
    `oidc_provider_error` (upstream) when it is unreachable, malformed, names another issuer
    or points anywhere but https (or the loopback interface)."""
    with _cache_lock:
        cached = _discovery_cache.get(config.issuer)
    if cached and time.monotonic() - cached[0] < CACHE_TTL_SECONDS:
        return cached[1]
    if not _secure_url(config.issuer):
        raise _upstream(f"issuer {config.issuer!r} is not an https URL")
    status, doc = _request_json(
        "GET", config.issuer.rstrip("/") + "/.well-known/openid-configuration", config=config
    )
    if status != 200 or not isinstance(doc, dict):
        raise _upstream(f"discovery answered HTTP {status}")
    # OpenID Connect Discovery 1.0 §4.3: the document must name the issuer we asked.
    issuer = doc.get("issuer")
    if not isinstance(issuer, str) or issuer.rstrip("/") != config.issuer.rstrip("/"):
        raise _upstream(f"discovery names issuer {issuer!r}")
    found = {"issuer": issuer}
    for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        if not _secure_url(doc.get(name)):
            raise _upstream(f"discovery has no usable {name}")
        found[name] = doc[name]
    if _secure_url(doc.get("userinfo_endpoint")):
        found["userinfo_endpoint"] = doc["userinfo_endpoint"]
    with _cache_lock:
        _discovery_cache[config.issuer] = (time.monotonic(), found)
    return found


def _jwks(config: OidcConfig, uri: str, *, force: bool) -> tuple[list[Any], bool]:
    """The issuer's keys and whether they were fetched just now."""
    if not force:
        with _cache_lock:
            cached = _jwks_cache.get(uri)
        if cached and time.monotonic() - cached[0] < CACHE_TTL_SECONDS:
            return cached[1], False
    status, body = _request_json("GET", uri, config=config)
    keys = body.get("keys") if isinstance(body, dict) else None
    if status != 200 or not isinstance(keys, list):
        raise _upstream(f"JWKS answered HTTP {status}")
    with _cache_lock:
        _jwks_cache[uri] = (time.monotonic(), keys)
    return keys, True


def _pick_key(keys: list[Any], *, kid: str | None, alg: str) -> dict[str, Any] | None:
    kty = ALGORITHM_KEY_TYPES[alg]
    usable = [
        key
        for key in keys
        if isinstance(key, dict)
        and key.get("kty") == kty
        and key.get("use", "sig") == "sig"
        and key.get("alg", alg) == alg
        and (kty != "EC" or key.get("crv") == "P-256")
    ]
    if kid is None:
        # OIDC Core §10.1: a token may omit `kid` only when one key could have signed it.
        return usable[0] if len(usable) == 1 else None
    return next((key for key in usable if key.get("kid") == kid), None)


def _signing_key(config: OidcConfig, uri: str, *, kid: str | None, alg: str) -> jwt.PyJWK:
    keys, fresh = _jwks(config, uri, force=False)
    found = _pick_key(keys, kid=kid, alg=alg)
    if found is None and not fresh:
        # The issuer may have rotated its keys since we cached them.
        keys, _ = _jwks(config, uri, force=True)
        found = _pick_key(keys, kid=kid, alg=alg)
    if found is None:
        raise _invalid_id_token(f"no {alg} key with kid {kid!r}")
    try:
        return jwt.PyJWK(found, algorithm=alg)
    except jwt.PyJWTError as exc:
        raise _invalid_id_token(f"unusable key {kid!r}: {exc.__class__.__name__}") from None


def validate_id_token(
    config: OidcConfig, doc: Mapping[str, str], token: str, *, nonce: str
) -> dict[str, Any]:
    """Check the ID token's signature against the issuer's JWKS (RS256/ES256 by `kid`,
    fetched again once when the kid is unknown), then `iss`, `aud`/`azp`, `exp`, `iat`,
    `sub` and `nonce`, with a small leeway; return its claims. Raises
    `oidc_invalid_id_token`, and `oidc_provider_error` (upstream) when the JWKS cannot be
    fetched."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise _invalid_id_token("unreadable header") from None
    alg = header.get("alg")
    if alg not in ALGORITHM_KEY_TYPES:
        raise _invalid_id_token(f"algorithm {str(alg)[:20]!r} not allowed")
    kid = header.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise _invalid_id_token("kid is not a string")
    key = _signing_key(config, doc["jwks_uri"], kid=kid, alg=alg)
    try:
        claims = jwt.decode(
            token,
            key=key,
            algorithms=[alg],
            audience=config.client_id,
            issuer=doc["issuer"],
            leeway=LEEWAY_SECONDS,
            options={"require": REQUIRED_CLAIMS, "enforce_minimum_key_length": True},
        )
    except jwt.PyJWTError as exc:
        raise _invalid_id_token(exc.__class__.__name__) from None
    # OIDC Core §3.1.3.7 (4, 5): with several audiences, `azp` must name us.
    aud = claims["aud"]
    azp = claims.get("azp")
    if (isinstance(aud, list) and len(aud) > 1 and azp is None) or (
        azp is not None and azp != config.client_id
    ):
        raise _invalid_id_token("authorized party is not this client")
    got = claims.get("nonce")
    if not isinstance(got, str) or not hmac.compare_digest(got.encode(), nonce.encode()):
        raise _invalid_id_token("nonce mismatch")
    if not claims["sub"]:
        raise _invalid_id_token("empty subject")
    return claims


def exchange_code(
    config: OidcConfig, doc: Mapping[str, str], *, code: str, redirect_uri: str, verifier: str
) -> dict[str, Any]:
    """Trade the authorization code (with the PKCE verifier) for tokens, authenticating
    with client_secret_basic. Raises `oidc_provider_error`: not upstream when the platform
    says the code is no good (`invalid_grant`), upstream for everything else."""
    status, body = _request_json(
        "POST",
        doc["token_endpoint"],
        config=config,
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
        },
        # RFC 6749 §2.3.1: the credentials are form-encoded before they are Base64-encoded.
        auth=(quote_plus(config.client_id), quote_plus(config.client_secret)),
    )
    if status != 200:
        error = body.get("error") if isinstance(body, dict) else None
        reason = f"token endpoint answered HTTP {status} {str(error)[:40]}"
        if status == 400 and error == "invalid_grant":
            # The code expired or was used already: the applicant starts over.
            logger.info("OIDC %s", reason)
            raise OidcProviderError(MESSAGE_RETRY, upstream=False)
        raise _upstream(reason)
    if not isinstance(body, dict) or not isinstance(body.get("id_token"), str):
        raise _upstream("token response without an id_token")
    return body


def userinfo(
    config: OidcConfig, doc: Mapping[str, str], *, access_token: str, subject: str
) -> dict[str, Any]:
    """The UserInfo claims for this access token, which must be about `subject`. Raises
    `oidc_provider_error` (upstream) and `oidc_invalid_id_token` (another subject)."""
    status, body = _request_json(
        "GET",
        doc["userinfo_endpoint"],
        config=config,
        headers={"Authorization": f"Bearer {access_token}"},
    )
    if status != 200 or not isinstance(body, dict):
        raise _upstream(f"userinfo answered HTTP {status}")
    # OIDC Core §5.3.2: claims about someone else must not be used.
    if body.get("sub") != subject:
        raise _invalid_id_token("userinfo subject differs from the ID token's")
    return body


def text_claim(claims: Mapping[str, Any], name: str) -> str:
    value = claims.get(name)
    return value.strip() if isinstance(value, str) else ""
