"""Error pages (issue 16 item 6): 400, 403, 404 and 500 in Chinese, with DEBUG off, in each
area's look — WeUI for the H5 pages, the admin's for /admin/, the API's JSON error body for
/api/ — with no inline script or style (the Content-Security-Policy forbids them); and, with
DEBUG on as in the demo, an unknown URL or a view's Http404 gets the same Chinese 404 page."""

from __future__ import annotations

import re

import pytest
from django.test import Client, override_settings

from tests.factories import UserFactory

URLS = "tests.core.error_urls"
INLINE = re.compile(
    r"<style\b|\sstyle\s*=|<script(?![^>]*\bsrc=)[^>]*>|\son[a-z]+\s*=|javascript:", re.I
)
TITLES = {400: "请求有误", 403: "无权访问此页面", 404: "页面不存在", 500: "系统繁忙，请稍后再试"}
API_CODES = {400: "malformed_request", 403: "forbidden", 404: "not_found", 500: "server_error"}


def _path(area: str, status: int) -> str:
    prefix = {"h5": "/h5/", "admin": "/admin/", "api": "/api/v1/"}[area]
    if status == 404:
        return f"{prefix}no-such-page/"
    return f"{prefix}_fail/{status}/"


def _page(response) -> str:
    assert response["Content-Type"].startswith("text/html"), response["Content-Type"]
    body = response.content.decode()
    found = INLINE.search(body)
    assert found is None, f"inline code the CSP blocks: {body[found.start() :][:120]}"
    return body


@pytest.fixture
def staff_client(db):
    client = Client(raise_request_exception=False)
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


@pytest.mark.django_db
@pytest.mark.parametrize("status", [400, 403, 404, 500])
@override_settings(DEBUG=False, ROOT_URLCONF=URLS)
def test_h5_error_pages_are_chinese_weui_pages(status):
    response = Client(raise_request_exception=False).get(_path("h5", status))
    assert response.status_code == status
    body = _page(response)
    assert f'<h2 class="weui-msg__title">{TITLES[status]}</h2>' in body
    assert f'错误代码：<span translate="no">{status}</span>' in body  # a code, not a word
    assert "vendor/weui/weui.min.css" in body  # the WeChat look
    assert 'lang="zh-Hans"' in body
    assert "返回首页" in body and 'href="/h5/"' in body
    assert "Not Found" not in body and "Server Error" not in body
    # No page script and no login: lib/dom.js alone, for iOS Safari's pressed 「返回首页」.
    assert re.search(r'<script type="module" src="/static/h5/lib/dom\.[^"]*js"', body), body


@pytest.mark.parametrize("status", [400, 404, 500])
@override_settings(DEBUG=False, ROOT_URLCONF=URLS)
def test_admin_error_pages_are_in_the_admins_look(status, staff_client):
    response = staff_client.get(_path("admin", status))
    assert response.status_code == status
    body = _page(response)
    assert f"<h1>{TITLES[status]}</h1>" in body
    assert f"错误代码：{status}" in body
    assert "admin/css/base.css" in body  # the admin's stylesheet, not WeUI
    assert "weui" not in body
    assert "安居 · 选房签约管理后台" in body
    assert "返回工作人员首页" in body


@override_settings(DEBUG=False, ROOT_URLCONF=URLS)
def test_admin_403_for_staff_is_the_role_refusal_page(staff_client):
    # A staff member refused: accounts.admin.permission_denied's page (it names the role).
    response = staff_client.get(_path("admin", 403))
    assert response.status_code == 403
    body = _page(response)
    assert "无权访问" in body and "您当前的账号" in body and "admin/css/base.css" in body


@pytest.mark.django_db
@override_settings(DEBUG=False, ROOT_URLCONF=URLS)
def test_admin_pages_for_a_visitor_are_in_the_admins_look_too():
    response = Client(raise_request_exception=False).get(_path("admin", 403))
    assert response.status_code == 403
    body = _page(response)
    assert "<h1>无权访问此页面</h1>" in body and "admin/css/base.css" in body


@pytest.mark.django_db
@pytest.mark.parametrize("status", [400, 403, 404, 500])
@override_settings(DEBUG=False, ROOT_URLCONF=URLS)
def test_api_errors_keep_the_json_error_body(status):
    response = Client(raise_request_exception=False).get(_path("api", status))
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    error = response.json()["error"]
    assert error["code"] == API_CODES[status]
    assert error["message"] and error["fields"] == {}
    # Written as DRF writes its errors: the Chinese readable in the bytes, not escaped.
    assert error["message"].encode() in response.content and b"\\u" not in response.content


@pytest.mark.django_db
@override_settings(DEBUG=True)
@pytest.mark.parametrize(
    "path",
    [
        "/no-such-page/",
        "/h5/no-such-page/",
        "/h5/selection/x/",
        # URLs that match, for what does not exist: the view raises Http404.
        "/h5/broadcast/999999/",
        "/h5/selection/1/declaration/xyz/",
    ],
)
def test_the_demo_shows_unknown_urls_the_chinese_404(path):
    # The demo runs with DEBUG on, where Django would answer with its English technical page.
    response = Client().get(path)
    assert response.status_code == 404
    body = _page(response)
    assert '<h2 class="weui-msg__title">页面不存在</h2>' in body
    assert "Page not found" not in body and "URLconf" not in body


@pytest.mark.django_db
@override_settings(DEBUG=True)
def test_the_demo_keeps_the_api_body_and_the_slash_redirect():
    client = Client()
    response = client.get("/api/v1/no-such-endpoint/")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    # APPEND_SLASH still redirects a known page written without its slash.
    response = client.get("/h5/login")
    assert response.status_code == 301 and response["Location"] == "/h5/login/"
