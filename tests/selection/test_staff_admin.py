"""The staff tools on the round and session admin: import (check, then confirm), schedule,
supplementary sessions, export to XLSX, live view; roles and the audit trail."""

from __future__ import annotations

import io
import zipfile
from datetime import timedelta

import openpyxl
import pytest
from django.contrib.auth.models import Group
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone

from accounts.models import Applicant, AuditEntry, Family, User
from selection import allocation, carts, translog
from selection.exports import RESULT_HEADERS
from selection.models import Allocation, Seat, Session, SupplementaryApplication, Unit
from tests.factories import FamilyFactory, id_number_for
from tests.worlds import enter, preselect, supplementary_world

pytestmark = pytest.mark.django_db

UNITS_CSV = "楼栋,房号,楼层,户型,朝向,面积,月租金\n"


@pytest.fixture
def staff():
    def login(role: str | None) -> Client:
        user = User.objects.create(username=f"staff-{role}", is_staff=True)
        if role:
            user.groups.set([Group.objects.get(name=role)])
        client = Client()
        client.force_login(user)
        return client

    return login


def url(world, tool: str) -> str:
    return f"/admin/selection/round/{world.round.pk}/{tool}/"


def upload(name: str, content: bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content)


def test_the_round_page_shows_each_role_its_tools(staff, world):
    page = staff("operator").get(f"/admin/selection/round/{world.round.pk}/change/")
    text = page.content.decode()
    for tool in ("导入房源", "导入家庭", "按排位安排场次", "安排补选场次", "导出选房结果"):
        assert tool in text
    text = staff("reviewer").get(f"/admin/selection/round/{world.round.pk}/change/").content
    assert "导出选房结果" in text.decode() and "导入房源" not in text.decode()


@pytest.mark.parametrize("tool", ["import-units", "import-families", "schedule", "supplementary"])
def test_a_reviewer_cannot_import_or_schedule(staff, world, tool):
    reviewer = staff("reviewer")
    assert reviewer.get(url(world, tool)).status_code == 403
    response = reviewer.post(url(world, tool), {"file": upload("u.csv", UNITS_CSV.encode())})
    assert response.status_code == 403
    assert Unit.objects.count() == len(world.units)


@pytest.mark.parametrize(
    "role,tool,status",
    [
        ("operator", "import-units", 200),
        ("operator", "import-families", 200),
        ("operator", "schedule", 200),
        ("operator", "supplementary", 200),
        ("supervisor", "import-units", 200),
        ("reviewer", "export", 200),
        (None, "export", 403),  # staff without a role
        (None, "import-units", 403),
    ],
)
def test_tool_permissions(staff, world, role, tool, status):
    assert staff(role).get(url(world, tool)).status_code == status


def test_anonymous_is_sent_to_the_login_page(world):
    response = Client().get(url(world, "export"))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_units_import_check_then_confirm(staff, world):
    operator = staff("operator")
    content = (
        UNITS_CSV + "8,101,1,一房一厅,南,45.2,1469\n8,102,1,两房一厅,北,64.8,2106\n"
    ).encode()
    page = operator.post(url(world, "import-units"), {"file": upload("units.csv", content)})
    text = page.content.decode()
    assert page.status_code == 200 and "检查通过" in text and "确认导入" in text
    assert not Unit.objects.filter(building="8").exists()  # the check wrote nothing
    token = page.context["token"]
    done = operator.post(url(world, "import-units"), {"token": token})
    assert done.status_code == 302 and done["Location"].endswith(f"/{world.round.pk}/change/")
    assert set(
        Unit.objects.filter(round=world.round, building="8").values_list("number", flat=True)
    ) == {"101", "102"}
    entries = AuditEntry.objects.filter(action="selection.units_import").order_by("id")
    assert [e.detail["dry_run"] for e in entries] == [True, False]
    assert all(e.actor.username == "staff-operator" for e in entries)
    assert entries[1].detail["written"] and entries[1].detail["source"].startswith("units.csv")
    followed = operator.get(done["Location"])
    assert "已导入2套房源" in followed.content.decode()
    # The token is spent: confirming again imports nothing twice.
    again = operator.post(url(world, "import-units"), {"token": token})
    assert again.status_code == 302 and Unit.objects.filter(building="8").count() == 2


def test_a_bad_xlsx_lists_every_bad_row(staff, world):
    book = openpyxl.Workbook()
    for row in [
        ["楼栋", "房号", "楼层", "户型", "朝向", "面积", "月租金"],
        ["8", "101", 1, "一房一厅", "南", 45.2, 1469],
        ["8", "102", 1, "四房", "南", 45.2, 1469],
        ["8", "103", 1, "一房一厅", "南", 0, 1469],
        ["8", "101", 1, "一房一厅", "南", 45.2, 1469],
    ]:
        book.active.append(row)
    out = io.BytesIO()
    book.save(out)
    operator = staff("operator")
    page = operator.post(url(world, "import-units"), {"file": upload("u.xlsx", out.getvalue())})
    text = page.content.decode()
    assert "3 处有误，本次未导入任何数据" in text
    assert "第3行" in text and "第4行" in text and "第5行" in text and "第2行</td>" not in text
    assert "确认导入" not in text and page.context["token"] is None
    assert not Unit.objects.filter(building="8").exists()


def test_an_unreadable_file_is_a_form_error(staff, world):
    page = staff("operator").post(
        url(world, "import-units"), {"file": upload("u.xlsx", b"not a workbook")}
    )
    assert page.status_code == 200 and "无法读取该 XLSX 文件" in page.content.decode()


def test_someone_elses_token_is_refused(staff, world):
    content = (UNITS_CSV + "8,101,1,一房一厅,南,45.2,1469\n").encode()
    page = staff("operator").post(url(world, "import-units"), {"file": upload("u.csv", content)})
    response = staff("supervisor").post(
        url(world, "import-units"), {"token": page.context["token"]}
    )
    assert response.status_code == 302 and response["Location"] == url(world, "import-units")
    assert not Unit.objects.filter(building="8").exists()


def test_families_import_through_the_admin(staff, world):
    content = (
        "排位号,家庭人数,可选户型,姓名,身份证号码,手机号码\n"
        f"901,2,一房一厅、两房一厅,陈一,{id_number_for(801)},13800000801\n"
    ).encode()
    operator = staff("operator")
    page = operator.post(url(world, "import-families"), {"file": upload("f.csv", content)})
    assert "将新增 1 户家庭" in page.content.decode()
    done = operator.post(url(world, "import-families"), {"token": page.context["token"]})
    assert done.status_code == 302
    assert Family.objects.get(rank=901).main_applicant.real_name == "陈一"
    assert AuditEntry.objects.filter(
        action="selection.families_import", detail__written=True
    ).exists()


def test_schedule_from_rank_blocks_through_the_admin(staff, world):
    for rank in range(11, 16):
        FamilyFactory(rank=rank)
    start = (timezone.localtime() + timedelta(days=1)).replace(second=0, microsecond=0)
    response = staff("operator").post(
        url(world, "schedule"),
        {"first_start": start.strftime("%Y-%m-%dT%H:%M"), "block_size": 2, "gap_minutes": 3},
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    new = list(Session.objects.filter(round=world.round, order__gt=2).order_by("order"))
    assert [s.seats.count() for s in new] == [2, 2, 1]
    assert new[0].starts_at == start
    assert new[1].starts_at - new[0].starts_at == timedelta(minutes=3)
    entry = AuditEntry.objects.get(action="selection.sessions_schedule")
    assert entry.actor.username == "staff-operator" and entry.detail["sessions"] == [
        s.pk for s in new
    ]


def test_schedule_overlap_is_shown_as_a_form_error(staff, world):
    FamilyFactory(rank=11)
    start = (timezone.localtime() + timedelta(days=1)).replace(second=0, microsecond=0)
    Session.objects.create(
        round=world.round, order=3, starts_at=start, ends_at=start + timedelta(minutes=2)
    )
    response = staff("operator").post(
        url(world, "schedule"),
        {"first_start": start.strftime("%Y-%m-%dT%H:%M"), "block_size": 2, "gap_minutes": 3},
    )
    assert response.status_code == 200 and "与已有的第3场时间重叠" in response.content.decode()
    assert Session.objects.filter(round=world.round).count() == 3


def test_supplementary_session_through_the_admin(staff, world):
    family = world.families[0]
    SupplementaryApplication.objects.create(
        family=family, round=world.round, applied_at=world.sessions[0].ends_at
    )
    start = timezone.localtime() + timedelta(days=1)
    response = staff("operator").post(
        url(world, "supplementary"), {"starts_at": start.strftime("%Y-%m-%dT%H:%M")}
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    session = Session.objects.get(round=world.round, kind=Session.Kind.SUPPLEMENTARY)
    assert list(session.seats.values_list("family", flat=True)) == [family.pk]
    assert AuditEntry.objects.get(action="selection.supplementary_schedule").actor.username == (
        "staff-operator"
    )


def _select(world):
    """Session 1: family a confirms unit 1, family b is auto-assigned unit 2 at the close."""
    rnd, s1 = world.round, world.sessions[0]
    a, b = world.families[0], world.families[1]
    preselect(a, rnd, world.units[:2])
    preselect(b, rnd, world.units[:2])
    enter(a, rnd, s1)
    enter(b, rnd, s1)
    now = s1.starts_at + timedelta(seconds=5)
    for family in (a, b):
        carts.cart_sync(family=family, round_id=rnd.pk, now=now)
    allocation.selection_confirm(
        family=a, round_id=rnd.pk, unit_id=world.units[0].pk, idempotency_key="k-0001", now=now
    )
    return now


def test_export_results_to_xlsx(staff, world):
    now = _select(world)
    allocation.session_close(session_id=world.sessions[0].pk, now=world.sessions[0].ends_at)
    Applicant.objects.filter(family=world.families[3]).update(real_name="=HYPERLINK(1)")
    response = staff("reviewer").get(url(world, "export"))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/vnd.openxmlformats")
    assert "attachment" in response["Content-Disposition"]
    book = openpyxl.load_workbook(io.BytesIO(response.content))
    rows = [list(r) for r in book.active.iter_rows(values_only=True)]
    assert rows[0] == RESULT_HEADERS
    a, b, c, d = world.families
    assert [r[0] for r in rows[1:]] == [a.rank, b.rank, c.rank, d.rank]
    first = rows[1]
    assert first[1] == a.main_applicant.real_name
    assert first[2] == a.main_applicant.id_number_masked and "*" in first[2]
    assert first[3:8] == ["第1场（正选场次）", "3栋1201", "一房一厅", 45.2, 1469]
    assert first[8] == "家庭确认正选"
    assert first[9] == timezone.localtime(now).replace(tzinfo=None)
    assert first[10] == Allocation.objects.get(family=a).ledger_entry.leaf_hash[:10]  # 核验码
    assert rows[2][4] == "3栋1202" and rows[2][8] == "系统自动选定"
    assert rows[3][4] is None and rows[3][8] == "未开始"  # session 2 has not run
    assert rows[4][1] == "=HYPERLINK(1)"
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        assert b"<f>" not in archive.read("xl/worksheets/sheet1.xml")  # text, never a formula
    entry = AuditEntry.objects.get(action="selection.results_export")
    assert entry.actor.username == "staff-reviewer" and entry.detail["rows"] == 4


def test_live_view_numbers(staff, world):
    _select(world)
    s1 = world.sessions[0]
    reviewer = staff("reviewer")
    page = reviewer.get(f"/admin/selection/session/{s1.pk}/live/")
    assert page.status_code == 200
    live = page.context["live"]
    assert (live["total"], live["entered"], live["confirmed"], live["remaining"]) == (2, 2, 1, 1)
    assert live["units_left"] == len(world.units) - 1
    text = page.content.decode()
    assert 'data-k="entered">2<' in text and 'data-k="units_left">5<' in text
    assert 'http-equiv="refresh" content="3;url=?auto=1"' in text
    assert "<td>待写入</td>" in text  # the confirm, not yet given its place in the log
    translog.sequence_pending()
    text = reviewer.get(f"/admin/selection/session/{s1.pk}/live/?auto=1").content.decode()
    assert "<th>日志序号</th>" in text and "<td>第1条</td>" in text
    reviewer.get(f"/admin/selection/session/{s1.pk}/live/?auto=1")  # the page's own refresh
    assert AuditEntry.objects.filter(action="selection.session_live_view").count() == 1
    change = staff("operator").get(f"/admin/selection/session/{s1.pk}/change/")
    assert f"/admin/selection/session/{s1.pk}/live/" in change.content.decode()


def test_live_view_of_a_supplementary_session_says_buxuan(staff):
    """实时监控 of a 补选 session: its columns and its feed in the session's word (「已进入补
    选」, 「家庭确认补选」), as the family's own result page says it; a formal session's the
    control."""
    world, s1, supp = supplementary_world()
    family = world.families[0]
    now = supp.starts_at + timedelta(seconds=5)
    enter(family, world.round, supp, now=now)
    carts.cart_add(
        family=family, round_id=world.round.pk, kind="formal", unit_id=world.units[0].pk, now=now
    )
    allocation.selection_confirm(
        family=family,
        round_id=world.round.pk,
        unit_id=world.units[0].pk,
        idempotency_key="live-supp-1",
        now=now,
    )
    operator = staff("operator")
    text = operator.get(f"/admin/selection/session/{supp.pk}/live/").content.decode()
    assert "<th>已进入补选</th>" in text and "<th>未参加补选</th>" in text
    assert "<td>家庭确认补选</td>" in text and "正选" not in text
    control = operator.get(f"/admin/selection/session/{s1.pk}/live/").content.decode()
    assert "<th>已进入正选</th>" in control and "<th>未参加正选</th>" in control
    # The results list and the result's own page say it the same way.
    made = Allocation.objects.get(family=family)
    reviewer = staff("reviewer")
    listed = reviewer.get("/admin/selection/allocation/").content.decode()
    assert '<td class="field-how_label">家庭确认补选</td>' in listed
    shown = reviewer.get(f"/admin/selection/allocation/{made.pk}/change/").content.decode()
    assert "家庭确认补选" in shown and "家庭确认正选" not in shown


def test_live_view_after_the_close(staff, world):
    _select(world)
    s1 = world.sessions[0]
    allocation.session_close(session_id=s1.pk, now=s1.ends_at)
    page = staff("operator").get(f"/admin/selection/session/{s1.pk}/live/")
    live = page.context["live"]
    assert "状态：<strong>已结束</strong>。" in page.content.decode()  # no space before 。
    assert (live["confirmed"], live["auto"], live["remaining"]) == (1, 1, 0)
    assert live["units_left"] == len(world.units) - 2
    assert Seat.objects.filter(session=s1, outcome="auto").count() == 1


def test_allocations_are_read_only_in_the_admin(staff, world):
    _select(world)
    reviewer = staff("reviewer")
    assert reviewer.get("/admin/selection/allocation/").status_code == 200
    assert reviewer.get("/admin/selection/supplementaryapplication/").status_code == 200
    assert staff("operator").get("/admin/selection/allocation/add/").status_code == 403
