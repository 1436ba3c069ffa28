"""Staff admin pages read in Chinese: no English left in their text, the screen-reader
headers of the app list included (locale/zh_Hans adds what Django's zh_Hans lacks)."""

from __future__ import annotations

import html
import re

import pytest

pytestmark = pytest.mark.django_db

# Names, not words: the test superuser's username and the authenticator apps' names.
ALLOWED = {"admin", "Google", "Microsoft", "Authenticator"}


def _english(page: str) -> set[str]:
    page = re.sub(r'id="otp-secret">[^<]*<', "<", page)  # the TOTP secret, base32
    text = re.sub(r"<script.*?</script>|<style.*?</style>|<[^>]+>", " ", page, flags=re.S)
    return set(re.findall(r"[A-Za-z]{3,}", html.unescape(text))) - ALLOWED


@pytest.mark.parametrize(
    "path",
    [
        "/admin/",
        "/admin/selection/round/",
        "/admin/signing/agreement/",
        "/admin/accounts/auditentry/",
        "/admin/otp/setup/",
    ],
)
def test_admin_pages_have_no_english_text(admin_client, path):
    response = admin_client.get(path)
    assert response.status_code == 200
    assert _english(response.content.decode()) == set(), path


def test_the_staff_site_says_logging_out_one_way_and_the_welcome_without_a_full_stop(
    admin_client,
):
    index = admin_client.get("/admin/").content.decode()
    assert "退出登录" in index and "注销" not in index
    assert "暂无" in index and "无可选的" not in index  # 我的动作, none yet
    assert re.search(r"欢迎，<strong>[^<]+</strong>(?!\.)", index)
    out = admin_client.post("/admin/logout/")
    page = out.content.decode()
    assert out.status_code == 200
    assert "您已退出安居管理后台。" in page and "重新登录" in page
    assert "美好时光" not in page and "登出" not in page
    assert _english(page) == set()


def test_an_applicant_at_the_staff_login_is_not_shown_an_internal_username(client):
    from accounts.services import applicant_user_ensure
    from tests.factories import FamilyFactory

    user = applicant_user_ensure(applicant=FamilyFactory().main_applicant).user
    client.force_login(user)
    page = client.get("/admin/login/").content.decode()
    assert "您当前以申请人账号登录" in page
    assert user.get_username() not in page and "applicant-" not in page
