"""《个人信息保护政策》 at first login and after a new version (accounts/privacy.py), and the
applicant's own personal-data download from 「我的」 (signing/personal_data.py)."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
import time_machine

from accounts.models import AuditEntry, PrivacyAcknowledgement
from accounts.privacy import privacy_forget
from core.context import RequestContext
from signing.agreements.seed import texts_seed
from signing.lease.services import lease_start
from signing.models import ConsentKind, ConsentText
from tests.factories import FamilyFactory
from tests.mobile_api.conftest import ApiClient, error_code
from tests.signing.lease_worlds import (
    ACCOUNT,
    NOW,
    lease_info_filled,
    make_lease_world,
)

NOTICE = "/api/v1/me/privacy/"
DOWNLOAD = "/api/v1/me/personal-data/"
GATED_API = "/api/v1/selection/rounds/"
GATED_PAGE = "/h5/me/"


@pytest.fixture(autouse=True)
def _forget():
    privacy_forget()
    yield
    privacy_forget()


@pytest.fixture
def newcomer(db):
    """A family whose applicant logs in for the first time (nothing acknowledged yet)."""
    texts_seed()
    family = FamilyFactory(main_applicant__privacy_version=0)
    api = ApiClient()
    api.login(family.main_applicant)
    return family.main_applicant, api


def test_unauthenticated_gets_401_and_the_login_page(db):
    texts_seed()
    api = ApiClient()
    assert api.get(NOTICE).status_code in (401, 403)
    assert api.post(NOTICE, {"version": 1}).status_code in (401, 403)
    page = api.get("/h5/privacy/")
    assert page.status_code == 302 and page["Location"].startswith("/h5/login/")


def test_not_acknowledged_is_sent_to_the_notice_everywhere(newcomer):
    applicant, api = newcomer
    page = api.get(GATED_PAGE)
    assert page.status_code == 302
    assert page["Location"] == "/h5/privacy/?next=/h5/me/"
    assert api.get("/h5/").status_code == 302
    refused = api.get(GATED_API)
    assert refused.status_code == 403 and error_code(refused) == "privacy_notice_required"
    assert api.get(DOWNLOAD).status_code == 403
    # What stays reachable: the notice (page and API), who am I, logout.
    notice = api.get("/h5/privacy/?next=/h5/me/")
    assert notice.status_code == 200
    text = notice.content.decode()
    assert "个人信息保护政策" in text and "同意并继续" in text and 'data-version="1"' in text
    state = api.get(NOTICE).json()
    assert state["required"] is True and state["version"] == 1
    assert state["acknowledged_version"] == 0
    assert api.get("/api/v1/me/").status_code == 200


def test_acknowledging_opens_everything_and_is_recorded(newcomer):
    applicant, api = newcomer
    with time_machine.travel(NOW, tick=False):
        answer = api.post(NOTICE, {"version": 1})
    assert answer.status_code == 200, answer.content
    assert answer.json()["required"] is False
    assert api.get(GATED_PAGE).status_code == 200
    assert api.get(GATED_API).status_code == 200
    ack = PrivacyAcknowledgement.objects.get(applicant=applicant)
    assert ack.version == 1 and ack.at == NOW and ack.ip == "10.1.1.1"
    assert len(ack.text_sha256) == 64
    applicant.refresh_from_db()
    assert applicant.privacy_version == 1
    # Again: a no-op, not a second record.
    assert api.post(NOTICE, {"version": 1}).status_code == 200
    assert PrivacyAcknowledgement.objects.filter(applicant=applicant).count() == 1


def test_a_new_version_is_asked_for_again(newcomer):
    applicant, api = newcomer
    assert api.post(NOTICE, {"version": 1}).status_code == 200
    assert api.get(GATED_API).status_code == 200
    ConsentText.objects.create(
        kind=ConsentKind.PRIVACY, version=2, title="个人信息保护政策", body="第二版正文"
    )
    refused = api.get(GATED_API)
    assert refused.status_code == 403 and error_code(refused) == "privacy_notice_required"
    assert api.get(GATED_PAGE)["Location"] == "/h5/privacy/?next=/h5/me/"
    page = api.get("/h5/privacy/").content.decode()
    assert "第二版正文" in page and "已更新" in page
    # The old version shown on a page left open: refused, nothing recorded.
    stale = api.post(NOTICE, {"version": 1})
    assert stale.status_code == 409 and error_code(stale) == "consent_outdated"
    assert api.post(NOTICE, {"version": 2}).status_code == 200
    assert api.get(GATED_API).status_code == 200
    assert list(
        PrivacyAcknowledgement.objects.filter(applicant=applicant).values_list("version", flat=True)
    ) == [1, 2]


@pytest.mark.parametrize("body", [{}, {"version": "x"}, {"version": 0}, {"version": 99}])
def test_bad_acknowledgements_are_refused_and_change_nothing(newcomer, body):
    applicant, api = newcomer
    answer = api.post(NOTICE, body)
    assert answer.status_code in (400, 409)
    assert error_code(answer) in {"invalid_input", "consent_outdated"}
    assert not PrivacyAcknowledgement.objects.exists()
    assert api.get(GATED_API).status_code == 403


def test_without_a_configured_notice_nothing_is_asked(db):
    family = FamilyFactory(main_applicant__privacy_version=0)
    api = ApiClient()
    api.login(family.main_applicant)
    assert api.get(GATED_API).status_code == 200
    assert api.get(GATED_PAGE).status_code == 200
    missing = api.post(NOTICE, {"version": 1})
    assert missing.status_code == 403 and error_code(missing) == "consent_missing"


# ------------------------------------------------------------------- personal-data download


@pytest.fixture
def leased(db):
    ctx = RequestContext(ip="10.0.0.3", user_agent="pytest")
    with time_machine.travel(NOW, tick=False):
        world = make_lease_world()
        lease = lease_start(applicant=world.applicant, ctx=ctx, now=NOW)
        lease_info_filled(world=world, lease=lease, account_number=ACCOUNT, ctx=ctx, now=NOW)
    return world


def test_the_download_needs_a_login(db):
    api = ApiClient()
    answer = api.get(DOWNLOAD)
    assert answer.status_code in (401, 403)
    assert answer["Content-Type"].startswith("application/json")


def test_the_download_is_the_applicants_own_data_with_the_photos(leased):
    api = ApiClient()
    api.login(leased.applicant)
    answer = api.get(DOWNLOAD)
    assert answer.status_code == 200
    assert answer["Content-Type"] == "application/zip"
    assert "attachment" in answer["Content-Disposition"]
    assert answer["Cache-Control"] == "private, no-store"
    archive = zipfile.ZipFile(io.BytesIO(answer.content))
    data = json.loads(archive.read("personal-data.json"))
    assert data["applicant"]["id_number"] == leased.applicant.id_number
    assert data["applicant"]["mobile"] == leased.applicant.mobile
    assert data["family"]["rank"] == leased.family.rank
    [lease] = data["leases"]
    assert lease["account_number"] == ACCOUNT
    assert len(lease["card_photos"]) == 2
    for photo in lease["card_photos"]:
        assert archive.read(photo["file"])[:3] == b"\xff\xd8\xff"
    assert data["logins"] and data["logins"][0]["provider"] == "dev_sms"
    assert data["allocations"] and data["agreements"]
    # Nothing of the other family of the same round.
    text = answer.content.decode("latin-1")
    assert leased.other.id_number not in json.dumps(data)
    assert leased.other.real_name not in json.dumps(data, ensure_ascii=False)
    assert leased.other.id_number not in text
    assert AuditEntry.objects.filter(
        action="applicant.personal_data_downloaded", target=f"applicant:{leased.applicant.pk}"
    ).exists()


def test_another_applicant_cannot_ask_for_someone_elses_data(leased):
    """The applicant comes from the login; the request cannot name anyone else."""
    api = ApiClient()
    api.login(leased.other)
    for url in (
        DOWNLOAD,
        f"{DOWNLOAD}?applicant={leased.applicant.pk}",
        f"{DOWNLOAD}?id_number={leased.applicant.id_number}",
    ):
        answer = api.get(url)
        assert answer.status_code == 200
        data = json.loads(zipfile.ZipFile(io.BytesIO(answer.content)).read("personal-data.json"))
        assert data["applicant"]["id_number"] == leased.other.id_number
        assert data["leases"] == []  # the other family has no lease
        assert leased.applicant.id_number not in json.dumps(data)
    assert api.post(DOWNLOAD).status_code == 405


def test_the_me_page_links_the_download_and_the_notice(leased):
    api = ApiClient()
    api.login(leased.applicant)
    page = api.get("/h5/me/").content.decode()
    assert 'href="/api/v1/me/personal-data/"' in page and "下载我的个人信息" in page
    assert 'href="/h5/privacy/"' in page


def test_a_process_remembers_the_notice_for_the_configured_time(db, settings):
    """Another process's new version (no signal here: bulk_create) is seen after the memory
    is forgotten, or at once when the memory is off (0 seconds)."""
    from accounts.privacy import privacy_current

    texts_seed()
    assert privacy_current().version == 1
    ConsentText.objects.bulk_create(
        [ConsentText(kind=ConsentKind.PRIVACY, version=2, title="个人信息保护政策", body="二")]
    )
    assert privacy_current().version == 1  # remembered
    settings.PRIVACY_NOTICE_CACHE_SECONDS = 0
    privacy_forget()
    assert privacy_current().version == 2
    ConsentText.objects.bulk_create(
        [ConsentText(kind=ConsentKind.PRIVACY, version=3, title="个人信息保护政策", body="三")]
    )
    assert privacy_current().version == 3  # not remembered
