"""Hostile input through the shipped nginx (deploy/nginx/anju.conf) in front of daphne:

- a client-supplied X-Forwarded-For / X-Real-IP is not what the application records: nginx
  sets the header from the address it saw, and the application trusts exactly one proxy
  (TRUSTED_PROXY_COUNT, given as NUM_PROXIES=1 by tests/deploy/stack.py app_env);
- a body over client_max_body_size is refused by nginx before it reaches daphne, with the
  API's error body (413 request_too_large);
- straight to daphne (the demo has no nginx): a body over REQUEST_BODY_MAX_BYTES is refused
  from its Content-Length, or once a chunked body passes it, before it is received
  (core/daphne_guard.py); an unparseable multipart body reaches Django and is answered in the
  error body instead of Twisted's bare 400."""

from __future__ import annotations

import asyncio
import json
import secrets

import pytest

from sms.models import SmsCode
from tests.deploy.live import aio, http_client
from tests.factories import FamilyFactory

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.nginx,
    pytest.mark.django_db(transaction=True),
]

SPOOFED = "203.0.113.1"


async def ask_for_a_code(base: str, id_number: str, headers: dict) -> int:
    csrf = secrets.token_hex(16)
    async with http_client() as http:
        response = await http.post(
            f"{base}/api/v1/auth/sms-code/",
            json={"id_number": id_number},
            headers={
                "Cookie": f"csrftoken={csrf}",
                "X-CSRFToken": csrf,
                "Origin": base,
                **headers,
            },
        )
    assert response.status_code in (200, 202), response.text
    return response.status_code


async def test_a_spoofed_forwarded_for_is_not_recorded_through_nginx(stack):
    family = await aio(FamilyFactory)()
    await ask_for_a_code(
        stack.nginx.url,
        family.main_applicant.id_number,
        {"X-Forwarded-For": f"{SPOOFED}, 198.51.100.9", "X-Real-IP": SPOOFED},
    )
    code = await aio(SmsCode.objects.get)(phone=family.main_applicant.mobile)
    # nginx saw the test's loopback connection; nothing the client wrote is believed.
    assert code.ip == "127.0.0.1"


async def test_control_straight_to_daphne_behind_one_trusted_proxy_the_header_is_believed(
    stack,
):
    """Control: the same header sent to daphne directly (bypassing nginx, which production
    never exposes) is taken as written by the one trusted proxy: it is nginx's setting of
    the header that makes the recorded address safe."""
    family = await aio(FamilyFactory)()
    await ask_for_a_code(
        stack.url(0), family.main_applicant.id_number, {"X-Forwarded-For": SPOOFED}
    )
    code = await aio(SmsCode.objects.get)(phone=family.main_applicant.mobile)
    assert code.ip == SPOOFED


async def test_a_body_over_the_limit_is_refused_by_nginx_in_the_error_body(stack):
    """50 MB announced, a few bytes sent: nginx answers from the Content-Length alone."""
    reader, writer = await asyncio.open_connection("127.0.0.1", stack.nginx.port)
    writer.write(
        b"POST /api/v1/auth/sms-code/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\nContent-Length: 52428800\r\n\r\n{}"
    )
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    assert status_line.split()[1] == "413", head
    headers = dict(line.split(": ", 1) for line in header_lines if ": " in line)
    assert headers["Content-Type"].startswith("application/json")
    body = await asyncio.wait_for(reader.readexactly(int(headers["Content-Length"])), timeout=10)
    writer.close()
    error = json.loads(body)["error"]
    assert error["code"] == "request_too_large" and error["message"] == "提交的内容过大"
    assert error["fields"] == {}


def test_the_shipped_nginx_sets_the_forwarded_address_and_never_appends_to_it():
    """Both halves are needed: the application trusts one proxy, so that proxy must write
    the address it saw and nothing the client sent (a client's header in front of nginx's
    entry would be harmless to the app today, and it is the first thing a change of
    TRUSTED_PROXY_COUNT or of the daphne flags would start believing)."""
    from tests.deploy.stack import SHIPPED_NGINX_CONF

    lines = [line.split("#")[0].strip() for line in SHIPPED_NGINX_CONF.read_text().splitlines()]
    assert "proxy_set_header X-Forwarded-For $remote_addr;" in lines
    assert "proxy_set_header X-Real-IP $remote_addr;" in lines
    assert not [line for line in lines if "$proxy_add_x_forwarded_for" in line]


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict, bytes]:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {
        name.lower(): value
        for name, value in (line.split(": ", 1) for line in header_lines if ": " in line)
    }
    body = await asyncio.wait_for(reader.readexactly(int(headers["content-length"])), timeout=10)
    return int(status_line.split()[1]), headers, body


async def test_daphne_refuses_a_declared_oversized_body_before_receiving_it(stack):
    reader, writer = await asyncio.open_connection("127.0.0.1", stack.ports[0])
    writer.write(
        b"POST /api/v1/auth/sms-code/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\nContent-Length: 209715200\r\n\r\n"
    )
    await writer.drain()
    # Answered from the headers alone: none of the 200 MB has been sent.
    status, headers, body = await read_response(reader)
    assert status == 413 and headers["content-type"] == "application/json"
    assert json.loads(body)["error"]["code"] == "request_too_large"
    assert await asyncio.wait_for(reader.read(), timeout=10) == b""  # closed
    writer.close()


async def test_daphne_refuses_a_chunked_body_once_it_passes_the_cap(stack, settings):
    """One byte past the cap, and no end of the body: daphne answers 413 without waiting for
    the rest (nothing is left unread, so the answer is not lost to a reset)."""
    cap = settings.REQUEST_BODY_MAX_BYTES  # the same default in the stack's processes
    reader, writer = await asyncio.open_connection("127.0.0.1", stack.ports[0])
    writer.write(
        b"POST /api/v1/auth/sms-code/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    remaining, chunk = cap + 1, b"x" * (1024 * 1024)
    while remaining:
        part = chunk[: min(remaining, len(chunk))]
        writer.write(b"%x\r\n%s\r\n" % (len(part), part))
        remaining -= len(part)
    await writer.drain()
    status, _, body = await read_response(reader)
    assert status == 413 and json.loads(body)["error"]["code"] == "request_too_large"
    assert await asyncio.wait_for(reader.read(), timeout=10) == b""  # closed
    writer.close()


async def test_an_unparseable_multipart_body_reaches_django_and_is_answered_in_the_error_body(
    stack,
):
    async with http_client() as http:
        response = await http.post(
            f"{stack.url(0)}/api/v1/auth/sms-code/",
            content=b"--not-the-boundary\r\ngarbage",
            headers={"Content-Type": "multipart/form-data; boundary=x"},
        )
    assert 400 <= response.status_code < 500
    error = response.json()["error"]
    assert set(error) == {"code", "message", "fields"} and error["code"]
