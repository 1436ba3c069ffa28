"""Issue 12 items 1 (read-only half) and 7: the admin's change forms offer no input for a
service-owned field, a crafted POST cannot change one, and the admin speaks Chinese (audit
actions as words, a readable agreement list with no instruction to edit the URL)."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from accounts.admin import AUDIT_ACTION_LABELS, audit_action_label, audit_target_label
from accounts.models import Applicant, AuditEntry, Family
from selection.demo import STAFF_PASSWORD
from selection.models import Round, Session, Unit

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(demo_data_once):  # the demo data, loaded once for the module (tests/conftest.py)

    def login(role: str) -> Client:
        client = Client()
        assert client.login(username=role, password=STAFF_PASSWORD)
        return client

    return login


def inputs(html: str) -> set[str]:
    """The names of every form control on the page."""
    return set(re.findall(r'<(?:input|select|textarea)[^>]*\bname="([^"]+)"', html))


def change_page(client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, url
    return response.content.decode()


def test_unit_status_is_not_an_input_and_a_crafted_post_changes_nothing(staff):
    operator = staff("operator")
    unit = Unit.objects.filter(status="available").first()
    url = f"/admin/selection/unit/{unit.pk}/change/"
    page = change_page(operator, url)
    # A view page: the status follows allocations and the withdraw/restore operations, the
    # rest comes from the import. The operations are links among the page's tools.
    assert inputs(page) - {"csrfmiddlewaretoken"} == set()  # (the header's logout form)
    assert "撤回房源" in page
    response = operator.post(
        url,
        {
            "building": unit.building,
            "number": unit.number,
            "floor": unit.floor,
            "layout": unit.layout,
            "orientation": unit.orientation,
            "area": unit.area,
            "monthly_rent": unit.monthly_rent,
            "status": "taken",
        },
    )
    assert response.status_code == 403
    unit.refresh_from_db()
    assert unit.status == "available"
    assert operator.get("/admin/selection/unit/add/").status_code == 403


def test_session_times_status_and_seats_are_read_only(staff):
    operator = staff("operator")
    session = Session.objects.filter(seats__isnull=False).first()
    url = f"/admin/selection/session/{session.pk}/change/"
    page = change_page(operator, url)
    names = inputs(page)
    assert not names & {"starts_at_0", "starts_at", "ends_at_0", "ends_at", "status", "kind"}
    assert not any(n.startswith("seats-") and n.endswith(("-family", "-outcome")) for n in names)
    assert session.seats.first().family.main_applicant.real_name in page  # still shown
    assert 'name="_save"' not in page  # a view page: nothing to save
    before = (session.starts_at, session.ends_at, session.status)
    operator.post(
        url,
        {
            "starts_at_0": "2030-01-01",
            "starts_at_1": "09:00:00",
            "ends_at_0": "2030-01-01",
            "ends_at_1": "09:02:00",
            "status": "closed",
        },
    )
    session.refresh_from_db()
    assert (session.starts_at, session.ends_at, session.status) == before
    assert operator.get("/admin/selection/session/add/").status_code == 403


def test_a_session_not_yet_run_shows_its_families_as_not_started(staff):
    session = Session.objects.filter(seats__isnull=False, status="scheduled").last()
    page = change_page(staff("operator"), f"/admin/selection/session/{session.pk}/change/")
    results = re.findall(r'<td class="field-result">\s*<p>([^<]*)</p>', page)
    assert results and set(results) == {"未开始"}, results


def test_family_rank_and_layouts_are_read_only(staff):
    operator = staff("operator")
    family = Family.objects.get(rank=2)
    url = f"/admin/accounts/family/{family.pk}/change/"
    names = inputs(change_page(operator, url))
    assert "household_size" in names
    assert not names & {"rank", "eligible_layouts", "main_applicant"}
    layouts = list(family.eligible_layouts)
    operator.post(
        url,
        {"rank": 999, "household_size": family.household_size, "eligible_layouts": '["studio"]'},
    )
    family.refresh_from_db()
    assert family.rank == 2 and family.eligible_layouts == layouts
    assert operator.get("/admin/accounts/family/add/").status_code == 403
    assert operator.get("/admin/accounts/applicant/add/").status_code == 403


def test_applicant_mobile_and_id_number_are_read_only(staff):
    operator = staff("operator")
    applicant = Applicant.objects.get(family__rank=3)
    url = f"/admin/accounts/applicant/{applicant.pk}/change/"
    names = inputs(change_page(operator, url))
    assert "real_name" in names
    assert not names & {"mobile", "id_number"}
    mobile, id_number = applicant.mobile, applicant.id_number
    operator.post(
        url,
        {"real_name": applicant.real_name, "mobile": "13900000000", "id_number": "1" * 18},
    )
    applicant.refresh_from_db()
    assert (applicant.mobile, applicant.id_number) == (mobile, id_number)


def test_round_announcement_time_is_read_only(staff):
    page = change_page(
        staff("operator"), f"/admin/selection/round/{Round.objects.first().pk}/change/"
    )
    names = inputs(page)
    assert "name" in names and "preselect_announced_at_0" not in names
    # what it is: when the board was told pre-selection had opened (no results are published)
    assert "预选开始播报时间" in page and "预选结果公布" not in page


def test_allocations_and_agreements_offer_no_form(staff):
    operator = staff("operator")
    assert operator.get("/admin/selection/allocation/add/").status_code == 403
    assert operator.get("/admin/signing/agreement/add/").status_code == 403


def test_audit_actions_are_shown_as_chinese_words(staff):
    supervisor = staff("supervisor")  # the login itself is an audit entry: staff.login
    page = supervisor.get("/admin/accounts/auditentry/").content.decode()
    assert "工作人员登录" in page
    assert ">staff.login<" not in page
    assert audit_action_label("admin.unit.change") == "后台修改房源"
    assert audit_action_label("some.future_code") == "some.future_code"
    # The object: stored as a reference to search by, shown by the model's Chinese name.
    assert audit_target_label("accounts.Family:3 排位 3 · 王伟") == "选房家庭 #3 排位 3 · 王伟"
    assert audit_target_label("selection.Session:7") == "选房场次 #7"
    assert audit_target_label("applicant:12") == "主申请人 #12"
    assert audit_target_label("nothing.Known:1 x") == "nothing.Known:1 x"
    assert audit_target_label("2026年第一批") == "2026年第一批"
    assert AuditEntry.objects.filter(action="staff.login").exists()


def test_every_audit_code_in_the_code_has_a_label():
    import pathlib

    root = pathlib.Path(__file__).resolve().parents[2]
    codes = set()
    for app in ("accounts", "selection", "signing", "sms", "events", "mobile_api", "core"):
        for path in (root / app).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            if "audit" not in text:
                continue
            codes |= set(re.findall(r'action="([a-z_]+\.[a-z_.]+)"', text))
            codes |= set(re.findall(r'_audit\(\s*\w+,\s*"([a-z_]+\.[a-z_.]+)"', text))
    assert {"staff.login", "signing.agreement_approve", "selection.units_import"} <= codes
    missing = sorted(codes - set(AUDIT_ACTION_LABELS))
    assert missing == [], f"audit codes without a Chinese label: {missing}"


def test_agreement_list_says_nothing_about_editing_the_url(staff):
    page = staff("reviewer").get("/admin/signing/agreement/").content.decode()
    assert "地址末尾" not in page and "review/</code>" not in page


ENGLISH_HEADERS = ("TITLE", "FAMILY", "STATUS", "STEP", "ATTEMPT", "SIGNED AT", "以 status")


def test_agreement_list_and_filters_are_in_chinese(staff):
    from signing.agreements.seed import texts_seed
    from tests.signing.test_review_admin import bulk_create

    texts_seed()
    bulk_create(staff("operator"), ranks="1-3")
    page = staff("reviewer").get("/admin/signing/agreement/").content.decode()
    text = re.sub(r"<[^>]+>", " ", page)
    for english in ENGLISH_HEADERS:
        assert english not in text, english
    assert "以 状态" in text and "签署步骤" in text and "审核" in text
    # seven short columns (and the selection checkbox at most): readable at 1280 px
    head = page[page.index("<thead>") : page.index("</thead>")]
    assert head.count("<th ") <= 7, head
    change = staff("reviewer").get(
        f"/admin/signing/agreement/{__import__('signing.models').models.Agreement.objects.first().pk}/change/"
    )
    body = re.sub(r"<[^>]+>", " ", change.content.decode())
    for english in ("Family", "Text hash", "Reject reason", "Signed at"):
        assert english not in body, english


def test_model_fields_all_have_chinese_names():
    from django.apps import apps

    cjk = re.compile(r"[\u4e00-\u9fff]")
    for app in ("accounts", "selection", "signing", "sms", "events"):
        for model in apps.get_app_config(app).get_models():
            if model.__name__.startswith("Historical"):
                # django-simple-history's records: staff read them through the 历史记录
                # page (admin/field_history.html), which labels each change by the tracked
                # model's own Chinese field names (test_staff_ops_admin.py).
                assert cjk.search(str(model._meta.verbose_name_plural)), model
                continue
            assert cjk.search(str(model._meta.verbose_name)), model
            for field in model._meta.get_fields():
                if field.auto_created or not hasattr(field, "verbose_name"):
                    continue
                if model._meta.model_name == "user":
                    continue  # Django's own fields, translated by Django
                assert cjk.search(str(field.verbose_name)), f"{model.__name__}.{field.name}"


def test_money_is_shown_in_yuan_in_the_admin():
    from django.contrib import admin

    from signing.admin import LeaseAdmin, PaymentNotificationAdmin
    from signing.models import Lease, PaymentNotification

    assert LeaseAdmin(Lease, admin.site).deposit_yuan(Lease(deposit_fen=421200)) == "4212.00 元"
    notices = PaymentNotificationAdmin(PaymentNotification, admin.site)
    assert notices.amount_yuan(PaymentNotification(amount_fen=360000)) == "3600.00 元"
    assert notices.amount_yuan(PaymentNotification(amount_fen=None)) == "—"


def test_every_list_a_supervisor_opens_has_chinese_headers_and_filters(staff):
    from django.contrib import admin

    supervisor = staff("supervisor")
    checked, found = [], []
    for model in admin.site._registry:
        opts = model._meta
        if model.__name__ == "User":
            continue  # Django's own user admin, translated by Django
        response = supervisor.get(f"/admin/{opts.app_label}/{opts.model_name}/")
        if response.status_code != 200:
            continue
        page = response.content.decode()
        if 'id="result_list"' not in page:
            continue  # an empty list has no table
        table = page[page.index('id="result_list"') :]
        head = table[table.index("<thead>") : table.index("</thead>")]
        head_text = re.sub(r"<[^>]+>", " ", head)
        english = [w for w in re.findall(r"[A-Za-z][A-Za-z ]+", head_text) if w.strip() != "IP"]
        if english:
            found.append((opts.label, english))
        filters = re.findall(r"<summary>\s*(.*?)\s*</summary>", page, re.S)
        for title in filters:
            assert not re.search(r"以\s*[A-Za-z]", re.sub(r"<[^>]+>", "", title)), (
                opts.label,
                title,
            )
        checked.append(opts.label)
    assert found == [], found
    assert {"accounts.Applicant", "accounts.AuditEntry", "selection.Unit"} <= set(checked), checked


def test_roles_are_shown_in_chinese_and_not_edited(admin_client):
    """The roles' permissions come from accounts/roles.py at every migrate: the admin shows
    them (角色) and refuses a change or a delete, even from a superuser."""
    from django.contrib.auth.models import Group

    from accounts.models import Role

    role = Role.objects.get(name="operator")
    url = f"/admin/accounts/role/{role.pk}/"
    page = admin_client.get(url + "change/").content.decode()
    assert "操作员" in page and "网上选房 · 新增房源" in page and "Can add" not in page
    assert admin_client.post(url + "change/", {"name": "x"}).status_code == 403
    assert admin_client.post(url + "delete/", {"post": "yes"}).status_code == 403
    assert Group.objects.filter(pk=role.pk, name="operator").exists()
    assert role.permissions.count() > 0
    assert admin_client.get("/admin/auth/group/").status_code == 404


def test_the_unit_list_is_in_building_and_floor_order(staff):
    page = change_page(staff("operator"), "/admin/selection/unit/?building=1&all=")
    names = re.findall(r'<th class="field-__str__"><a [^>]*>([^<]*)</a>', page)
    numbers = [int(name.split("栋")[1]) for name in names]
    assert len(numbers) > 10 and numbers == sorted(numbers), names
