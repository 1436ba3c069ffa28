"""Compressed once, through the shipped nginx as straight from daphne: the application
gzips whole text responses (core/compression.py) and nginx passes them on as they are."""

from __future__ import annotations

import gzip

import pytest

from tests.deploy.live import http_client

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.nginx,
    pytest.mark.django_db(transaction=True),
]


async def _raw_login_page(base: str, accept: str) -> tuple[dict, bytes]:
    """The login page as it crossed the line (httpx would decode it)."""
    async with http_client() as http:
        async with http.stream(
            "GET", f"{base}/h5/login/", headers={"Accept-Encoding": accept}
        ) as response:
            assert response.status_code == 200
            return dict(response.headers), b"".join([part async for part in response.aiter_raw()])


@pytest.mark.parametrize("through", ["nginx", "daphne"])
async def test_a_page_is_gzipped_exactly_once(stack, through):
    base = stack.nginx.url if through == "nginx" else stack.url(0)
    headers, raw = await _raw_login_page(base, "gzip")
    assert headers["content-encoding"] == "gzip"
    assert "Accept-Encoding" in headers["vary"]
    assert "验证码" in gzip.decompress(raw).decode()
    headers, raw = await _raw_login_page(base, "identity")
    assert "content-encoding" not in headers and "验证码" in raw.decode()
