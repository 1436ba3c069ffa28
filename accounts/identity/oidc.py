"""OIDC authorization-code adapter for the province's unified identity platform
(广东省统一身份认证平台), on authlib.

authlib does the protocol: its `OAuth2Session` (on requests) builds the authorization URL with the
PKCE (S256) challenge and exchanges the code at the token endpoint (client_secret_basic, the
verifier, the token response and its errors); joserfc (authlib's JOSE library) verifies the
ID token's signature, and authlib's `CodeIDToken` checks its claims (`iss`, `aud`, `azp`,
`exp`, `iat`, `nonce`, `at_hash`) with a leeway for clock skew. What stays here is ours: the
pending login kept in the caller's store (the browser session: state, nonce, verifier and
redirect URI for ten minutes, each state usable once), which keys the issuer may sign with
(asymmetric only, chosen by `kid`; the JWKS fetched again once for an unknown one), the
discovery document's trust rules, and the mapping of the claims to a VerifiedIdentity. When
the ID token lacks the ID-number claim, as a standard provider does for profile claims in
the code flow, the UserInfo endpoint fills it in.

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
import logging
import secrets
import threading
import time
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote_plus, urlsplit

import requests
from authlib.integrations.base_client import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from authlib.oidc.core import CodeIDToken
from django.conf import settings
from django.utils import timezone
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import import_key

from accounts.identity.base import VerifiedIdentity
from core.errors import DomainError

logger = logging.getLogger("anju.identity.oidc")

LEEWAY_SECONDS = 30
CACHE_TTL_SECONDS = 3600
# Asymmetric algorithms only: `none` and HS* (which would make the client secret a signing
# key anyone holding it could use) are refused by joserfc before any key is looked up.
ALGORITHM_KEY_TYPES = {"RS256": "RSA", "ES256": "EC"}
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
STORE_KEY = "oidc_pending"
PENDING_TTL_SECONDS = 600
# A few tabs may start a login at once; more than this and the oldest is forgotten.
PENDING_MAX = 5

MESSAGE_RETRY = "统一身份认证未能完成，请返回登录页重新登录"


# ------------------------------------------------------------------------------- errors


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


def _disabled() -> OidcError:
    return OidcError(
        "oidc_disabled", "暂未开通广东省统一身份认证平台登录，请使用其他方式登录", kind="forbidden"
    )


def _state_mismatch() -> OidcError:
    return OidcError("oidc_state_mismatch", "登录请求已失效，请返回登录页重新登录")


def _missing_claim(claim: str) -> OidcError:
    logger.warning("OIDC identity without the %r claim", claim)
    return OidcError("oidc_missing_claim", "统一身份认证平台未提供您的身份证号码，请联系工作人员")


# ------------------------------------------------------------------------ configuration


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


# --------------------------------------------------------------------- HTTP and caches

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


def _client_secret_basic(auth: Any, method: str, uri: str, headers: Any, body: Any) -> tuple:
    # RFC 6749 §2.3.1: the credentials are form-encoded before they are Base64-encoded
    # (authlib's own client_secret_basic skips that step; a secret with "+", "/" or "&"
    # then fails at a conforming server).
    text = f"{quote_plus(auth.client_id)}:{quote_plus(auth.client_secret)}"
    headers["Authorization"] = "Basic " + base64.b64encode(text.encode("ascii")).decode("ascii")
    return uri, headers, body


def _http_client(config: OidcConfig) -> OAuth2Session:
    """authlib's OAuth2 client (a requests.Session) for one begin or complete. (Its httpx
    client is deprecated in authlib 1.9 in favour of httpx2, which we do not have.)"""
    client = OAuth2Session(
        client_id=config.client_id,
        client_secret=config.client_secret,
        token_endpoint_auth_method="client_secret_basic",  # noqa: S106 (a method's name)
        scope=config.scopes,
        code_challenge_method="S256",
        default_timeout=config.timeout,
    )
    # No redirects: the platform's endpoints answer directly; a redirect is a failure
    # (requests.TooManyRedirects), never a hop to wherever it points with our credentials.
    client.max_redirects = 0
    client.register_client_auth_method(("client_secret_basic", _client_secret_basic))
    return client


def _get_json(client: OAuth2Session, url: str, *, bearer: str = "") -> tuple[int, Any]:
    """One GET to the platform, with an access token when `bearer` is given: (status, parsed
    JSON body or None). authlib's own token handling is bypassed (withhold_token): these
    calls need none, or exactly the one just received, whatever its lifetime."""
    headers = {"Accept": "application/json"}
    if bearer:
        headers["Authorization"] = f"Bearer {bearer}"
    try:
        response = client.request("GET", url, headers=headers, withhold_token=True)
    except requests.RequestException as exc:
        raise _upstream(f"GET {url}: {exc.__class__.__name__}") from None
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


def _discovery(config: OidcConfig, client: OAuth2Session) -> dict[str, str]:
    """The issuer's endpoints from its discovery document, cached for an hour. Raises
    `oidc_provider_error` (upstream) when it is unreachable, malformed, names another issuer
    or points anywhere but https (or the loopback interface)."""
    with _cache_lock:
        cached = _discovery_cache.get(config.issuer)
    if cached and time.monotonic() - cached[0] < CACHE_TTL_SECONDS:
        return cached[1]
    if not _secure_url(config.issuer):
        raise _upstream(f"issuer {config.issuer!r} is not an https URL")
    status, doc = _get_json(client, config.issuer.rstrip("/") + "/.well-known/openid-configuration")
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


# ---------------------------------------------------------------------------- ID token


def _jwks(client: OAuth2Session, uri: str, *, force: bool) -> tuple[list[Any], bool]:
    """The issuer's keys and whether they were fetched just now."""
    if not force:
        with _cache_lock:
            cached = _jwks_cache.get(uri)
        if cached and time.monotonic() - cached[0] < CACHE_TTL_SECONDS:
            return cached[1], False
    status, body = _get_json(client, uri)
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


def _signing_key(client: OAuth2Session, uri: str, header: Mapping[str, Any]) -> Any:
    """The issuer's key for this token header (joserfc calls this once the algorithm is one
    we accept), fetching the JWKS again once when the kid is unknown: the issuer may have
    rotated its keys since we cached them."""
    alg, kid = header["alg"], header.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise _invalid_id_token("kid is not a string")
    keys, fresh = _jwks(client, uri, force=False)
    found = _pick_key(keys, kid=kid, alg=alg)
    if found is None and not fresh:
        keys, _ = _jwks(client, uri, force=True)
        found = _pick_key(keys, kid=kid, alg=alg)
    if found is None:
        raise _invalid_id_token(f"no {alg} key with kid {kid!r}")
    try:
        return import_key(found)
    except (JoseError, ValueError, TypeError) as exc:
        raise _invalid_id_token(f"unusable key {kid!r}: {exc.__class__.__name__}") from None


def _validate_id_token(
    config: OidcConfig,
    client: OAuth2Session,
    doc: Mapping[str, str],
    token: str,
    *,
    nonce: str,
    access_token: str | None,
) -> dict[str, Any]:
    """The ID token's claims once joserfc has verified its signature (RS256/ES256 only) and
    authlib's CodeIDToken its claims. Raises `oidc_invalid_id_token`, and
    `oidc_provider_error` (upstream) when the JWKS cannot be fetched."""
    try:
        decoded = jwt.decode(
            token,
            lambda obj: _signing_key(client, doc["jwks_uri"], obj.headers()),
            algorithms=list(ALGORITHM_KEY_TYPES),
        )
        claims = CodeIDToken(
            decoded.claims,
            decoded.header,
            options={
                "iss": {"essential": True, "value": doc["issuer"]},
                "aud": {"essential": True, "value": config.client_id},
                "sub": {"essential": True},
            },
            params={"nonce": nonce, "client_id": config.client_id, "access_token": access_token},
        )
        claims.validate(leeway=LEEWAY_SECONDS)
    except (JoseError, ValueError) as exc:
        raise _invalid_id_token(exc.__class__.__name__) from None
    return dict(claims)


# ------------------------------------------------------------------------ pending logins


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


def _text_claim(claims: Mapping[str, Any], name: str) -> str:
    value = claims.get(name)
    return value.strip() if isinstance(value, str) else ""


# ------------------------------------------------------------------------------ provider


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
        with _http_client(config) as client:
            doc = _discovery(config, client)
            now = now or timezone.now()
            verifier = secrets.token_urlsafe(64)  # 86 characters; RFC 7636 allows 43 to 128
            nonce = secrets.token_urlsafe(32)
            url, state = client.create_authorization_url(
                doc["authorization_endpoint"],
                state=secrets.token_urlsafe(32),
                code_verifier=verifier,
                nonce=nonce,
                redirect_uri=redirect_uri,
            )
        pending = _live_pending(store, now)
        pending[state] = {
            "nonce": nonce,
            "code_verifier": verifier,
            "redirect_uri": redirect_uri,
            "expires_at": int(now.timestamp()) + PENDING_TTL_SECONDS,
        }
        newest = sorted(pending.items(), key=lambda item: item[1]["expires_at"])[-PENDING_MAX:]
        store[STORE_KEY] = dict(newest)
        return url

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

        with _http_client(config) as client:
            doc = _discovery(config, client)
            tokens = self._exchange(client, doc, code=code, pending=pending)
            access_token = tokens.get("access_token")
            if not isinstance(access_token, str):
                access_token = None
            claims = _validate_id_token(
                config,
                client,
                doc,
                tokens["id_token"],
                nonce=pending["nonce"],
                access_token=access_token,
            )
            id_number = _text_claim(claims, config.id_number_claim)
            real_name = _text_claim(claims, config.name_claim)
            if not id_number and "userinfo_endpoint" in doc and access_token:
                # What the signed ID token says wins; UserInfo only fills gaps.
                info = self._userinfo(client, doc, access_token=access_token, subject=claims["sub"])
                id_number = _text_claim(info, config.id_number_claim)
                real_name = real_name or _text_claim(info, config.name_claim)
        if not id_number:
            raise _missing_claim(config.id_number_claim)
        return VerifiedIdentity(
            provider=self.name, subject=claims["sub"], id_number=id_number, real_name=real_name
        )

    @staticmethod
    def _exchange(
        client: OAuth2Session, doc: Mapping[str, str], *, code: str, pending: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Trade the code (with the PKCE verifier) for tokens through authlib. Raises
        `oidc_provider_error`: not upstream when the platform says the code is no good
        (`invalid_grant`), upstream for everything else."""
        try:
            tokens = client.fetch_token(
                doc["token_endpoint"],
                grant_type="authorization_code",
                code=code,
                redirect_uri=pending["redirect_uri"],
                code_verifier=pending["code_verifier"],
            )
        except OAuthError as exc:
            reason = f"token endpoint refused: {str(exc.error)[:40]}"
            if exc.error == "invalid_grant":
                # The code expired or was used already: the applicant starts over.
                logger.info("OIDC %s", reason)
                raise OidcProviderError(MESSAGE_RETRY, upstream=False) from None
            raise _upstream(reason) from None
        except (requests.RequestException, ValueError) as exc:
            raise _upstream(f"token endpoint: {exc.__class__.__name__}") from None
        if not isinstance(tokens.get("id_token"), str):
            raise _upstream("token response without an id_token")
        return tokens

    @staticmethod
    def _userinfo(
        client: OAuth2Session, doc: Mapping[str, str], *, access_token: str, subject: str
    ) -> dict[str, Any]:
        """The UserInfo claims for this access token, which must be about `subject`. Raises
        `oidc_provider_error` (upstream) and `oidc_invalid_id_token` (another subject)."""
        status, body = _get_json(client, doc["userinfo_endpoint"], bearer=access_token)
        if status != 200 or not isinstance(body, dict):
            raise _upstream(f"userinfo answered HTTP {status}")
        # OIDC Core §5.3.2: claims about someone else must not be used.
        if body.get("sub") != subject:
            raise _invalid_id_token("userinfo subject differs from the ID token's")
        return body
