"""The deposit's payment code (WeChat Pay Native, guide 000: the desktop shows a QR code that
WeChat on the phone scans): POST /api/v1/lease/<id>/deposit/ answers the order's code_url with
its QR code as a PNG made by the server (the same qrcode path as the signing QR codes), and
when the order closes (the signing window's end). The logged-in desktop may ask; nobody else:
no login, a staff login, another family's login, an unknown lease, a lease not yet at the
deposit."""

from __future__ import annotations

import base64
import io
import re
from datetime import datetime

import pytest
import time_machine
import zxingcpp
from django.test import Client
from PIL import Image

from accounts.models import User
from core.context import RequestContext
from signing.lease.payments import dev as pay_dev
from signing.lease.services import lease_start
from signing.models import Agreement, DepositPayment, Lease
from tests.mobile_api.conftest import ApiClient, error_code
from tests.signing.lease_worlds import ACCOUNT, NOW, NotifyTransport, make_lease_world

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def pay(settings, tmp_path, monkeypatch):
    settings.PAYMENT = {**settings.PAYMENT, "PLATFORM_KEY_DIR": tmp_path / "pay"}
    monkeypatch.setattr(pay_dev, "callback_transport", NotifyTransport())


def lease_of(world, *, signed: bool = True) -> Lease:
    lease = lease_start(applicant=world.applicant, ctx=RequestContext(), now=NOW)
    if signed:
        Lease.objects.filter(pk=lease.pk).update(
            bank="ICBC", account_number=ACCOUNT, account_holder="王小明", bank_attempt=1
        )
        Agreement.objects.filter(pk=lease.agreement_id).update(
            status="signed", step=Agreement.Step.SUBMITTED, signed_at=NOW
        )
    return Lease.objects.select_related("agreement").get(pk=lease.pk)


def logged_in(applicant) -> ApiClient:
    api = ApiClient()
    api.client.force_login(applicant.user)
    return api


def decoded(png_base64: str) -> list[str]:
    picture = Image.open(io.BytesIO(base64.b64decode(png_base64)))
    return [c.text for c in zxingcpp.read_barcodes(picture)]


def test_the_desktop_gets_the_code_url_as_a_qr_code_and_the_same_order_again():
    world = make_lease_world()
    lease = lease_of(world)
    desktop = logged_in(world.applicant)
    with time_machine.travel(NOW, tick=True):
        answer = desktop.post(f"/api/v1/lease/{lease.pk}/deposit/")
        again = desktop.post(f"/api/v1/lease/{lease.pk}/deposit/")
    assert answer.status_code == 200, answer.content
    order = answer.json()
    assert re.fullmatch(r"https?://[^/]+/dev/pay/wx\d{14}[0-9a-f]{20}/", order["code_url"])
    assert decoded(order["png_base64"]) == [order["code_url"]]
    assert order["amount"] == "2938.00" and order["amount_fen"] == 293800
    # The order closes at the signing window's end (the provider's time_expire).
    closes = datetime.fromisoformat(order["expires_at"].replace("Z", "+00:00"))
    assert closes == lease.agreement.window_ends_at
    assert again.json()["code_url"] == order["code_url"]
    assert again.json()["out_trade_no"] == order["out_trade_no"]
    assert DepositPayment.objects.filter(lease=lease).count() == 1


def test_nobody_else_gets_the_code():
    world = make_lease_world()
    lease = lease_of(world)
    url = f"/api/v1/lease/{lease.pk}/deposit/"
    with time_machine.travel(NOW, tick=True):
        # No login and no signing session of the phone.
        anonymous = ApiClient()
        refused = anonymous.post(url)
        assert refused.status_code == 401 and error_code(refused) == "not_authenticated"
        # A staff login.
        staff = ApiClient()
        staff.client.force_login(User.objects.create_user(username="staff-d", is_staff=True))
        refused = staff.post(url)
        assert refused.status_code == 403 and error_code(refused) == "forbidden"
        # Another family's login: as if the lease did not exist.
        other = make_lease_world(name="李四")
        refused = logged_in(other.applicant).post(url)
        assert refused.status_code == 404 and error_code(refused) == "lease_not_found"
        # No such lease.
        refused = logged_in(world.applicant).post("/api/v1/lease/999999/deposit/")
        assert refused.status_code == 404 and error_code(refused) == "lease_not_found"
        # Without the CSRF token.
        refused = logged_in(world.applicant).post(url, csrf=False)
        assert refused.status_code == 403
    assert not DepositPayment.objects.filter(lease=lease).exists()


def test_no_code_before_the_contract_is_signed():
    world = make_lease_world()
    lease = lease_of(world, signed=False)
    with time_machine.travel(NOW, tick=True):
        refused = logged_in(world.applicant).post(f"/api/v1/lease/{lease.pk}/deposit/")
    assert refused.status_code == 409 and error_code(refused) == "step_out_of_order"
    assert not DepositPayment.objects.filter(lease=lease).exists()


def test_a_plain_client_without_cookies_is_refused():
    """The bare endpoint, no page visited first: refused, never a 500."""
    world = make_lease_world()
    lease = lease_of(world)
    response = Client().post(f"/api/v1/lease/{lease.pk}/deposit/")
    assert response.status_code in (401, 403)


def test_the_cashier_return_on_a_phone_without_login_says_look_at_the_desktop():
    """The development cashier sends the payer to the return URL; a phone that paid the
    desktop's code never logged in: a plain page, nothing of the lease, not the login page."""
    world = make_lease_world()
    lease = lease_of(world)
    phone = Client()
    page = phone.get(f"/h5/lease/{lease.pk}/deposit/?out_trade_no=AJ00000001N01ABCDEF01")
    assert page.status_code == 200
    text = page.content.decode()
    assert "请回到电脑端查看支付结果" in text
    assert lease.unit_label not in text and "lease-deposit.js" not in text
    # Without the cashier's mark it is the login page, as before.
    plain = phone.get(f"/h5/lease/{lease.pk}/deposit/")
    assert plain.status_code == 302 and plain["Location"].startswith("/h5/login/")
    # An unknown lease is still none.
    assert phone.get("/h5/lease/999999/deposit/?out_trade_no=x").status_code == 404
