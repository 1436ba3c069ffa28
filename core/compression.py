"""Whole text responses gzipped for a browser that accepts gzip (issue 16 item 1).

The static files come precompressed (core/staticfiles.py); the pages' data did not: the
formal page's first live snapshot carries the unit list, 52 KB of JSON that gzip makes
under 3.5 KB, on the one page where a family's seconds count. This is Django's own
GZipMiddleware, with its BREACH mitigation (random bytes in the gzip header, Django 4.2+),
applied only where it helps and never where it would hold data back:

- whole (not streaming) responses only: the event streams (SSE) must reach the page event by
  event, and gzip buffers; static files are streamed by WhiteNoise, which sends their
  precompressed copies itself;
- text only (JSON, HTML, CSV, plain text): images, PDFs and zips are compressed already;
- 1 KB and over: below that the header and the padding cost about what gzip saves.

The same for the embedded demo and behind nginx, whose own gzip is off for what it proxies
(deploy/nginx/anju.conf), so one rule decides what is compressed."""

from __future__ import annotations

from django.middleware.gzip import GZipMiddleware

TEXT_TYPES = ("application/json", "text/")
MIN_BYTES = 1024


class TextGZipMiddleware(GZipMiddleware):
    def process_response(self, request, response):
        if (
            response.streaming
            or not response.get("Content-Type", "").startswith(TEXT_TYPES)
            or len(response.content) < MIN_BYTES
        ):
            return response
        return super().process_response(request, response)
