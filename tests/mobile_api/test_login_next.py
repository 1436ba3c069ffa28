"""A visitor to an H5 page that needs a login goes to the login page and, once logged in, back
to that page (h5/views.py `_to_login`): an SMS link to a selection page must not end on the
home page. The login page follows `next` only to a path on this site."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client

from tests.factories import FamilyFactory

pytestmark = pytest.mark.django_db

# Every H5 page behind the login (the lease pages: test_lease_pages.py). The ids need not
# exist: a visitor is sent away before anything is looked up.
PAGES = [
    "/h5/selection/",
    "/h5/selection/result/",
    "/h5/selection/1/",
    "/h5/selection/1/declaration/pre/",
    "/h5/selection/1/pre/",
    "/h5/selection/1/formal/",
    "/h5/selection/1/result/",
    "/h5/selection/1/formal/?from=sms",
    "/h5/signing/",
    "/h5/signing/1/qr/",
    "/h5/signing/1/sign/",
    "/h5/signing/1/abandon/",
    "/h5/signing/1/view/?from=signing",
    "/h5/signing/1/receipt/",
    "/h5/me/",
    "/h5/privacy/?next=/h5/me/",
]


def _login_target(response) -> tuple[str, dict[str, list[str]]]:
    assert response.status_code == 302
    target = urlsplit(response["Location"])
    return target.path, parse_qs(target.query)


@pytest.mark.parametrize("url", PAGES)
def test_a_visitor_goes_to_the_login_page_and_comes_back(url):
    path, query = _login_target(Client().get(url))
    assert path == "/h5/login/"
    assert query == {"next": [url]}


def test_the_home_page_needs_no_next():
    assert Client().get("/h5/")["Location"] == "/h5/login/"


@pytest.mark.parametrize(
    "next_url, goes_to",
    [
        ("/h5/selection/1/formal/", "/h5/selection/1/formal/"),
        ("/h5/signing/?tab=lease", "/h5/signing/?tab=lease"),
        ("", "/h5/"),
        ("//evil.example/steal", "/h5/"),
        ("https://evil.example/", "/h5/"),
        ("/\\evil.example", "/h5/"),
        ("javascript:alert(1)", "/h5/"),
        ("h5/me/", "/h5/"),
    ],
)
def test_a_logged_in_visit_to_the_login_page_follows_only_a_path_here(make_api, next_url, goes_to):
    api = make_api()
    api.login(FamilyFactory().main_applicant)
    response = api.get("/h5/login/", data={"next": next_url})
    assert response.status_code == 302 and response["Location"] == goes_to
