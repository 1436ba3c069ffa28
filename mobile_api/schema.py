"""OpenAPI pieces shared by every operation: the one error body."""

from __future__ import annotations

import drf_spectacular.openapi
from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiResponse, inline_serializer
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
        429: "throttled",
    }.items()
}


class AutoSchema(drf_spectacular.openapi.AutoSchema):
    """Nested `InputSerializer` / `OutputSerializer` classes (one per view, house style) are
    named after their view in the schema, so two views' inputs never share a component."""

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
