"""The agreement's admin page names its text's variables in Chinese (正文变量), in a fixed
order, instead of printing the stored JSON with its English keys."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.models import User
from signing.admin import CONTEXT_LABELS
from signing.agreements.services import TEMPLATE_VARIABLES
from tests.signing.worlds import make_agreement

pytestmark = pytest.mark.django_db


def test_every_template_variable_has_a_chinese_label():
    known = set().union(*TEMPLATE_VARIABLES.values())
    assert sorted(known - set(CONTEXT_LABELS)) == []


def test_the_change_page_shows_the_variables_by_their_labels():
    agreement, _ = make_agreement(name="林安居")
    admin = User.objects.create_superuser(username="root-labels", password="x")
    client = Client()
    client.force_login(admin)
    page = client.get(f"/admin/signing/agreement/{agreement.pk}/change/").content.decode()
    assert "<div>姓名：林安居</div>" in page
    assert f"<div>协议验证码：{agreement.verification_code}</div>" in page
    assert page.index("姓名：") < page.index("排位号：") < page.index("签约机构：")
    assert '"organisation"' not in page and "&quot;organisation&quot;" not in page
