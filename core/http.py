"""Responses and checks shared by the interface layers (the API, the H5 pages, the staff
admin)."""

from __future__ import annotations

from django.http import HttpResponse
from django.utils.http import url_has_allowed_host_and_scheme

HOME_PATH = "/h5/"


def safe_next(next_url: str) -> str:
    """`next_url` when it is a path on this site, else the H5 home page: only "/…", never
    "//host" or "/\\host" (which browsers read as another host), nor a scheme. For every
    login that comes back to a page (the H5 login page, the platform's OIDC login)."""
    if (
        not next_url.startswith("/")
        or next_url.startswith("//")
        or any(c == "\\" or c.isspace() for c in next_url)
        or not url_has_allowed_host_and_scheme(next_url, allowed_hosts=None)
    ):
        return HOME_PATH
    return next_url


def private_image_response(data: bytes, *, content_type: str, filename: str) -> HttpResponse:
    """A private image (a bank-card photo): never cached, never sniffed, never run as a page."""
    response = HttpResponse(data, content_type=content_type)
    response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Disposition"] = f'inline; filename="{filename}"'
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


def private_zip_response(data: bytes, *, filename: str, ascii_filename: str) -> HttpResponse:
    """A private download (an evidence package): an attachment named `filename` (may be
    Chinese: RFC 6266 `filename*`) with `ascii_filename` for clients that cannot read it,
    never cached, never sniffed."""
    from urllib.parse import quote

    response = HttpResponse(data, content_type="application/zip")
    response["Content-Disposition"] = (
        f"attachment; filename=\"{ascii_filename}\"; filename*=UTF-8''{quote(filename)}"
    )
    response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response
