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
