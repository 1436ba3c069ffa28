"""config.urls plus views that fail on purpose in each area (tests/core/test_error_pages.py);
the handlers are config.urls' own."""

from django.core.exceptions import PermissionDenied, SuspiciousOperation
from django.urls import path

from config.urls import handler400, handler403, handler404, handler500  # noqa: F401
from config.urls import urlpatterns as site


def bad(request):
    raise SuspiciousOperation("a request the site cannot read")


def forbidden(request):
    raise PermissionDenied


def boom(request):
    raise RuntimeError("a bug")


urlpatterns = [
    *(
        path(f"{area}_fail/{name}/", view)
        for area in ("h5/", "admin/", "api/v1/")
        for name, view in (("400", bad), ("403", forbidden), ("500", boom))
    ),
    *site,
]
