"""租赁合同签约 pages (h5/lease_views.py): who may open which page, and the development
payment provider's cashier page (DEBUG only)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from django.conf import settings
from django.test import Client

from core.context import RequestContext
from signing.lease import services as leases
from signing.lease.payments import dev as pay_dev
from tests.signing.lease_worlds import NOW, make_lease_world

pytestmark = pytest.mark.django_db

CTX = RequestContext(ip="10.4.0.1", user_agent="pytest")


@pytest.fixture
def world():
    return make_lease_world(name="王小明")


@pytest.fixture
def lease(world):
    return leases.lease_start(applicant=world.applicant, ctx=CTX, now=NOW)


def _client(applicant=None) -> Client:
    client = Client()
    if applicant is not None:
        client.force_login(applicant.user)
    return client


def _pages(lease) -> list[str]:
    return [
        "/h5/lease/",
        f"/h5/lease/{lease.pk}/",
        f"/h5/lease/{lease.pk}/deposit/",
        f"/h5/lease/by-agreement/{lease.agreement_id}/deposit/",
        "/h5/me/",
        "/h5/me/leases/",
    ]


def test_every_page_sends_a_visitor_to_the_login_page_and_back(lease):
    for url in _pages(lease):
        response = _client().get(url)
        assert response.status_code == 302, url
        target = urlsplit(response["Location"])
        assert target.path == "/h5/login/", url
        assert parse_qs(target.query)["next"] == [url]


def test_another_familys_lease_looks_like_none(world, lease):
    other = _client(world.other)
    for url in _pages(lease)[1:4]:
        assert other.get(url).status_code == 404, url


def test_the_family_opens_its_own_pages(world, lease):
    own = _client(world.applicant)
    for url in ("/h5/lease/", "/h5/me/", "/h5/me/leases/"):
        response = own.get(url)
        assert response.status_code == 200, url
        assert response["Cache-Control"].startswith("max-age=0"), url
    hub = own.get(f"/h5/lease/{lease.pk}/")
    assert hub.status_code == 200
    assert f'data-lease-id="{lease.pk}"' in hub.content.decode()
    assert "csrftoken" in hub.cookies
    deposit = own.get(f"/h5/lease/{lease.pk}/deposit/")
    assert deposit.status_code == 200 and "押金缴纳" in deposit.content.decode()
    # The deposit QR code names the agreement: on to its lease's deposit page.
    by_agreement = own.get(f"/h5/lease/by-agreement/{lease.agreement_id}/deposit/")
    assert by_agreement.status_code == 302
    assert by_agreement["Location"] == f"/h5/lease/{lease.pk}/deposit/"
    assert own.get("/h5/lease/999999/").status_code == 404
    assert own.get("/h5/lease/by-agreement/999999/deposit/").status_code == 404


def test_the_entries_lead_to_the_lease(world):
    own = _client(world.applicant)
    home = own.get("/h5/").content.decode()
    assert 'href="/h5/me/"' in home and "我的" in home
    me = own.get("/h5/me/").content.decode()
    assert 'href="/h5/me/leases/"' in me and "网上签约记录" in me
    signing = own.get("/h5/signing/").content.decode()
    assert 'id="lease-entry"' in signing and "signing-index.js" in signing
    # The page module draws the lease's card with lease-common.js.
    index = Path(settings.BASE_DIR, "h5/static/h5/signing-index.js").read_text()
    assert 'from "./lease-common.js";' in index


# ------------------------------------------------------------------ the dev cashier


@pytest.fixture
def order(settings, tmp_path, monkeypatch):
    """An order at the development provider, its notification answered 200."""
    settings.PAYMENT = {**settings.PAYMENT, "PLATFORM_KEY_DIR": tmp_path / "pay"}
    delivered: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        delivered.append(request)
        return httpx.Response(200, json={"code": "SUCCESS"})

    monkeypatch.setattr(pay_dev, "callback_transport", httpx.MockTransport(answer))
    start = pay_dev.DevPayProvider().create_order(
        out_trade_no="AJTESTPAGE0001",
        description="公共租赁住房押金 3栋1201",
        amount_fen=293800,
        notify_url="http://testserver/api/v1/payments/notify/dev/",
        return_url="http://testserver/h5/lease/1/deposit/",
        payer_hint="王小明",
    )
    return start.prepay_id, delivered


def test_dev_cashier_does_not_exist_without_debug(settings, order):
    prepay_id, delivered = order
    settings.DEBUG = False
    assert _client().get(f"/dev/pay/{prepay_id}/").status_code == 404
    assert _client().post(f"/dev/pay/{prepay_id}/").status_code == 404
    assert pay_dev.DevPayProvider().query_order(out_trade_no="AJTESTPAGE0001").trade_state == (
        "NOTPAY"
    )
    assert delivered == []


def test_dev_cashier_shows_the_order_and_pays_it(settings, order):
    prepay_id, delivered = order
    settings.DEBUG = True
    assert _client().get("/dev/pay/wx20260303093000abcdefabcdefabcdefab/").status_code == 404
    page = _client().get(f"/dev/pay/{prepay_id}/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "2938.00" in text and "确认支付" in text and "AJTESTPAGE0001" in text
    paid = _client().post(f"/dev/pay/{prepay_id}/")
    assert paid.status_code == 302
    assert paid["Location"] == "http://testserver/h5/lease/1/deposit/?out_trade_no=AJTESTPAGE0001"
    assert len(delivered) == 1
    assert delivered[0].url == "http://testserver/api/v1/payments/notify/dev/"
    notice = pay_dev.DevPayProvider().query_order(out_trade_no="AJTESTPAGE0001")
    assert notice.trade_state == "SUCCESS"
    assert "支付成功" in _client().get(f"/dev/pay/{prepay_id}/").content.decode()
