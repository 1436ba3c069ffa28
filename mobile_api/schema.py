"""OpenAPI pieces shared by every operation: the one error body."""

from __future__ import annotations

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
