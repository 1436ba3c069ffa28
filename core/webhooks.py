"""Both sides of a server-to-server notification: sending, shared by the development
providers (signing/face/dev.py, signing/lease/payments/dev.py), which act as the provider's
server; receiving, shared by our webhooks (the face callback and the payment notification),
which read a bounded raw body before anything else looks at it."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

import httpx
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest
from django.http.request import RawPostDataException

logger = logging.getLogger("anju.webhooks")


def webhook_post(
    *,
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    transport: httpx.BaseTransport | None,
    timeout: float,
    what: str,
) -> bool:
    """POST `body` as JSON to `url` and say whether it answered 2xx. Never through a proxy
    from the environment (the receiver is our own server); `transport` lets tests route it
    into the app. Failures are logged with `what`, never raised: the provider's page goes on
    and our side can still ask for the result."""
    try:
        with httpx.Client(timeout=timeout, transport=transport, trust_env=False) as client:
            response = client.post(
                url, content=body, headers={**headers, "Content-Type": "application/json"}
            )
    except httpx.HTTPError as exc:
        logger.warning("%s to %s failed: %s", what, url, type(exc).__name__)
        return False
    if not response.is_success:
        logger.warning("%s to %s answered HTTP %s", what, url, response.status_code)
    return response.is_success


def header_value(headers: Mapping[str, str], name: str) -> str:
    """A request header by name, case-insensitively, stripped; "" when absent."""
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return str(value).strip()
    return ""


def webhook_body(request: HttpRequest, *, max_bytes: int, junk: Callable[[], Exception]) -> bytes:
    """The raw body of a provider's notification, which its signature covers. A declared
    length over `max_bytes` is refused unread, and so is a body that turns out longer, one
    over Django's own limit or one already consumed: `junk()` is raised, the refusal for
    something no provider sends (a notification is a few kilobytes), which the webhook
    answers without recording anything."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = max_bytes + 1
    if length > max_bytes:
        raise junk()
    try:
        body = request.body
    except (RequestDataTooBig, RawPostDataException) as exc:
        raise junk() from exc
    if len(body) > max_bytes:
        raise junk()
    return body
