"""Issue 12 item 1 through the admin: each staff operation is a page (form → one service →
message), offered to the roles that may run it, refused (Chinese 403) to the others, and every
bad input is a Chinese message with nothing changed. The field history page shows each change
before and after, with who and why."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.utils.timezone import localtime

from accounts.models import Applicant, AuditEntry, Family
from selection.demo import STAFF_PASSWORD
from selection.models import Allocation, Session, Unit
from tests.factories import log_entry

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(demo_data_once):  # the demo data, loaded once for the module (tests/conftest.py)

    def login(role: str) -> Client:
        client = Client()
        assert client.login(username=role, password=STAFF_PASSWORD)
        return client

    return login


def page(client, url, data=None):
    response = client.post(url, data) if data is not None else client.get(url)
    return response.status_code, response.content.decode()


def errors(html: str) -> str:
    blocks = re.findall(r'<(p|ul) class="(?:errornote|errorlist)[^"]*"[^>]*>(.*?)</\1>', html, re.S)
    return " ".join(re.sub(r"<[^>]+>", " ", body) for _, body in blocks)


def unscheduled_family() -> Family:
    from tests.factories import FamilyFactory

    return FamilyFactory(rank=900)


def op_url(obj, slug: str) -> str:
    return f"/admin/{obj._meta.app_label}/{obj._meta.model_name}/{obj.pk}/{slug}/"


def test_each_page_offers_its_operations_to_the_roles_that_may_run_them(staff):
    unit = Unit.objects.filter(status="available").first()
    session = Session.objects.filter(status="scheduled").first()
    family = Family.objects.first()
    applicant = family.main_applicant
    operator, reviewer, supervisor = staff("operator"), staff("reviewer"), staff("supervisor")
    pages = {
        f"/admin/selection/unit/{unit.pk}/change/": ["撤回房源"],
        f"/admin/selection/session/{session.pk}/change/": ["场次改期"],
        f"/admin/accounts/family/{family.pk}/change/": ["修改排位号", "修改可选户型"],
        f"/admin/accounts/applicant/{applicant.pk}/change/": ["更换登记手机号码"],
    }
    for url, links in pages.items():
        text = page(operator, url)[1]
        assert all(link in text for link in links), url
        assert not any(link in page(reviewer, url)[1] for link in links), url
    family_page = f"/admin/accounts/family/{family.pk}/change/"
    assert "工作人员分配房源" in page(supervisor, family_page)[1]
    assert "工作人员分配房源" not in page(operator, family_page)[1]


@pytest.mark.parametrize(
    "target,slug",
    [
        ("unit", "withdraw"),
        ("session", "reschedule"),
        ("family", "rank"),
        ("family", "layouts"),
        ("applicant", "mobile"),
        ("family", "allocate"),
    ],
)
def test_a_role_without_the_right_gets_the_chinese_403_and_nothing_changes(staff, target, slug):
    objects = {
        "unit": Unit.objects.filter(status="available").first(),
        "session": Session.objects.filter(status="scheduled").first(),
        "family": Family.objects.first(),
        "applicant": Applicant.objects.first(),
    }
    obj = objects[target]
    client = staff("reviewer" if slug != "allocate" else "operator")
    status, text = page(client, op_url(obj, slug))
    assert status == 403 and "无权访问此页面" in text
    before = AuditEntry.objects.count()
    status, _ = page(client, op_url(obj, slug), {"reason": "任意原因四字以上", "rank": 999})
    assert status == 403
    assert AuditEntry.objects.count() == before


def test_unauthenticated_staff_pages_send_to_the_admin_login(staff):
    unit = Unit.objects.first()
    response = Client().get(op_url(unit, "withdraw"))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_withdraw_through_the_admin_then_the_history_shows_it(staff):
    operator = staff("operator")
    unit = Unit.objects.filter(status="available").first()
    status, text = page(operator, op_url(unit, "withdraw"), {"reason": "漏"})
    assert status == 200 and "请填写操作原因（4至100字）" in errors(text)
    unit.refresh_from_db()
    assert unit.status == "available"
    response = operator.post(
        op_url(unit, "withdraw"), {"reason": "开发商通知漏水维修"}, follow=True
    )
    assert "已撤回房源" in response.content.decode()
    unit.refresh_from_db()
    assert unit.status == "withdrawn"
    history = page(operator, f"/admin/selection/unit/{unit.pk}/history/")[1]
    assert "状态</strong>：可选 → 已撤回" in history
    assert "开发商通知漏水维修" in history and "operator" in history
    # withdrawn: the page now offers restore, not withdraw; a second withdraw is refused
    text = page(operator, f"/admin/selection/unit/{unit.pk}/change/")[1]
    assert "恢复房源" in text and "撤回房源" not in text
    status, text = page(operator, op_url(unit, "withdraw"), {"reason": "开发商通知漏水维修"})
    assert status == 200 and "已撤回" in errors(text)


def test_reschedule_bad_inputs_are_chinese_messages(staff):
    operator = staff("operator")
    s2 = Session.objects.get(order=2)
    s3 = Session.objects.get(order=3)
    before = (s2.starts_at, s2.ends_at)
    for data, message in [
        ({"starts_at": "明天", "reason": "系统维护顺延"}, "输入一个有效的日期/时间"),
        (
            {"starts_at": f"{localtime(s3.starts_at):%Y-%m-%dT%H:%M}", "reason": "系统维护顺延"},
            "重叠",
        ),
        ({"starts_at": "2020-01-01T09:00", "reason": "系统维护顺延"}, "新的开始时间须晚于当前时间"),
    ]:
        status, text = page(operator, op_url(s2, "reschedule"), data)
        assert status == 200 and message in errors(text), (data, errors(text))
    s2.refresh_from_db()
    assert (s2.starts_at, s2.ends_at) == before


def test_family_and_applicant_bad_inputs(staff):
    operator = staff("operator")
    seated = Family.objects.get(rank=1)
    status, text = page(operator, op_url(seated, "rank"), {"rank": 901, "reason": "复核排位号更正"})
    assert "该家庭已安排选房场次" in errors(text)
    free = unscheduled_family()
    status, text = page(operator, op_url(free, "rank"), {"rank": 2, "reason": "复核排位号更正"})
    assert "排位号2已属于其他家庭" in errors(text)
    status, text = page(operator, op_url(free, "layouts"), {"reason": "复核户型"})
    assert "该字段是必填项" in errors(text)
    applicant = free.main_applicant
    status, text = page(
        operator, op_url(applicant, "mobile"), {"mobile": "12345", "reason": "原号码停用"}
    )
    assert "请输入11位中国大陆手机号码" in errors(text)
    applicant.refresh_from_db()
    free.refresh_from_db()
    assert free.rank == 900 and applicant.mobile != "12345"
    response = operator.post(
        op_url(applicant, "mobile"), {"mobile": "13900009999", "reason": "原号码停用"}, follow=True
    )
    assert "新旧号码均已发送通知短信" in response.content.decode()


def test_supervisor_staff_allocation_refused_while_the_session_is_open(staff):
    supervisor = staff("supervisor")
    family = Family.objects.get(rank=1)
    unit = Unit.objects.filter(status="available", layout__in=family.eligible_layouts).first()
    data = {"round": unit.round_id, "unit": "99-9999", "reason": "系统故障经主管批准"}
    status, text = page(supervisor, op_url(family, "allocate"), data)
    assert "没有房源99-9999" in errors(text)
    data["unit"] = unit.label
    status, text = page(supervisor, op_url(family, "allocate"), data)
    assert "该家庭的选房场次尚未结束" in errors(text)
    assert not Allocation.objects.exists()


def test_a_held_unit_cannot_be_withdrawn_from_its_page(staff):
    from django.db import transaction

    operator = staff("operator")
    unit = Unit.objects.filter(status="available").first()
    family = Family.objects.get(rank=1)
    with transaction.atomic():  # held: an allocation behind the 已选 status (the DB guard)
        Allocation.objects.create(
            round=unit.round,
            unit=unit,
            family=family,
            session=Session.objects.get(order=1),
            how=Allocation.How.STAFF,
            at=localtime(),
            ledger_entry=log_entry(round=unit.round, unit=unit, family=family),
        )
        Unit.objects.filter(pk=unit.pk).update(status=Unit.Status.TAKEN)
    text = page(operator, f"/admin/selection/unit/{unit.pk}/change/")[1]
    assert "撤回房源" not in text  # not offered...
    status, text = page(operator, op_url(unit, "withdraw"), {"reason": "开发商通知漏水维修"})
    assert status == 200 and "已被选定，不能撤回" in errors(text)  # ...and refused if forced
    unit.refresh_from_db()
    assert unit.status == Unit.Status.TAKEN
