"""Guide 001's phone case: the applicant screenshots the 「签约协议」 QR code on the phone and
scans it later from the album. The code in a 390×844 ×3 Chromium screenshot of the page must
decode (zxing-cpp) to the ticket's URL, and that URL must still open the ticket."""

from __future__ import annotations

import io

import pytest
import zxingcpp
from django.conf import settings
from PIL import Image
from playwright.sync_api import expect

from signing.models import QrTicket
from tests.browser.test_signing_flow import _agreement_open_now, _logged_in_session

pytestmark = pytest.mark.browser


def test_a_phone_screenshot_of_the_qr_page_decodes_to_the_ticket_url(page, live_url, orm):
    setup = orm(_agreement_open_now)
    session_key = orm(_logged_in_session, setup.applicant.pk)
    host = live_url.split("://", 1)[1].split(":")[0]
    page.context.add_cookies(
        [{"name": settings.SESSION_COOKIE_NAME, "value": session_key, "domain": host, "path": "/"}]
    )
    page.goto(f"/h5/signing/{setup.agreement_id}/qr/")
    image = page.locator("#qr-img")
    expect(image).to_be_visible()
    expect(image).to_have_js_property("complete", True)
    shot = page.screenshot(full_page=False)  # what the phone's screenshot holds: 1170×2532
    picture = Image.open(io.BytesIO(shot))
    assert picture.size == (390 * 3, 844 * 3)
    codes = zxingcpp.read_barcodes(picture)
    ticket = orm(lambda: QrTicket.objects.filter(agreement_id=setup.agreement_id).latest("id"))
    assert [c.text for c in codes if c.format == zxingcpp.BarcodeFormat.QRCode] == [
        f"{live_url}/s/{ticket.token}"
    ]
    # scanned later from the album: the URL opens the flow for the same applicant
    page.goto(codes[0].text)
    expect(page).to_have_url(f"{live_url}/h5/signing/{setup.agreement_id}/sign/")
