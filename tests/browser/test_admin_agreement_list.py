"""Issue 12 item 7: the agreement list reads at 1280 px (no horizontal overflow), in Chinese,
with a review link per row instead of an instruction to edit the URL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.browser.staff import second_factor, staff_login

pytestmark = pytest.mark.browser


def _agreements() -> None:
    from django.contrib.auth.hashers import PBKDF2PasswordHasher

    from accounts.models import Family, User
    from selection.demo import STAFF_PASSWORD, demo_data_load
    from signing.agreements import services
    from signing.agreements.seed import texts_seed
    from signing.models import AgreementTemplate

    demo_data_load()
    texts_seed()
    # the live server hashes with the project's hasher, not the tests' fast one
    hasher = PBKDF2PasswordHasher()
    User.objects.filter(username="reviewer").update(
        password=hasher.encode(STAFF_PASSWORD, hasher.salt())
    )
    now = timezone.now()
    template = AgreementTemplate.objects.get(kind="rent_subsidy")
    for family in Family.objects.order_by("rank")[:12]:
        services.agreement_create(
            family=family,
            template=template,
            window_starts_at=now - timedelta(hours=1),
            window_ends_at=now + timedelta(days=3),
            actor=None,
            now=now,
        )


def test_agreement_list_fits_1280(page, orm, screenshot):
    from selection.demo import STAFF_PASSWORD

    orm(_agreements)
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto("/admin/login/?next=/admin/signing/agreement/")
    page.fill("#id_username", "reviewer")
    page.fill("#id_password", STAFF_PASSWORD)
    page.click("input[type=submit]")
    second_factor(page, "reviewer")  # reviewers bind an authenticator at their first login
    page.wait_for_url(lambda url: url.endswith("/admin/signing/agreement/"))
    width = page.evaluate("document.documentElement.scrollWidth")
    shot = screenshot("admin_agreement_list_1280")
    assert width <= 1280, f"the list overflows: {width}px ({shot})"
    text = page.inner_text("#result_list")
    for english in ("TITLE", "FAMILY", "STATUS", "STEP", "ATTEMPT", "SIGNED AT"):
        assert english not in text
    assert "审核" in text and "状态" in text
    assert "地址末尾" not in page.inner_text("body")


def _operator_password() -> int:
    from django.contrib.auth.hashers import PBKDF2PasswordHasher

    from accounts.models import User
    from selection.demo import STAFF_PASSWORD
    from signing.models import Agreement

    hasher = PBKDF2PasswordHasher()
    User.objects.filter(username="operator").update(
        password=hasher.encode(STAFF_PASSWORD, hasher.salt())
    )
    return Agreement.objects.order_by("pk").first().pk


def test_an_operator_refused_a_review_page_sees_a_chinese_page(page, orm, screenshot):
    from selection.demo import STAFF_PASSWORD

    orm(_agreements)
    agreement_id = orm(_operator_password)
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto(f"/admin/login/?next=/admin/signing/agreement/{agreement_id}/review/")
    page.fill("#id_username", "operator")
    page.fill("#id_password", STAFF_PASSWORD)
    page.click("input[type=submit]")
    second_factor(page, "operator")  # reviewers bind an authenticator at their first login
    page.wait_for_url(lambda url: url.endswith("/review/"))
    screenshot("admin_forbidden_operator")
    body = page.inner_text("body")
    assert "无权访问此页面" in body and "操作员" in body
    assert "Forbidden" not in body


def _signed() -> int:
    from django.contrib.auth.hashers import PBKDF2PasswordHasher

    from accounts.models import User
    from selection.demo import STAFF_PASSWORD
    from tests.signing.test_review_admin import signed_agreement

    hasher = PBKDF2PasswordHasher()
    User.objects.filter(username="reviewer").update(
        password=hasher.encode(STAFF_PASSWORD, hasher.salt())
    )
    return signed_agreement().pk


def _status(agreement_id: int) -> str:
    from signing.models import Agreement

    return Agreement.objects.get(pk=agreement_id).status


def test_sealing_asks_for_a_ticked_confirmation(page, orm, screenshot):
    from selection.demo import STAFF_PASSWORD

    orm(_agreements)
    agreement_id = orm(_signed)
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto(f"/admin/login/?next=/admin/signing/agreement/{agreement_id}/review/")
    page.fill("#id_username", "reviewer")
    page.fill("#id_password", STAFF_PASSWORD)
    page.click("input[type=submit]")
    second_factor(page, "reviewer")  # reviewers bind an authenticator at their first login
    page.wait_for_url(lambda url: url.endswith("/review/"))
    screenshot("admin_review_confirm")
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.accept()))
    page.click("button[value=approve]")  # the box is required: the browser does not submit
    assert dialogs == [] and orm(_status, agreement_id) == "signed"
    page.check("input[name=confirm_seal]")
    page.click("button[value=approve]")
    page.wait_for_url(lambda url: "status__exact=signed" in url)
    assert dialogs and "盖章后不可撤销" in dialogs[0]
    assert orm(_status, agreement_id) == "sealed"
    screenshot("admin_review_sealed")


def _records() -> dict:
    """Demo data, a signed agreement with its evidence and SMS, and the supervisor's password
    as the live server hashes it."""
    from django.contrib.auth.hashers import PBKDF2PasswordHasher

    from accounts.models import User
    from selection.demo import STAFF_PASSWORD
    from selection.models import Session
    from tests.signing.test_review_admin import signed_agreement

    _agreements()
    hasher = PBKDF2PasswordHasher()
    User.objects.filter(username="supervisor").update(
        password=hasher.encode(STAFF_PASSWORD, hasher.salt())
    )
    return {
        "agreement": signed_agreement().pk,
        "session": Session.objects.order_by("order").first().pk,
    }


def test_a_supervisor_reads_an_agreement_seats_and_sms_records_in_chinese(page, orm, screenshot):
    """Pages a supervisor reads after the day, at 1280: a signed agreement, a session's
    families, the SMS records. Each fits the width and names things in Chinese (the crawl in
    tests/core/test_admin_crawl.py checks every page's text; this looks at them as rendered).
    The evidence chain itself reaches staff as the audited package download, not on the page."""
    from selection.demo import STAFF_PASSWORD

    ids = orm(_records)
    page.set_viewport_size({"width": 1280, "height": 800})
    staff_login(page, "supervisor", STAFF_PASSWORD, "/admin/")  # binds an authenticator first
    pages = {
        "agreement": (
            f"/admin/signing/agreement/{ids['agreement']}/change/",
            ("租金补贴协议（已签字）", "协议验证码：", "下载签约证据包"),
        ),
        "session_seats": (
            f"/admin/selection/session/{ids['session']}/change/",
            ("场次家庭", "排位 1 · "),
        ),
        "sms_records": ("/admin/sms/smsmessage/", ("短信验证码", "控制台（开发环境）")),
    }
    for name, (url, expected) in pages.items():
        page.goto(url)
        shot = screenshot(f"admin_{name}_1280")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 1280, f"{url} overflows: {width}px ({shot})"
        body = page.inner_text("#content")
        for text in expected:
            assert text in body, (url, text)
        assert " object (" not in body, url
