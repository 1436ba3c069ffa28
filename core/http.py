"""Responses shared by the interface layers (the API and the staff admin)."""

from __future__ import annotations

from django.http import HttpResponse


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
