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
import logging
import secrets
from collections.abc import Mapping, MutableMapping
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from django.utils import timezone

from accounts.identity.base import VerifiedIdentity
from accounts.identity.oidc_protocol import (
    LEEWAY_SECONDS,
    MESSAGE_RETRY,
    OidcConfig,
    OidcError,
    OidcProviderError,
    discovery,
    exchange_code,
    oidc_cache_clear,
    text_claim,
    userinfo,
    validate_id_token,
)

logger = logging.getLogger("anju.identity.oidc")

__all__ = [
    "LEEWAY_SECONDS",
    "STORE_KEY",
    "OidcConfig",
    "OidcError",
    "OidcProvider",
    "OidcProviderError",
    "oidc_cache_clear",
]

STORE_KEY = "oidc_pending"
PENDING_TTL_SECONDS = 600
# A few tabs may start a login at once; more than this and the oldest is forgotten.
PENDING_MAX = 5


def _disabled() -> OidcError:
    return OidcError(
        "oidc_disabled", "暂未开通广东省统一身份认证平台登录，请使用其他方式登录", kind="forbidden"
    )


def _state_mismatch() -> OidcError:
    return OidcError("oidc_state_mismatch", "登录请求已失效，请返回登录页重新登录")


def _missing_claim(claim: str) -> OidcError:
    logger.warning("OIDC identity without the %r claim", claim)
    return OidcError("oidc_missing_claim", "统一身份认证平台未提供您的身份证号码，请联系工作人员")


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
        doc = discovery(config)
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

        doc = discovery(config)
        tokens = exchange_code(
            config,
            doc,
            code=code,
            redirect_uri=pending["redirect_uri"],
            verifier=pending["code_verifier"],
        )
        claims = validate_id_token(config, doc, tokens["id_token"], nonce=pending["nonce"])
        id_number = text_claim(claims, config.id_number_claim)
        real_name = text_claim(claims, config.name_claim)
        access_token = tokens.get("access_token")
        if (
            not id_number
            and "userinfo_endpoint" in doc
            and isinstance(access_token, str)
            and access_token
        ):
            # What the signed ID token says wins; UserInfo only fills gaps.
            info = userinfo(config, doc, access_token=access_token, subject=claims["sub"])
            id_number = text_claim(info, config.id_number_claim)
            real_name = real_name or text_claim(info, config.name_claim)
        if not id_number:
            raise _missing_claim(config.id_number_claim)
        return VerifiedIdentity(
            provider=self.name, subject=claims["sub"], id_number=id_number, real_name=real_name
        )
