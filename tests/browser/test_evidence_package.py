"""签约证据包 walked in Chromium: the family on its phone downloads the evidence package of its
sealed agreement from 网上签约记录 (and sees no button on an agreement that is not sealed);
staff at a 1280 px desktop download it from the agreement's admin page and the review page
(the download is audited); a staff member without `signing.view_agreement` gets the Chinese
403. Each zip carries manifest.json and the sealed PDF and passes `tools/verify.py package`,
run as an applicant would run it (a subprocess, nothing of Anju importable).

The world is signed and sealed at the real time with the server's own CA (settings.SIGNING's
CA_DIR, shared with the live server through the environment): the package's
certificates/ca-root.pem is the server's, so the PDFs it carries must have been signed under
that root, and at a time its certificates cover."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import zipfile
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from playwright.sync_api import expect

from tests.browser.conftest import RESULTS, ROOT
from tests.browser.staff import second_factor
from tests.browser.test_login import latest_code
from tests.browser.test_signing_flow import _logged_in_session

pytestmark = pytest.mark.browser

VERIFY = ROOT / "tools" / "verify.py"
STAFF_PASSWORD = "Evidence-walk-2026"


def _sealed_at_now() -> dict:
    """A family with two 租金补贴协议: one voided when its window ran out, and one that went
    through the whole phone flow (consents, a passed face check, the reading, every
    character, the SMS code, the submit) and was sealed, all at the real time."""
    from django.contrib.auth.hashers import PBKDF2PasswordHasher
    from django.contrib.auth.models import Group, Permission
    from django.utils import timezone

    from accounts.models import User
    from accounts.roles import roles_sync
    from accounts.services import applicant_user_ensure
    from signing.agreements import flow, services
    from signing.agreements.seed import texts_seed
    from signing.models import Agreement, AgreementTemplate, ConsentKind, FaceCheck, TemplateKind
    from tests.factories import FamilyFactory
    from tests.signing.worlds import CTX, strokes

    texts_seed()
    roles_sync()
    now = timezone.now()
    family = FamilyFactory(main_applicant__real_name="林安居")
    applicant = family.main_applicant
    applicant_user_ensure(applicant=applicant)
    template = AgreementTemplate.objects.get(kind=TemplateKind.RENT_SUBSIDY, version=1)

    def create(starts, ends, at):
        return services.agreement_create(
            family=family,
            template=template,
            window_starts_at=starts,
            window_ends_at=ends,
            actor=None,
            now=at,
        )

    lapsed = create(now - timedelta(days=3), now - timedelta(days=2), now - timedelta(days=3))
    assert services.agreements_void_due(now=now) == [lapsed.pk]
    agreement = create(now - timedelta(hours=1), now + timedelta(days=1), now)

    def versions(*kinds):
        return {k: flow.consent_current(k).version for k in kinds}

    kw = {"agreement_id": agreement.pk, "applicant": applicant, "ctx": CTX, "now": now}
    flow.contract_view(**kw)
    flow.ecert_consent(versions=versions(ConsentKind.ECERT_SERVICE, ConsentKind.PRIVACY), **kw)
    flow.identity_confirm(versions=versions(ConsentKind.PRIVACY, ConsentKind.BIOMETRIC), **kw)
    face = FaceCheck.objects.create(
        agreement=agreement,
        attempt=1,
        provider="dev",
        order_id="fc_evidence_walk",
        status=FaceCheck.Status.PASSED,
        score=0.91,
        result_id="face-result-walk",
        created_at=now,
        completed_at=now,
    )
    flow.face_verified(face_check=face, **kw)
    flow.agreement_read(scrolled_to_end=True, reading_seconds=30, **kw)
    for index in range(len(agreement.signer_name)):
        flow.signature_character_save(
            index=index, strokes=strokes(t0=index * 1000), width=300, height=300, **kw
        )
    flow.signature_complete(**kw)
    flow.sign_code_send(**kw)
    flow.sign_submit(code=latest_code(applicant.mobile), **kw)

    # Staff: the live server hashes with the project's hasher, not the tests' fast one.
    hasher = PBKDF2PasswordHasher()

    def staff(username: str, group: str | None = None) -> User:
        user = User.objects.create(
            username=username,
            is_staff=True,
            password=hasher.encode(STAFF_PASSWORD, hasher.salt()),
        )
        if group:
            user.groups.add(Group.objects.get(name=group))
        return user

    reviewer = staff("ev-reviewer", "reviewer")
    staff("ev-operator", "operator")
    # Staff who read units only: no signing.view_agreement.
    clerk = staff("ev-clerk")
    clerk.user_permissions.add(Permission.objects.get(codename="view_unit"))
    services.agreement_approve(agreement_id=agreement.pk, actor=reviewer, now=timezone.now())
    agreement.refresh_from_db()
    assert agreement.status == Agreement.Status.SEALED
    return {"applicant": applicant.pk, "sealed": agreement.pk, "void": lapsed.pk}


def _audit_entries(agreement_id: int) -> list[dict]:
    from accounts.models import AuditEntry

    return list(
        AuditEntry.objects.filter(
            action="signing.evidence_package_download", detail__agreement_id=agreement_id
        )
        .order_by("id")
        .values("actor__username", "detail")
    )


def _sealed_pdf(agreement_id: int) -> bytes:
    from signing.models import AgreementDocument

    return bytes(AgreementDocument.objects.get(agreement_id=agreement_id, stage="sealed").pdf)


def _shot(tab, name: str) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"evidence_package_{name}.png"
    tab.screenshot(path=str(path), full_page=True)
    return path


def _check_package(path: Path, agreement_id: int, sealed_pdf: bytes) -> dict:
    """The zip holds manifest.json and the sealed PDF (the stored one, byte for byte), and
    the offline verifier accepts it."""
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        manifest = json.loads(archive.read("manifest.json"))
        assert manifest["agreement"] == agreement_id
        assert manifest["sealed_pdf"] in names
        assert archive.read(manifest["sealed_pdf"]) == sealed_pdf
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "DJANGO_SETTINGS_MODULE")}
    result = subprocess.run(  # noqa: S603 (fixed command)
        [sys.executable, str(VERIFY), "package", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=path.parent,
        env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "RESULT: OK" in result.stdout
    return manifest


def test_the_family_downloads_the_package_of_its_sealed_agreement(page, live_url, orm, tmp_path):
    world = orm(_sealed_at_now)
    page.context.add_cookies(
        [
            {
                "name": django_settings.SESSION_COOKIE_NAME,
                "value": orm(_logged_in_session, world["applicant"]),
                "url": live_url,
            }
        ]
    )
    page.goto("/h5/")
    page.get_by_role("link", name="我的", exact=True).tap()
    page.get_by_role("link", name=re.compile("^网上签约记录")).tap()
    expect(page).to_have_url(f"{live_url}/h5/me/leases/")

    sealed = page.locator(f'article[data-agreement-id="{world["sealed"]}"]')
    void = page.locator(f'article[data-agreement-id="{world["void"]}"]')
    expect(sealed.locator(".anju-badge")).to_have_text("已盖章")
    expect(void.locator(".anju-badge")).to_have_text("作废")
    button = sealed.get_by_role("button", name="签约证据包")
    expect(button).to_be_visible()
    expect(void.get_by_role("button", name="签约证据包")).to_have_count(0)
    expect(page.get_by_role("button", name="签约证据包")).to_have_count(1)
    expect(page.locator("#records-tips")).to_contain_text("点击「签约证据包」可下载全部签约记录")
    _shot(page, "phone_records")

    with page.expect_download() as download:
        button.tap()
    saved = download.value
    assert saved.suggested_filename.endswith(".zip")
    assert "签约证据包" in saved.suggested_filename
    path = tmp_path / "package.zip"
    saved.save_as(path)
    _check_package(path, world["sealed"], orm(_sealed_pdf, world["sealed"]))
    # The page stays where it was (a download, not a navigation).
    expect(page).to_have_url(f"{live_url}/h5/me/leases/")
    _shot(page, "phone_after_download")

    # Control: the void agreement's package is refused with the API's Chinese 409.
    refused = page.request.get(f"/api/v1/signing/agreements/{world['void']}/evidence-package/")
    assert refused.status == 409
    error = refused.json()["error"]
    assert error["code"] == "evidence_package_not_ready"
    assert error["message"] == "协议盖章后才能下载签约证据包"
    assert orm(_audit_entries, world["sealed"]) == []  # the family's download is not staff's


def _staff_login(tab, username: str, next_url: str) -> None:
    tab.goto(f"/admin/login/?next={next_url}")
    tab.fill("#id_username", username)
    tab.fill("#id_password", STAFF_PASSWORD)
    tab.click("input[type=submit]")
    second_factor(tab, username)  # reviewers and supervisors bind an authenticator first
    tab.wait_for_url(re.compile(re.escape(next_url) + "$"))


def test_staff_download_the_package_and_the_download_is_audited(desktop, orm, tmp_path):
    world = orm(_sealed_at_now)
    sealed_pdf = orm(_sealed_pdf, world["sealed"])

    # An operator on the agreement's admin page.
    change = f"/admin/signing/agreement/{world['sealed']}/change/"
    _staff_login(desktop, "ev-operator", change)
    link = desktop.get_by_role("link", name="下载签约证据包")
    expect(link).to_be_visible()
    assert desktop.evaluate("document.documentElement.scrollWidth") <= 1280
    content = desktop.inner_text("#content-main")
    assert "签约机构：" in content and '"organisation"' not in content  # 正文变量 in Chinese
    _shot(desktop, "admin_change_page")
    with desktop.expect_download() as download:
        link.click()
    path = tmp_path / "operator.zip"
    download.value.save_as(path)
    assert "签约证据包" in download.value.suggested_filename
    manifest = _check_package(path, world["sealed"], sealed_pdf)
    entries = orm(_audit_entries, world["sealed"])
    assert len(entries) == 1
    assert entries[0]["actor__username"] == "ev-operator"
    with zipfile.ZipFile(path) as archive:
        manifest_bytes = archive.read("manifest.json")
    assert entries[0]["detail"]["manifest_sha256"] == hashlib.sha256(manifest_bytes).hexdigest()
    assert entries[0]["detail"]["head_last_hash"] == manifest["head"]["last_hash"]

    desktop.context.clear_cookies()

    # A reviewer on the review page.
    review = f"/admin/signing/agreement/{world['sealed']}/review/"
    _staff_login(desktop, "ev-reviewer", review)
    link = desktop.get_by_role("link", name="下载签约证据包")
    expect(link).to_be_visible()
    expect(desktop.locator("#content")).to_contain_text("下载会记入操作日志")
    _shot(desktop, "admin_review_page")
    with desktop.expect_download() as download:
        link.click()
    path = tmp_path / "reviewer.zip"
    download.value.save_as(path)
    _check_package(path, world["sealed"], sealed_pdf)
    assert [e["actor__username"] for e in orm(_audit_entries, world["sealed"])] == [
        "ev-operator",
        "ev-reviewer",
    ]


def test_staff_without_the_view_permission_get_the_chinese_403(desktop, orm):
    world = orm(_sealed_at_now)
    url = f"/admin/signing/agreement/{world['sealed']}/evidence-package/"
    _staff_login(desktop, "ev-clerk", url)
    body = desktop.inner_text("body")
    assert "无权访问此页面" in body and "Forbidden" not in body, body
    _shot(desktop, "admin_403")
    # Nor can they open the agreement's page, where the link is.
    desktop.goto(f"/admin/signing/agreement/{world['sealed']}/change/")
    assert "无权访问此页面" in desktop.inner_text("body")
    expect(desktop.get_by_role("link", name="下载签约证据包")).to_have_count(0)
    assert orm(_audit_entries, world["sealed"]) == []
