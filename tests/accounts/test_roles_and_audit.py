"""Staff roles: who may do what in the admin, and every staff action audited."""

import pytest
from django.test import Client

from accounts.models import AuditEntry, Family
from selection.demo import STAFF_PASSWORD, demo_staff_accounts

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(demo_data_once):  # the demo data, loaded once for the module (tests/conftest.py)

    def login(role: str) -> Client:
        client = Client()
        assert client.login(username=role, password=STAFF_PASSWORD)
        return client

    return login


@pytest.mark.parametrize(
    "role,url,status",
    [
        ("operator", "/admin/accounts/family/", 200),
        ("operator", "/admin/accounts/auditentry/", 403),
        ("reviewer", "/admin/accounts/family/", 200),
        ("reviewer", "/admin/accounts/family/add/", 403),
        ("reviewer", "/admin/selection/unit/add/", 403),
        ("supervisor", "/admin/accounts/auditentry/", 200),
        ("supervisor", "/admin/sms/smsmessage/", 200),
    ],
)
def test_role_permissions(staff, role, url, status):
    assert staff(role).get(url).status_code == status


def test_an_applicant_cannot_use_the_admin(client):
    from tests.factories import FamilyFactory

    family = FamilyFactory(rank=1000)  # past the demo data's ranks, loaded for the module
    from accounts.services import applicant_user_ensure

    client.force_login(applicant_user_ensure(applicant=family.main_applicant).user)
    response = client.get("/admin/accounts/family/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_staff_change_is_audited(staff):
    operator = staff("operator")
    family = Family.objects.get(rank=3)
    response = operator.post(
        f"/admin/accounts/family/{family.pk}/change/",
        {
            "rank": 3,
            "household_size": 4,
            "eligible_layouts": '["2b1l"]',
            "main_applicant": family.main_applicant_id,
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    entry = AuditEntry.objects.filter(action="admin.family.change").get()
    assert entry.actor.username == "operator" and f":{family.pk} " in entry.target
    assert AuditEntry.objects.filter(action="staff.login", actor__username="operator").exists()


def test_failed_staff_login_is_audited():
    demo_staff_accounts()
    assert not Client().login(username="operator", password="wrong")
    assert AuditEntry.objects.filter(action="staff.login_failed", target="operator").exists()
