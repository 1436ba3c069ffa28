"""OIDC authorization-code adapter for the province's unified identity platform
(广东省统一身份认证平台).

The flow: `begin` fetches the issuer's discovery document, remembers a fresh state, nonce and
PKCE (S256) verifier in the caller's store (the browser session) for ten minutes, and returns
the authorization URL. `complete` takes the pending login named by the callback's `state`
(once only), exchanges the code at the token endpoint (client_secret_basic, with the PKCE
verifier), validates the ID token against the issuer's JWKS (RS256 or ES256 by `kid`;
signature, `iss`, `aud`/`azp`, `exp`, `iat`, `nonce`) and maps its claims to a
VerifiedIdentity. When the ID token lacks the ID-number claim, as a standard provider does
for profile claims in the code flow, the UserInfo endpoint fills it in.

Both methods call the issuer over the network, so neither may run inside a database
transaction; they touch no table themselves (the store is the session). Every failure is a
DomainError with a stable code:

- `oidc_disabled` (forbidden): no issuer or client configured.
- `oidc_state_mismatch`: the callback's state is unknown, expired or already used.
- `oidc_access_denied` (forbidden): the applicant declined at the platform.
- `oidc_provider_error`: the platform is unreachable or answered with an error or garbage
  (`upstream` says whether the platform failed or refused this particular request).
- `oidc_invalid_id_token`: the ID token fails any check.
- `oidc_missing_claim`: the platform vouched for someone but sent no ID number.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
import threading
import time
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote_plus, urlencode, urlsplit

import httpx
import jwt
from django.conf import settings
from django.utils import timezone

from accounts.identity.base import VerifiedIdentity
from core.errors import DomainError

logger = logging.getLogger("anju.identity.oidc")

STORE_KEY = "oidc_pending"
PENDING_TTL_SECONDS = 600
# A few tabs may start a login at once; more than this and the oldest is forgotten.
PENDING_MAX = 5
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


def _disabled() -> OidcError:
    return OidcError(
        "oidc_disabled", "暂未开通广东省统一身份认证平台登录，请使用其他方式登录", kind="forbidden"
    )


def _state_mismatch() -> OidcError:
    return OidcError("oidc_state_mismatch", "登录请求已失效，请返回登录页重新登录")


def _invalid_id_token(reason: str) -> OidcError:
    logger.warning("OIDC ID token refused: %s", reason)
    return OidcError("oidc_invalid_id_token", "身份认证结果校验未通过，请返回登录页重新登录")


def _missing_claim(claim: str) -> OidcError:
    logger.warning("OIDC identity without the %r claim", claim)
    return OidcError(
        "oidc_missing_claim", "统一身份认证平台未提供您的身份证号码，请联系工作人员"
    )


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
        return cls(
            issuer=conf.get("ISSUER", ""),
            client_id=conf.get("CLIENT_ID", ""),
            client_secret=conf.get("CLIENT_SECRET", ""),
            scopes=conf.get("SCOPES", "") or "openid",
            id_number_claim=conf.get("ID_NUMBER_CLAIM", "") or "id_card_no",
            name_claim=conf.get("NAME_CLAIM", "") or "name",
            timeout=float(conf.get("TIMEOUT_SECONDS", 5)),
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


def _http_client(timeout: float) -> httpx.Client:
    return httpx.Client(timeout=timeout, follow_redirects=False)


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


def _discovery(config: OidcConfig) -> dict[str, str]:
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


def _validate_id_token(
    config: OidcConfig, doc: Mapping[str, str], token: str, *, nonce: str
) -> dict[str, Any]:
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


def _exchange_code(
    config: OidcConfig, doc: Mapping[str, str], *, code: str, redirect_uri: str, verifier: str
) -> dict[str, Any]:
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


def _userinfo(
    config: OidcConfig, doc: Mapping[str, str], *, access_token: str, subject: str
) -> dict[str, Any]:
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


def _text_claim(claims: Mapping[str, Any], name: str) -> str:
    value = claims.get(name)
    return value.strip() if isinstance(value, str) else ""


def _pkce_challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _live_pending(store: Mapping[str, Any], now: datetime) -> dict[str, dict[str, Any]]:
    pending = store.get(STORE_KEY)
    if not isinstance(pending, dict):
        return {}
    stamp = now.timestamp()
    return {
        state: entry
        for state, entry in pending.items()
        if isinstance(entry, dict)
        and isinstance(entry.get("expires_at"), int)
        and entry["expires_at"] > stamp
    }


def _pending_take(
    store: MutableMapping[str, Any], state: str, now: datetime
) -> dict[str, Any] | None:
    """Remove and return the live pending login for `state`; a state works once."""
    if STORE_KEY not in store:
        return None
    live = _live_pending(store, now)
    entry = live.pop(state, None) if state else None
    if live:
        store[STORE_KEY] = live  # assigned, not mutated, so the session knows to save
    else:
        del store[STORE_KEY]
    return entry


class OidcProvider:
    """The IdentityProvider for the unified identity platform, configured from
    `settings.OIDC` when it is used (so a settings change needs no restart of this object)."""

    name = "oidc"

    def __init__(self, config: OidcConfig | None = None) -> None:
        self._config = config

    @property
    def config(self) -> OidcConfig:
        return self._config or OidcConfig.from_settings()

    def is_enabled(self) -> bool:
        return self.config.enabled

    def _enabled_config(self) -> OidcConfig:
        config = self.config
        if not config.enabled:
            raise _disabled()
        return config

    def begin(
        self,
        *,
        store: MutableMapping[str, Any],
        redirect_uri: str,
        now: datetime | None = None,
    ) -> str:
        """Start a login: fetch (or reuse) the discovery document, remember a new state,
        nonce, PKCE verifier and `redirect_uri` in `store` for ten minutes, and return the
        authorization URL to redirect the browser to.

        Raises `oidc_disabled` and `oidc_provider_error` (upstream). Calls the issuer: never
        inside a transaction.
        """
        config = self._enabled_config()
        doc = _discovery(config)
        now = now or timezone.now()
        state = secrets.token_urlsafe(32)
        nonce = secrets.token_urlsafe(32)
        verifier = secrets.token_urlsafe(64)  # 86 characters; RFC 7636 allows 43 to 128
        pending = _live_pending(store, now)
        pending[state] = {
            "nonce": nonce,
            "code_verifier": verifier,
            "redirect_uri": redirect_uri,
            "expires_at": int(now.timestamp()) + PENDING_TTL_SECONDS,
        }
        newest = sorted(pending.items(), key=lambda item: item[1]["expires_at"])[-PENDING_MAX:]
        store[STORE_KEY] = dict(newest)
        query = urlencode(
            {
                "response_type": "code",
                "client_id": config.client_id,
                "redirect_uri": redirect_uri,
                "scope": config.scopes,
                "state": state,
                "nonce": nonce,
                "code_challenge": _pkce_challenge(verifier),
                "code_challenge_method": "S256",
            }
        )
        endpoint = doc["authorization_endpoint"]
        return f"{endpoint}{'&' if '?' in endpoint else '?'}{query}"

    def complete(
        self,
        *,
        store: MutableMapping[str, Any],
        params: Mapping[str, str],
        now: datetime | None = None,
    ) -> VerifiedIdentity:
        """Finish a login from the callback's query `params`: consume the pending login its
        `state` names (whatever happens next, a state works once), exchange the code, validate
        the ID token, fetch UserInfo if the ID token lacks the ID number, and return the
        identity.

        Raises `oidc_disabled`, `oidc_state_mismatch`, `oidc_access_denied`,
        `oidc_provider_error`, `oidc_invalid_id_token` and `oidc_missing_claim`. Calls the
        issuer: never inside a transaction.
        """
        config = self._enabled_config()
        now = now or timezone.now()
        pending = _pending_take(store, params.get("state", ""), now)
        error = params.get("error")
        if error:
            # RFC 6749 §4.1.2.1. The description is the platform's text: logged, not shown.
            logger.info(
                "OIDC authorization error %r: %r",
                error[:60],
                params.get("error_description", "")[:200],
            )
            if error == "access_denied":
                raise OidcError(
                    "oidc_access_denied", "您已取消统一身份认证授权，未能登录", kind="forbidden"
                )
            if error in ("server_error", "temporarily_unavailable"):
                raise OidcProviderError(upstream=True)
            raise OidcProviderError(MESSAGE_RETRY, upstream=False)
        if pending is None:
            raise _state_mismatch()
        code = params.get("code", "")
        if not code:
            raise OidcProviderError(MESSAGE_RETRY, upstream=False)

        doc = _discovery(config)
        tokens = _exchange_code(
            config,
            doc,
            code=code,
            redirect_uri=pending["redirect_uri"],
            verifier=pending["code_verifier"],
        )
        claims = _validate_id_token(config, doc, tokens["id_token"], nonce=pending["nonce"])
        id_number = _text_claim(claims, config.id_number_claim)
        real_name = _text_claim(claims, config.name_claim)
        access_token = tokens.get("access_token")
        if (
            not id_number
            and "userinfo_endpoint" in doc
            and isinstance(access_token, str)
            and access_token
        ):
            # What the signed ID token says wins; UserInfo only fills gaps.
            info = _userinfo(config, doc, access_token=access_token, subject=claims["sub"])
            id_number = _text_claim(info, config.id_number_claim)
            real_name = real_name or _text_claim(info, config.name_claim)
        if not id_number:
            raise _missing_claim(config.id_number_claim)
        return VerifiedIdentity(
            provider=self.name, subject=claims["sub"], id_number=id_number, real_name=real_name
        )
