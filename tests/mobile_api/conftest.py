from __future__ import annotations

import re

import pytest
from django.test import Client

from sms.models import DevInboxMessage, SmsMessage
from sms.services import sms_message_deliver


class ApiClient:
    """A browser-like client: CSRF enforced, token read from the cookie the pages set."""

    def __init__(self, ip: str = "10.1.1.1"):
        self.client = Client(enforce_csrf_checks=True, REMOTE_ADDR=ip, HTTP_USER_AGENT="pytest")
        self.client.get("/h5/login/")

    @property
    def csrf(self) -> str:
        return self.client.cookies["csrftoken"].value

    def post(self, url, data=None, *, csrf=True, headers=None, **extra):
        headers = {**({"X-CSRFToken": self.csrf} if csrf else {}), **(headers or {})}
        return self.client.post(
            url, data or {}, content_type="application/json", headers=headers, **extra
        )

    def get(self, url, **extra):
        return self.client.get(url, **extra)

    def login(self, applicant, *, confirm: bool = False) -> None:
        """Log in with a fresh SMS code. With `confirm`, another device logged in to the
        account is ended (the 409 `device_active` answered by confirming)."""
        self.post("/api/v1/auth/sms-code/", {"id_number": applicant.id_number})
        response = self.post(
            "/api/v1/auth/login/",
            {"id_number": applicant.id_number, "code": last_code(applicant.mobile)},
        )
        if confirm and response.status_code == 409:
            assert error_code(response) == "device_active"
            response = self.post("/api/v1/auth/login/confirm/")
        assert response.status_code == 200, response.content


def last_code(phone: str) -> str:
    """The newest code the console provider delivered to `phone`. Login codes are the outbox
    worker's to deliver (never the request's: sms_code_send's `conceal`), so the worker's
    part is played first, for this phone's codes only (other queued notices stay queued)."""
    for message_id in SmsMessage.objects.filter(
        phone=phone, kind="verify_code", status=SmsMessage.Status.QUEUED
    ).values_list("pk", flat=True):
        sms_message_deliver(message_id=message_id)
    text = DevInboxMessage.objects.filter(phone=phone).order_by("-id").first().text
    return re.search(r"验证码为(\d{6})", text).group(1)


def error_code(response) -> str:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "fields"}
    return body["error"]["code"]


@pytest.fixture
def api():
    return ApiClient()


@pytest.fixture
def make_api():
    return ApiClient
