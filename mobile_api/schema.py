"""OpenAPI pieces shared by every operation: the one error body."""

from __future__ import annotations

import drf_spectacular.openapi
from django.conf import settings
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, inline_serializer
from rest_framework import serializers

ErrorSerializer = inline_serializer(
    name="Error",
    fields={
        "error": inline_serializer(
            name="ErrorDetail",
            fields={
                "code": serializers.CharField(help_text="stable machine-readable code"),
                "message": serializers.CharField(help_text="Chinese message for the page"),
                "fields": serializers.DictField(
                    child=serializers.ListField(child=serializers.CharField())
                ),
            },
        )
    },
)

ERROR_RESPONSES = {
    status: OpenApiResponse(ErrorSerializer, description=description)
    for status, description in {
        400: "invalid input",
        401: "not logged in / session replaced",
        403: "forbidden / CSRF failed",
        404: "no such resource, or not the caller's (the same answer)",
        409: "refused by a rule of the current state (the code says which)",
        415: "unsupported content type of the request body",
        429: "throttled",
        503: "busy (a lock not taken in time) or a provider unreachable; nothing changed",
    }.items()
}


def path_enum(name: str, values, description: str = "") -> OpenApiParameter:
    """A path parameter with a fixed set of values (cart kinds, declaration phases, ...)."""
    return OpenApiParameter(
        name, str, OpenApiParameter.PATH, enum=list(values), description=description
    )


class IsoDateTimeField(serializers.DateTimeField):
    """A timestamp exactly as Python's `isoformat()` writes it (what the pages have always
    been sent), rather than DRF's reformatting into the local zone."""

    def to_representation(self, value):
        if value is None or isinstance(value, str):
            return value
        return value.isoformat()


class ServerTimeMsField(serializers.IntegerField):
    """The server's clock in milliseconds when the answer was made (pages sync on it)."""

    def __init__(self, **kwargs):
        kwargs.update(source="*", read_only=True)
        super().__init__(**kwargs)

    def to_representation(self, value):
        return int(timezone.now().timestamp() * 1000)


def link(operation_id: str, description: str = "", request_body=None, **parameters) -> dict:
    """An OpenAPI link: where an answer leads next, with the values it carries (runtime
    expressions such as "$response.body#/id" or "$request.path.round_id"). Stateful
    fuzzing (schemathesis) follows them through the main flows."""
    found = {"operationId": operation_id, "parameters": parameters}
    if request_body is not None:
        found["requestBody"] = request_body
    if description:
        found["description"] = description
    return found


class AutoSchema(drf_spectacular.openapi.AutoSchema):
    """Nested `InputSerializer` / `OutputSerializer` classes (one per view, house style) are
    named after their view in the schema, so two views' inputs never share a component.

    A view may declare `openapi_links = {"get": {200: {"Name": link(...)}}}`: the links of
    its responses (drf-spectacular has no decorator for them)."""

    def _get_response_bodies(self, direction="response"):
        bodies = super()._get_response_bodies(direction)
        declared = getattr(self.view, "openapi_links", {}).get(self.method.lower(), {})
        for status_code, links in declared.items():
            if str(status_code) in bodies:
                bodies[str(status_code)]["links"] = links
        return bodies

    def get_serializer_name(self, serializer, direction):
        klass = serializer.__class__
        if "." in klass.__qualname__:
            return klass.__qualname__.replace(".", "")
        return super().get_serializer_name(serializer, direction)


class SessionCookieScheme(OpenApiAuthenticationExtension):
    target_class = "mobile_api.auth.SessionAuthentication"
    name = "cookieAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "cookie", "name": settings.SESSION_COOKIE_NAME}
