"""The deposit receipt in the viewer (「押金收据」), once the lease is approved."""

from __future__ import annotations

import re

import pytest

from signing.agreements import services
from signing.lease import deposit
from tests.signing.lease_worlds import NOW
from tests.signing.test_lease_review import signed_lease
from tests.signing.test_records_help import _keys, client_for  # noqa: F401 (autouse fixture)
from tests.signing.viewer_worlds import reviewer

pytestmark = pytest.mark.django_db


def _no_new_copy(**kwargs):
    raise AssertionError("a new receipt was issued for a page already drawn")


def test_the_deposit_receipt_is_in_the_viewer_once_approved(monkeypatch):
    world, lease = signed_lease(paid=True)
    client = client_for(world.applicant.user)
    url = f"/h5/signing/{lease.agreement_id}/receipt/"
    before = client.get(url).content.decode()
    assert "审核通过后可下载押金收据" in before and "<img" not in before
    services.agreement_approve(agreement_id=lease.agreement_id, actor=reviewer(), now=NOW)
    html = client.get(url).content.decode()
    assert 'id="viewer-print"' in html and "押金收据" in html
    src = re.search(r'<img src="([^"]+)"', html).group(1)
    assert src.startswith(f"/api/v1/lease/{lease.pk}/receipt/pages/1/?v=")
    image = client.get(src)
    assert image.status_code == 200 and image["Content-Type"] == "image/png"
    assert "immutable" in image["Cache-Control"]
    # Each copy of the receipt is issued and sealed anew: a page already drawn is not.
    monkeypatch.setattr(deposit, "deposit_receipt_pdf_for", _no_new_copy)
    assert client.get(src).content == image.content
    # the contract and the receipt, one tap apart
    contract = client.get(f"/h5/signing/{lease.agreement_id}/view/").content.decode()
    assert f'href="/h5/signing/{lease.agreement_id}/receipt/?from=records">查看押金收据' in contract
    stranger = client_for(world.other.user)
    assert stranger.get(url).status_code == 404
    assert stranger.get(src).status_code == 404
