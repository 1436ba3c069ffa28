"""ASGI guards in front of the whole application (config/asgi.py).

`BodyLimit`: request bodies are capped before Django reads them. A Content-Length above the
cap is answered 413 at once, without calling the application; a body sent without a length
(chunked) is counted as the application reads it and refused as soon as it passes the cap.
Django's own limits (DATA_UPLOAD_MAX_MEMORY_SIZE) only apply once the whole body has been
spooled, which is how an anonymous 200 MB POST grew the server to gigabytes. Under daphne,
which receives a whole body before it starts the application, core/daphne_guard.py applies
the same cap earlier, inside Twisted; in production nginx's `client_max_body_size` refuses
first (deploy/nginx/anju.conf). This guard covers any ASGI server.

`ClientAddress`: the client's address from exactly `settings.TRUSTED_PROXY_COUNT` proxies.
Each trusted proxy appends the address it saw to X-Forwarded-For (the shipped nginx sets it
to `$remote_addr`), so the client is the N-th entry from the right; everything to its left
was written by the client and is ignored. With 0 (the demo, no proxy) the TCP peer is the
client and the header is ignored. The result replaces scope["client"], so REMOTE_ADDR (HTTP)
and scope["client"] (websockets) hold it for every reader: RequestContext, the admin's audit,
the DRF throttles (REST_FRAMEWORK NUM_PROXIES stays 0: the work is done here).
"""

from __future__ import annotations

import ipaddress
import json

# The answer's code and message, shared with mobile_api/errors.py (RequestDataTooBig).
REQUEST_TOO_LARGE = ("request_too_large", "提交的内容过大")
MALFORMED_REQUEST = ("malformed_request", "请求格式不正确")


def _body(code: str, message: str) -> bytes:
    # The API's one error body (mobile_api/errors.py error_body), built here without Django.
    return json.dumps(
        {"error": {"code": code, "message": message, "fields": {}}}, ensure_ascii=False
    ).encode()


async def _answer(send, status: int, code_message: tuple[str, str]) -> None:
    body = _body(*code_message)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                # The rest of the body is not read: the client must not reuse the connection.
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    pass


def _header(scope, name: bytes) -> bytes | None:
    values = [value for key, value in scope.get("headers", ()) if key.lower() == name]
    return b",".join(values) if values else None


class BodyLimit:
    """Refuse HTTP request bodies over `max_bytes` (a callable, read per request, so tests
    and settings overrides apply) with 413 `request_too_large` in the API's error body."""

    def __init__(self, app, max_bytes):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self.max_bytes()
        length = _header(scope, b"content-length")
        if length is not None:
            text = length.decode("latin-1").strip()
            if not text.isdigit():  # also refuses "12,12": two different lengths
                return await _answer(send, 400, MALFORMED_REQUEST)
            if int(text) > limit:
                return await _answer(send, 413, REQUEST_TOO_LARGE)
        received = 0
        started = False

        async def limited_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _TooLarge
            return message

        async def tracked_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracked_send)
        except _TooLarge:
            if not started:
                await _answer(send, 413, REQUEST_TOO_LARGE)


def client_from_forwarded(forwarded_for: str, trusted: int) -> str | None:
    """The address `trusted` proxies vouch for in an X-Forwarded-For value (None: none)."""
    entries = [item.strip() for item in forwarded_for.split(",") if item.strip()]
    if trusted <= 0 or not entries:
        return None
    candidate = entries[-trusted] if len(entries) >= trusted else entries[0]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return None


class ClientAddress:
    """Set scope["client"] from X-Forwarded-For as `trusted()` proxies wrote it (a callable,
    read per connection). HTTP and websocket scopes; anything else passes untouched."""

    def __init__(self, app, trusted):
        self.app = app
        self.trusted = trusted

    async def __call__(self, scope, receive, send):
        if scope["type"] in ("http", "websocket"):
            trusted = self.trusted()
            if trusted > 0:
                header = _header(scope, b"x-forwarded-for")
                client = (
                    client_from_forwarded(header.decode("latin-1"), trusted) if header else None
                )
                if client is not None:
                    scope = {**scope, "client": (client, 0)}
        return await self.app(scope, receive, send)
