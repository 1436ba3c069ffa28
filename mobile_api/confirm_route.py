"""确认正选 ahead of Django (issue 14, item 4): the confirm's plain cases on the event loop.

On selection day the confirm is the one request that comes in a burst — every family of a
session at the same second — and most answers are the same two: the claim won (201) or the
unit was already taken (409). Through Django each costs a thread hand-off per sync
middleware and view, DRF's request wrapping and an ORM compile per query, several times the
work of the rules themselves (docs/BENCHMARKS.md). This route answers those two cases on the
event loop with the same checks and the same queries, compiled once (core/adb.py), and hands
every other request to Django unchanged — the body replayed as it came:

- the path, method, content type and JSON body must be the confirm's plain shape
  (`{"unit_id": <int>, "idempotency_key": "<8-64 of A-Za-z0-9_->"}`), else Django;
- the host must be allowed and CSRF must pass — Django's own CsrfViewMiddleware (token,
  Origin, Referer on HTTPS) run on a Django request built from the scope — else Django,
  which answers the 403 in the API's body;
- the session must be an applicant's active login (accounts.sessions.active_applicant_login:
  Django's session hash and backend checks, the device session still active), else Django
  (401, the replaced-device answer, staff…);
- selection.allocation.selection_confirm_plain then answers the win or the loss, or None
  for every other case (a repeat, a phase error, a unit not in the cart…), which Django's
  view answers.

The answers are the view's own: its serializers, its JSON renderer, the API's error body,
and the response headers Django's middleware adds (security headers, X-Frame-Options,
the language, Vary). tests/mobile_api/test_confirm_route.py compares them with Django's answer to the
same request. Off with CONFIRM_ROUTE=0, and off on SQLite (the demo's embedded default).
"""

from __future__ import annotations

import functools
import io
import re

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.core.handlers.asgi import ASGIRequest
from django.middleware.clickjacking import XFrameOptionsMiddleware
from django.middleware.csrf import CsrfViewMiddleware
from django.middleware.locale import LocaleMiddleware
from django.middleware.security import SecurityMiddleware
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from core import adb, jsonsafe
from core.errors import DomainError
from mobile_api.errors import KIND_STATUS, error_body

PATH = re.compile(r"/api/v1/selection/([1-9][0-9]{0,15})/confirm/")
KEY = re.compile(r"[A-Za-z0-9_-]{8,64}")
MAX_ID = 2**53


class _Csrf(CsrfViewMiddleware):
    """Django's CSRF checks, answering only whether they pass (Django answers a failure)."""

    def _accept(self, request):
        return None

    def _reject(self, request, reason):
        return False


def _csrf_exempt_no():  # the "view" CsrfViewMiddleware.process_view looks at: not exempt
    return None


_csrf = _Csrf(lambda request: None)
_security = SecurityMiddleware(lambda request: None)
_frames = XFrameOptionsMiddleware(lambda request: None)
_locale = LocaleMiddleware(lambda request: None)
_renderer = JSONRenderer()


def _csp_middleware():
    """django-csp's middleware when the project runs it: its header on this answer too."""
    if "csp.middleware.CSPMiddleware" not in settings.MIDDLEWARE:
        return None
    from csp.middleware import CSPMiddleware

    return CSPMiddleware(lambda request: None)


_csp = _csp_middleware()


@functools.cache
def _allocation_fields():
    """The view's AllocationSerializer, its fields bound once (to_representation keeps no
    state; a new instance per answer deep-copies every field)."""
    from mobile_api.selection_common import AllocationSerializer

    return AllocationSerializer()


def _plain_body(request) -> tuple[int, str] | None:
    if request.content_type != "application/json":
        return None
    try:
        data = jsonsafe.loads(request.body)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    unit_id, key = data.get("unit_id"), data.get("idempotency_key")
    if type(unit_id) is not int or not 1 <= unit_id <= MAX_ID:
        return None
    if type(key) is not str or not KEY.fullmatch(key):
        return None
    return unit_id, key


def _response(request, status: int, data: dict):
    """The view's response, as Django's middleware would send it."""
    response = Response(data, status=status)
    response.accepted_renderer = _renderer
    response.accepted_media_type = _renderer.media_type
    response.renderer_context = {}
    response.render()
    response["Content-Length"] = str(len(response.content))  # as CommonMiddleware sets it
    response["Allow"] = "POST, OPTIONS"
    _locale.process_response(request, response)  # Vary: Accept-Language, Content-Language
    patch_vary_headers(response, ("Cookie",))  # the session was read
    _security.process_response(request, response)
    _frames.process_response(request, response)
    if _csp is not None:
        _csp.process_request(request)
        _csp.process_response(request, response)
    return response


class ConfirmRoute:
    """ASGI: the confirm's plain cases here, everything else to `app` (Django)."""

    def __init__(self, app, enabled=None):
        self.app = app
        self.enabled = enabled or (lambda: settings.CONFIRM_ROUTE and adb.available())

    async def __call__(self, scope, receive, send):
        if (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or scope.get("root_path")
            or not PATH.fullmatch(scope["path"])
            or not self.enabled()
        ):
            return await self.app(scope, receive, send)
        chunks, messages = [], []
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break  # the client went away: Django's handler sees the same
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        response = await self._answer(scope, b"".join(chunks))
        if response is None:
            return await self.app(scope, _replay(messages, receive), send)
        await self.app.send_response(response, send)

    async def _answer(self, scope, body: bytes):
        request = ASGIRequest(scope, io.BytesIO(body))
        _locale.process_request(request)
        try:
            request.get_host()
        except DisallowedHost:
            return None
        _csrf.process_request(request)
        if _csrf.process_view(request, _csrf_exempt_no, (), {}) is not None:
            return None
        plain = _plain_body(request)
        if plain is None:
            return None
        from accounts.sessions import active_applicant_login
        from mobile_api.selection_common import _server_time
        from selection.allocation import selection_confirm_plain

        unit_id, key = plain
        round_id = int(PATH.fullmatch(scope["path"]).group(1))
        now = timezone.now()
        async with adb.connection() as conn:
            applicant = await active_applicant_login(
                conn, request.COOKIES.get(settings.SESSION_COOKIE_NAME), now=now
            )
            if applicant is None:
                return None
            try:
                result = await selection_confirm_plain(
                    conn,
                    applicant=applicant,
                    round_id=round_id,
                    unit_id=unit_id,
                    idempotency_key=key,
                    now=now,
                )
            except DomainError as exc:
                response = _response(
                    request, KIND_STATUS[exc.kind], error_body(exc.code, exc.message, exc.fields)
                )
                if exc.retry_after:  # Busy: a lock wait ran out (503), as the view answers
                    response["Retry-After"] = str(exc.retry_after)
                return response
        if result is None:
            return None
        answered = timezone.now()
        return _response(
            request,
            201,
            {**_allocation_fields().to_representation(result.allocation), **_server_time(answered)},
        )


def _replay(messages: list[dict], receive):
    """The request's messages again, then the connection's own (its disconnect)."""
    pending = list(messages)

    async def replayed():
        if pending:
            return pending.pop(0)
        return await receive()

    return replayed
