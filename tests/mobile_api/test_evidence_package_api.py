"""The evidence package's downloads: the applicant's from the records page (网上签约记录) through
the API — only their own agreement, only once sealed — and the staff's from the agreement's
admin pages, audited; both the same package as `manage.py evidence_export`."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from urllib.parse import quote

import pytest
from django.contrib.auth.models import Group
from django.test import Client

from accounts.models import AuditEntry, User
from accounts.roles import roles_sync
from accounts.services import applicant_user_ensure
from signing.models import Agreement
from tests.mobile_api.conftest import error_code
from tests.signing.evidence_worlds import sealed_agreement
from tests.signing.viewer_worlds import ca_for
from tests.signing.worlds import make_agreement

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def ca_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("ca")


@pytest.fixture(autouse=True)
def _ca(settings, ca_dir):
    ca_for(settings, ca_dir)


def url(agreement_id) -> str:
    return f"/api/v1/signing/agreements/{agreement_id}/evidence-package/"


def client_for(applicant) -> Client:
    client = Client()
    client.force_login(applicant_user_ensure(applicant=applicant).user)
    return client


def unzip(response) -> dict[str, bytes]:
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    return {name: archive.read(name) for name in archive.namelist()}


def test_the_applicant_downloads_the_package_of_a_sealed_agreement():
    agreement, applicant = sealed_agreement()
    response = client_for(applicant).get(url(agreement.pk))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    assert response["Cache-Control"] == "private, no-store"
    code = agreement.verification_code
    assert response["Content-Disposition"] == (
        f'attachment; filename="evidence-package-{code}.zip"; '
        f"filename*=UTF-8''{quote(f'签约证据包-{code}.zip')}"
    )
    files = unzip(response)
    manifest = json.loads(files["manifest.json"])
    assert manifest["agreement"] == agreement.pk and manifest["head"]["count"] > 0
    assert "documents/attempt-1-sealed.pdf" in files


def test_anonymous_is_refused():
    agreement, _ = sealed_agreement()
    response = Client().get(url(agreement.pk))
    assert response.status_code == 401 and error_code(response) == "not_authenticated"


def test_another_familys_agreement_is_not_found():
    agreement, _ = sealed_agreement()
    _, stranger = make_agreement(name="张三")
    response = client_for(stranger).get(url(agreement.pk))
    assert response.status_code == 404 and error_code(response) == "agreement_not_found"


@pytest.mark.parametrize("status", ["pending", "signed", "void", "abandoned"])
def test_before_sealing_there_is_no_package(status):
    agreement, applicant = make_agreement()
    Agreement.objects.filter(pk=agreement.pk).update(status=status)
    response = client_for(applicant).get(url(agreement.pk))
    assert response.status_code == 409 and error_code(response) == "evidence_package_not_ready"
    assert response.json()["error"]["message"] == "协议盖章后才能下载签约证据包"


@pytest.mark.parametrize("bad", ["abc", "0x1", str(2**63), "-1"])
def test_an_invalid_id_is_404(bad):
    _, applicant = make_agreement()
    response = client_for(applicant).get(f"/api/v1/signing/agreements/{bad}/evidence-package/")
    assert response.status_code == 404


def test_an_unknown_id_is_404_with_the_error_body():
    _, applicant = make_agreement()
    response = client_for(applicant).get(url(987654))
    assert response.status_code == 404 and error_code(response) == "agreement_not_found"


def test_the_records_page_offers_the_package_for_sealed_agreements_only():
    from django.contrib.staticfiles import finders

    script = open(finders.find("h5/lease-records.js"), encoding="utf-8").read()
    assert 'agreement.status === "sealed"' in script
    assert "/evidence-package/" in script and "签约证据包" in script


# --------------------------------------------------------------------------------- staff


def staff(role: str | None) -> tuple[Client, User]:
    roles_sync()
    user = User.objects.create_user(username=f"evidence-staff-{role or 'none'}", is_staff=True)
    if role:
        user.groups.set([Group.objects.get(name=role)])
    client = Client(REMOTE_ADDR="10.9.0.7")
    client.force_login(user)
    return client, user


def admin_url(agreement_id) -> str:
    return f"/admin/signing/agreement/{agreement_id}/evidence-package/"


@pytest.mark.parametrize("role", ["operator", "reviewer", "supervisor"])
def test_staff_download_is_audited(role):
    agreement, _ = sealed_agreement()
    client, user = staff(role)
    response = client.get(admin_url(agreement.pk))
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    assert "filename*=UTF-8''" in response["Content-Disposition"]
    manifest_bytes = unzip(response)["manifest.json"]
    manifest = json.loads(manifest_bytes)
    entry = AuditEntry.objects.get(action="signing.evidence_package_download")
    assert entry.actor == user and entry.ip == "10.9.0.7"
    assert entry.detail["agreement_id"] == agreement.pk
    assert entry.detail["manifest_sha256"] == hashlib.sha256(manifest_bytes).hexdigest()
    assert entry.detail["head_count"] == manifest["head"]["count"]
    assert entry.detail["head_last_hash"] == manifest["head"]["last_hash"]


def test_staff_may_export_an_agreement_that_is_not_sealed():
    agreement, _ = make_agreement()
    client, _ = staff("operator")
    response = client.get(admin_url(agreement.pk))
    assert response.status_code == 200
    manifest = json.loads(unzip(response)["manifest.json"])
    assert manifest["sealed_pdf"] is None and manifest["head"]["count"] == 1


def test_staff_without_the_view_right_are_refused_and_nothing_is_audited():
    agreement, _ = sealed_agreement()
    client, _ = staff(None)
    assert client.get(admin_url(agreement.pk)).status_code == 403
    assert not AuditEntry.objects.filter(action="signing.evidence_package_download").exists()
    anonymous = Client().get(admin_url(agreement.pk))
    assert anonymous.status_code == 302 and "/login/" in anonymous["Location"]


def test_an_unknown_agreement_is_404_in_the_admin():
    client, _ = staff("reviewer")
    assert client.get(admin_url(987654)).status_code == 404
    assert not AuditEntry.objects.filter(action="signing.evidence_package_download").exists()


def test_the_agreement_pages_link_to_the_package():
    agreement, _ = sealed_agreement()
    client, _ = staff("reviewer")
    change = client.get(f"/admin/signing/agreement/{agreement.pk}/change/").content.decode()
    review = client.get(f"/admin/signing/agreement/{agreement.pk}/review/").content.decode()
    for page in (change, review):
        assert admin_url(agreement.pk) in page and "下载签约证据包" in page
