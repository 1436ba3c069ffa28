"""Issue 13 item 3: one answer per rule. "Not signable" is 409 `agreement_not_pending` on every
path (it was 403 when issuing a QR code and opening one on the phone); a malformed mobile is
`invalid_mobile` everywhere (the lease's phone change said `mobile_invalid`)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from core.context import RequestContext
from core.errors import DomainError
from signing.agreements import qr
from signing.lease import services as lease_service
from signing.models import Agreement
from tests.signing.lease_worlds import ALLOCATED_AT, make_lease_world
from tests.signing.worlds import OPENS, make_agreement

pytestmark = pytest.mark.django_db

CTX = RequestContext(ip="10.0.0.9", user_agent="pytest")


@pytest.mark.parametrize("status", ["signed", "void"])
def test_issuing_a_code_for_an_agreement_that_is_not_pending_is_a_409(status):
    agreement, applicant = make_agreement()
    Agreement.objects.filter(pk=agreement.pk).update(status=status)
    agreement.refresh_from_db()
    with pytest.raises(DomainError) as caught:
        qr.qr_ticket_issue(
            agreement=agreement,
            applicant=applicant,
            session_key="s" * 32,
            now=OPENS + timedelta(minutes=1),
        )
    assert (caught.value.code, caught.value.kind) == ("agreement_not_pending", "conflict")


def test_a_pending_agreement_gets_its_code():  # control
    agreement, applicant = make_agreement()
    ticket = qr.qr_ticket_issue(
        agreement=agreement,
        applicant=applicant,
        session_key="s" * 32,
        now=OPENS + timedelta(minutes=1),
    )
    assert ticket.agreement_id == agreement.pk


def test_the_lease_phone_change_uses_the_one_mobile_rule():
    world = make_lease_world()
    now = ALLOCATED_AT + timedelta(minutes=5)
    lease = lease_service.lease_start(applicant=world.applicant, ctx=CTX, now=now)
    with pytest.raises(DomainError) as caught:
        lease_service.lease_phone_code_send(
            lease=lease, applicant=world.applicant, mobile="12345", ctx=CTX, now=now
        )
    assert caught.value.code == "invalid_mobile"
    assert caught.value.fields == {"mobile": ["请输入11位中国大陆手机号码"]}
