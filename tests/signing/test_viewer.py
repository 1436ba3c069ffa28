"""「查看」: the viewer page (pages as images, 打印 opens the PDF, 保存 downloads it), who may
open it, what it says when there is nothing to show; the page images' API."""

from __future__ import annotations

import io
import re

import pytest
from django.test import Client
from PIL import Image

from accounts.services import applicant_user_ensure
from signing.agreements import preview
from signing.agreements.documents import document_latest
from signing.agreements.preview import PAGE_WIDTH_PX, pdf_page_png, pdf_page_sizes
from signing.models import Agreement
from tests.mobile_api.conftest import error_code
from tests.signing.viewer_worlds import ca_for, sealed_subsidy, sign
from tests.signing.worlds import make_agreement

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def ca_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("ca")


@pytest.fixture(autouse=True)
def _ca(settings, ca_dir):
    ca_for(settings, ca_dir)


def client_for(applicant) -> Client:
    client = Client()
    client.force_login(applicant_user_ensure(applicant=applicant).user)
    return client


def test_the_owner_sees_every_page_with_print_and_save():
    agreement, applicant = sealed_subsidy()
    client = client_for(applicant)
    page = client.get(f"/h5/signing/{agreement.pk}/view/")
    assert page.status_code == 200
    html = page.content.decode()
    document = document_latest(agreement=agreement)
    assert document.stage == "sealed"
    base = f"/api/v1/signing/agreements/{agreement.pk}/document/"
    assert re.search(rf'id="viewer-print" href="{base}" target="_blank"', html)
    assert re.search(rf'id="viewer-save" href="{base}\?download=1" download=', html)
    assert ">打印<" in html and ">保存<" in html
    assert "已盖章" in html and agreement.verification_code in html
    sources = re.findall(r'<img src="([^"]+)"', html)
    assert sources and sources[0] == f"{base}pages/1/?v={document.sha256}"
    assert f"共 {len(sources)} 页" in html
    # What 打印 opens and 保存 saves: the sealed PDF itself.
    pdf = client.get(base)
    assert pdf["Content-Type"] == "application/pdf" and bytes(pdf.content) == bytes(document.pdf)
    assert client.get(f"{base}?download=1")["Content-Disposition"].startswith("attachment")


def test_a_page_image_is_a_png_of_the_page_and_kept_only_when_versioned():
    agreement, applicant = sealed_subsidy()
    client = client_for(applicant)
    document = document_latest(agreement=agreement)
    url = f"/api/v1/signing/agreements/{agreement.pk}/document/pages/1/"
    versioned = client.get(f"{url}?v={document.sha256}")
    assert versioned.status_code == 200 and versioned["Content-Type"] == "image/png"
    assert "immutable" in versioned["Cache-Control"]
    image = Image.open(io.BytesIO(versioned.content))
    assert abs(image.width - PAGE_WIDTH_PX) <= 1
    assert image.height > image.width  # A4, upright
    assert image.convert("L").getextrema()[0] < 80  # there is ink (text) on the page
    plain = client.get(url)
    assert plain["Cache-Control"] == "private, no-store"
    assert plain.content == versioned.content


def test_the_last_page_shows_the_red_seal():
    agreement, _ = sealed_subsidy()
    pdf = bytes(document_latest(agreement=agreement).pdf)
    last = len(pdf_page_sizes(pdf))
    image = Image.open(io.BytesIO(pdf_page_png(pdf, page=last))).convert("RGB")
    red = sum(
        1
        for r, g, b in image.get_flattened_data()
        if r > 150 and g < 90 and b < 90  # the seal's red: its signature field's appearance
    )
    assert red > 500


def test_a_page_past_the_end_is_404_with_the_error_body():
    agreement, applicant = sealed_subsidy()
    response = client_for(applicant).get(
        f"/api/v1/signing/agreements/{agreement.pk}/document/pages/99/"
    )
    assert response.status_code == 404 and error_code(response) == "page_not_found"


def test_another_family_gets_404_everywhere():
    agreement, _ = sealed_subsidy()
    _, stranger = make_agreement(name="张三")
    client = client_for(stranger)
    assert client.get(f"/h5/signing/{agreement.pk}/view/").status_code == 404
    assert client.get(f"/h5/signing/{agreement.pk}/receipt/").status_code == 404
    response = client.get(f"/api/v1/signing/agreements/{agreement.pk}/document/pages/1/")
    assert response.status_code == 404 and error_code(response) == "agreement_not_found"


def test_anonymous_goes_to_login_and_comes_back():
    agreement, _ = sealed_subsidy()
    response = Client().get(f"/h5/signing/{agreement.pk}/view/?from=signing")
    assert response.status_code == 302
    assert response["Location"] == (
        f"/h5/login/?next=%2Fh5%2Fsigning%2F{agreement.pk}%2Fview%2F%3Ffrom%3Dsigning"
    )
    api = Client().get(f"/api/v1/signing/agreements/{agreement.pk}/document/pages/1/")
    assert api.status_code in (401, 403)


@pytest.mark.parametrize(
    ("status", "message"),
    [
        ("pending", "协议尚未签字，签字提交后即可在此查看协议。"),
        ("void", "该协议已作废，没有可查看的协议文件。"),
        ("abandoned", "您已放弃本次签约，没有可查看的协议文件。"),
    ],
)
def test_nothing_to_show_yet_says_why_in_chinese(status, message):
    agreement, applicant = make_agreement()
    Agreement.objects.filter(pk=agreement.pk).update(status=status)
    client = client_for(applicant)
    page = client.get(f"/h5/signing/{agreement.pk}/view/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "暂无可查看的文件" in html and message in html
    assert 'id="viewer-print"' not in html and "<img" not in html
    response = client.get(f"/api/v1/signing/agreements/{agreement.pk}/document/pages/1/")
    assert response.status_code == 404 and error_code(response) == "document_not_ready"
    assert response.json()["error"]["message"] == message


def test_a_signed_agreement_shows_its_signed_pdf_before_the_seal():
    agreement, applicant = make_agreement()
    agreement = sign(agreement)
    html = client_for(applicant).get(f"/h5/signing/{agreement.pk}/view/").content.decode()
    document = document_latest(agreement=agreement)
    assert document.stage == "signed" and f"?v={document.sha256}" in html
    assert "已签字" in html


def test_back_goes_where_the_viewer_was_opened_from_and_nowhere_else():
    agreement, applicant = sealed_subsidy()
    client = client_for(applicant)
    view = f"/h5/signing/{agreement.pk}/view/"
    assert 'href="/h5/signing/">‹ 网上签约' in client.get(f"{view}?from=signing").content.decode()
    assert 'href="/h5/me/leases/">‹ 签约记录' in client.get(view).content.decode()
    other = client.get(f"{view}?from=https://evil.example/").content.decode()
    assert "evil" not in other and 'href="/h5/me/leases/">‹ 签约记录' in other


def test_a_rent_subsidy_agreement_has_no_receipt():
    agreement, applicant = sealed_subsidy()
    assert client_for(applicant).get(f"/h5/signing/{agreement.pk}/receipt/").status_code == 404


def test_page_images_are_drawn_once_per_pdf(monkeypatch):
    agreement, _ = sealed_subsidy()
    pdf = bytes(document_latest(agreement=agreement).pdf)
    first = pdf_page_png(pdf, page=1)
    opened = []
    monkeypatch.setattr(preview, "_open", lambda *a, **k: opened.append(a) or None)
    assert pdf_page_png(pdf, page=1) == first  # from the cache: PDFium not called again
    assert opened == []
