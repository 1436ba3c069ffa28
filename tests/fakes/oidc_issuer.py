"""A fake OIDC issuer for tests, listening on 127.0.0.1 in a background thread.

It serves discovery, JWKS, an authorization endpoint (which "logs the user in" at once and
redirects back with a code), a token endpoint that checks client_secret_basic, the code (once
only), the redirect URI and the PKCE verifier before it signs an ID token, and UserInfo.
Tests steer it through plain attributes: `identity`, `claims_update`, `header_update`,
`mint`, `token_response`, `authorize_error`, `discovery_update`, `userinfo_claims`.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote_plus, urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

DROP = object()  # a value in claims_update / header_update that removes the entry


def new_key(alg: str = "RS256"):
    if alg == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@functools.cache
def shared_key(alg: str = "RS256"):
    """One key per algorithm for the whole run: RSA key generation is the slow part."""
    return new_key(alg)


def public_jwk(key, *, kid: str, alg: str) -> dict[str, Any]:
    to_jwk = ECAlgorithm.to_jwk if alg == "ES256" else RSAAlgorithm.to_jwk
    return {**to_jwk(key.public_key(), as_dict=True), "kid": kid, "alg": alg, "use": "sig"}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _apply(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    merged = {**base, **update}
    return {name: value for name, value in merged.items() if value is not DROP}


class FakeIssuer:
    def __init__(
        self,
        *,
        alg: str = "RS256",
        client_id: str = "anju-test-client",
        client_secret: str = "test secret/with+form&chars 0123456789abcdef",
    ) -> None:
        self.alg = alg
        self.client_id = client_id
        self.client_secret = client_secret
        self.kid = "key-1"
        self.key = shared_key(alg)
        self.jwks: list[dict[str, Any]] = [public_jwk(self.key, kid=self.kid, alg=alg)]
        # The person who logs in at the authorization endpoint.
        self.identity: dict[str, Any] = {"sub": "gd-0001", "id_card_no": "", "name": "测试"}
        self.claims_update: dict[str, Any] = {}
        self.header_update: dict[str, Any] = {}
        self.mint: Callable[[dict[str, Any], dict[str, Any]], str] | None = None
        self.token_response: tuple[int, Any] | None = None
        self.authorize_error: str | None = None
        self.discovery_update: dict[str, Any] = {}
        self.userinfo_claims: dict[str, Any] = {}
        self.hits: Counter[str] = Counter()
        self.authorize_requests: list[dict[str, str]] = []
        self._codes: dict[str, dict[str, str]] = {}
        self._access_tokens: dict[str, str] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> FakeIssuer:
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's naming)
                issuer._handle(self, "GET")

            def do_POST(self):  # noqa: N802
                issuer._handle(self, "POST")

            def log_message(self, format, *args):  # noqa: A002 (quiet test output)
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        assert self._thread is not None
        self._thread.join()
        self._server = None

    # -- test helpers ------------------------------------------------------------------------

    def rotate_key(self, kid: str = "key-2") -> None:
        """Replace the signing key; the JWKS now holds only the new one."""
        self.kid = kid
        self.key = new_key(self.alg)
        self.jwks = [public_jwk(self.key, kid=kid, alg=self.alg)]

    def sign(self, claims: dict[str, Any], header: dict[str, Any], key=None, alg=None) -> str:
        extra = {name: value for name, value in header.items() if name not in ("alg", "typ")}
        return jwt.encode(claims, key or self.key, algorithm=alg or self.alg, headers=extra)

    # -- endpoints ---------------------------------------------------------------------------

    def _handle(self, request: BaseHTTPRequestHandler, method: str) -> None:
        parts = urlsplit(request.path)
        with self._lock:
            self.hits[parts.path] += 1
        routes = {
            ("GET", "/.well-known/openid-configuration"): self._discovery,
            ("GET", "/jwks"): self._jwks,
            ("GET", "/authorize"): self._authorize,
            ("POST", "/token"): self._token,
            ("GET", "/userinfo"): self._userinfo,
        }
        handler = routes.get((method, parts.path))
        if handler is None:
            self._send(request, 404, {"error": "not_found"})
            return
        handler(request, parse_qs(parts.query))

    def _send(
        self,
        request: BaseHTTPRequestHandler,
        status: int,
        body: Any,
        headers: dict[str, str] | None = None,
    ) -> None:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        request.send_response(status)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(raw)))
        for name, value in (headers or {}).items():
            request.send_header(name, value)
        request.end_headers()
        request.wfile.write(raw)

    def _discovery(self, request, query) -> None:
        doc = {
            "issuer": self.url,
            "authorization_endpoint": f"{self.url}/authorize",
            "token_endpoint": f"{self.url}/token",
            "jwks_uri": f"{self.url}/jwks",
            "userinfo_endpoint": f"{self.url}/userinfo",
            "response_types_supported": ["code"],
            "id_token_signing_alg_values_supported": [self.alg],
            "token_endpoint_auth_methods_supported": ["client_secret_basic"],
            "code_challenge_methods_supported": ["S256"],
        }
        self._send(request, 200, _apply(doc, self.discovery_update))

    def _jwks(self, request, query) -> None:
        self._send(request, 200, {"keys": self.jwks})

    def _authorize(self, request, query) -> None:
        params = {name: values[0] for name, values in query.items()}
        self.authorize_requests.append(params)
        valid = (
            params.get("response_type") == "code"
            and params.get("client_id") == self.client_id
            and params.get("code_challenge_method") == "S256"
            and params.get("code_challenge")
            and params.get("redirect_uri")
        )
        if not valid:
            self._send(request, 400, {"error": "invalid_request"})
            return
        if self.authorize_error:
            answer = {"error": self.authorize_error, "state": params.get("state", "")}
        else:
            code = secrets.token_urlsafe(16)
            with self._lock:
                self._codes[code] = params
            answer = {"code": code, "state": params.get("state", "")}
        location = f"{params['redirect_uri']}?{urlencode(answer)}"
        self._send(request, 302, b"", {"Location": location})

    def _client_authenticated(self, request) -> bool:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return False
        return (unquote_plus(user), unquote_plus(password)) == (
            self.client_id,
            self.client_secret,
        )

    def _token(self, request, query) -> None:
        length = int(request.headers.get("Content-Length", "0"))
        form = {
            name: values[0]
            for name, values in parse_qs(request.rfile.read(length).decode()).items()
        }
        if self.token_response is not None:
            status, body = self.token_response
            self._send(request, status, body)
            return
        if not self._client_authenticated(request):
            self._send(request, 401, {"error": "invalid_client"})
            return
        with self._lock:
            auth = self._codes.pop(form.get("code", ""), None)  # a code works once
        verifier = form.get("code_verifier", "")
        if (
            form.get("grant_type") != "authorization_code"
            or auth is None
            or form.get("redirect_uri") != auth["redirect_uri"]
            or b64url(hashlib.sha256(verifier.encode()).digest()) != auth["code_challenge"]
        ):
            self._send(request, 400, {"error": "invalid_grant"})
            return
        now = int(time.time())
        claims = {
            "iss": self.url,
            "aud": self.client_id,
            "iat": now,
            "exp": now + 300,
            "nonce": auth.get("nonce"),
            **self.identity,
        }
        claims = _apply(claims, self.claims_update)
        header = _apply({"alg": self.alg, "typ": "JWT", "kid": self.kid}, self.header_update)
        id_token = self.mint(claims, header) if self.mint else self.sign(claims, header)
        access_token = secrets.token_urlsafe(16)
        with self._lock:
            self._access_tokens[access_token] = self.identity["sub"]
        self._send(
            request,
            200,
            {
                "access_token": access_token,
                "token_type": "Bearer",
                "expires_in": 300,
                "id_token": id_token,
            },
        )

    def _userinfo(self, request, query) -> None:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        with self._lock:
            subject = self._access_tokens.get(token)
        if subject is None:
            self._send(request, 401, {"error": "invalid_token"})
            return
        self._send(request, 200, {"sub": subject, **self.userinfo_claims})
