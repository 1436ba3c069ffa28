"""Whole text responses are gzipped for a browser that accepts gzip (core/compression.py):
the formal page's first snapshot with its unit list above all; never an event stream, an
image or a response too small to gain."""

from __future__ import annotations

import gzip
import json

from django.http import HttpResponse, JsonResponse, StreamingHttpResponse
from django.test import Client, RequestFactory

from core.compression import MIN_BYTES, TextGZipMiddleware
from tests.worlds import family_client

GZIP = {"HTTP_ACCEPT_ENCODING": "gzip, deflate, br"}


def test_the_snapshot_with_its_unit_list_comes_gzipped_and_reads_the_same(world):
    client = family_client(world.families[0])
    url = f"/api/v1/selection/{world.round.pk}/live/?units=all"
    plain = client.get(url)
    assert plain.status_code == 200 and "Content-Encoding" not in plain
    packed = client.get(url, **GZIP)
    assert packed.status_code == 200
    assert packed["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in packed["Vary"]
    body = json.loads(gzip.decompress(packed.content))
    assert body["units"] == plain.json()["units"] and len(body["units"]) == len(world.units)
    assert len(packed.content) < len(plain.content)


def test_a_page_is_gzipped_and_a_refusal_keeps_the_apis_error_body(world):
    packed = Client().get("/h5/login/", **GZIP)
    assert packed.status_code == 200 and packed["Content-Encoding"] == "gzip"
    assert "验证码" in gzip.decompress(packed.content).decode()
    refused = Client().get(f"/api/v1/selection/{world.round.pk}/live/", **GZIP)
    assert refused.status_code == 401
    assert json.loads(_body(refused))["error"]["code"]


def _body(response) -> bytes:
    if response.get("Content-Encoding") == "gzip":
        return gzip.decompress(response.content)
    return response.content


def _through(response, *, accept: str = "gzip"):
    request = RequestFactory().get("/", HTTP_ACCEPT_ENCODING=accept)
    return TextGZipMiddleware(lambda _request: response)(request)


BIG_JSON = {"units": [{"id": n, "name": f"1栋 {n}", "layout": "一房一厅"} for n in range(200)]}


def test_whole_json_and_html_of_a_kilobyte_or_more_are_gzipped():
    assert _through(JsonResponse(BIG_JSON))["Content-Encoding"] == "gzip"
    html = HttpResponse("<p>安居</p>" * 200, content_type="text/html; charset=utf-8")
    assert _through(html)["Content-Encoding"] == "gzip"


def test_an_event_stream_is_never_gzipped():
    """gzip would hold events back until its buffer fills: a stream goes as it is made."""
    stream = StreamingHttpResponse(
        (f"data: {n}\n\n".encode() * 100 for n in range(3)), content_type="text/event-stream"
    )
    response = _through(stream)
    assert "Content-Encoding" not in response
    assert b"".join(response.streaming_content).startswith(b"data: 0")


def test_images_small_answers_and_browsers_without_gzip_are_left_as_they_are():
    png = HttpResponse(b"\x89PNG" + bytes(4000), content_type="image/png")
    assert "Content-Encoding" not in _through(png)
    small = JsonResponse({"ok": True, "pad": "x" * (MIN_BYTES - 40)})
    assert len(small.content) < MIN_BYTES
    assert "Content-Encoding" not in _through(small)
    at_limit = HttpResponse(b"a" * MIN_BYTES, content_type="text/plain")
    assert _through(at_limit)["Content-Encoding"] == "gzip"
    assert "Content-Encoding" not in _through(JsonResponse(BIG_JSON), accept="identity")


def test_the_demo_unit_list_is_a_fraction_of_its_size(demo_data_once, db):
    """The demo's 200 units, as the formal page reads them: the figure docs/BENCHMARKS.md
    quotes (52 KB of JSON), and what goes over the line instead."""
    from accounts.models import Family
    from selection.models import Round

    client = family_client(Family.objects.get(rank=1))
    url = f"/api/v1/selection/{Round.objects.get().pk}/live/?units=all"
    plain, packed = client.get(url), client.get(url, **GZIP)
    assert len(plain.json()["units"]) == 200
    assert len(packed.content) * 5 < len(plain.content)
