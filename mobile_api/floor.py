"""The framework's floor, for bench/confirm_http.py: trivial views behind the project's
middleware, so that the bench measures in the same run, on the same daphne processes, what a
request costs before any work of ours, and sets the confirm's CPU against it.

Routed only when ANJU_BENCH_FLOOR=1 (settings.BENCH_FLOOR_VIEWS; off by default, never in
production): config/urls.py includes `urlpatterns` below then.

- `bench/floor/`: a plain Django view, anonymous (no session query): the floor of issue 14.
- `bench/floor/api/`: a DRF view for a logged-in applicant, as the confirm is (session
  authentication with its CSRF check, `IsApplicant`, the JSON renderer): the floor plus the
  login (one query, accounts/sessions.py) and DRF. GET, so no CSRF token is needed.
"""

from __future__ import annotations

from django.http import JsonResponse
from django.urls import path
from django.views.decorators.http import require_GET
from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from mobile_api.auth import IsApplicant


@require_GET
def floor(request):
    return JsonResponse({"ok": True})


class FloorApi(APIView):
    permission_classes = [IsApplicant]

    @extend_schema(exclude=True)
    def get(self, request):
        return Response({"ok": True, "family": request.user.applicant.family.pk})


urlpatterns = [
    path("bench/floor/", floor, name="bench-floor"),
    path("bench/floor/api/", FloorApi.as_view(), name="bench-floor-api"),
]
