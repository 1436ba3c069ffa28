"""关怀模式's switch and first paint (issue 16 item 4; h5/care_views.py, base.html): the cookie
it sets, where it sends the phone back, and the class the server writes on <html>."""

from __future__ import annotations

import pytest
from django.test import Client

from h5.care_views import CARE_COOKIE, CARE_COOKIE_MAX_AGE

CARE_HTML = '<html lang="zh-Hans" class="anju-care">'


@pytest.mark.django_db
def test_the_switch_sets_the_cookie_and_goes_back(settings):
    response = Client().post("/h5/care/", {"care": "1", "next": "/h5/login/?reason=replaced"})
    assert response.status_code == 303
    assert response["Location"] == "/h5/login/?reason=replaced"
    cookie = response.cookies[CARE_COOKIE]
    assert cookie.value == "1"
    assert cookie["max-age"] == CARE_COOKIE_MAX_AGE
    assert cookie["httponly"] and cookie["samesite"] == "Lax"
    assert cookie["path"] == "/"


@pytest.mark.django_db
def test_off_deletes_the_cookie():
    client = Client()
    client.cookies[CARE_COOKIE] = "1"
    response = client.post("/h5/care/", {"care": "0", "next": "/h5/"})
    assert response.status_code == 303 and response["Location"] == "/h5/"
    assert response.cookies[CARE_COOKIE]["max-age"] == 0


@pytest.mark.django_db
@pytest.mark.parametrize("next_url", ["//evil.example/x", "https://evil.example/", "", "ftp:x"])
def test_it_only_goes_back_to_this_site(next_url):
    response = Client().post("/h5/care/", {"care": "1", "next": next_url})
    assert response["Location"] == "/h5/"


@pytest.mark.django_db
def test_only_a_post_switches():
    assert Client().get("/h5/care/?care=1").status_code == 405


def test_the_switch_is_a_form_that_needs_the_csrf_token():
    client = Client(enforce_csrf_checks=True)
    assert client.post("/h5/care/", {"care": "1"}).status_code == 403


@pytest.mark.django_db
def test_the_page_is_sent_in_the_mode_the_cookie_says():
    client = Client()
    page = client.get("/h5/login/").content.decode()
    assert CARE_HTML not in page and '<html lang="zh-Hans">' in page
    assert 'role="switch"' in page and 'aria-checked="false"' in page
    client.cookies[CARE_COOKIE] = "1"
    page = client.get("/h5/login/").content.decode()
    assert CARE_HTML in page and 'aria-checked="true"' in page
    assert 'name="care" value="0"' in page
