"""Only the code on the screen opens (signing/agreements/phone.py): issuing a code and
opening an earlier one meet at the agreement's row lock, which both take. An open in progress
holds it, so a new code is issued only after that open has answered; an open that comes after
the new code sees it and is refused (`qr_superseded`). So when the desktop shows a new code,
no phone is still being let in through the one it replaced.

Real threads on their own PostgreSQL connections, with the harness of test_issue12_races.py:
one thread stops while it holds the lock, the other is let go once PostgreSQL shows it
waiting. The control issues without the lock and shows the new code issued while an open of
the old one is still under way, which that open then completes. (Inserting a ticket also
takes a key-share lock on its agreement, which the open's FOR UPDATE blocks: the control
removes the open's lock too.)
"""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db.models.query import QuerySet

import signing.agreements.services as signing_services
from core.errors import DomainError
from signing.agreements import phone, qr
from signing.models import Agreement, QrTicket, SigningSession
from tests.concurrency.test_issue12_races import (
    FIRST,
    SECOND,
    HoldAfter,
    _named,
    _run,
    held_race,
    long_lock_timeout,  # noqa: F401 (fixture)
    no_error,
)
from tests.signing.worlds import CTX, OPENS, make_agreement

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

NOW = OPENS + timedelta(hours=1)


def _world():
    agreement, applicant = make_agreement()
    old = qr.qr_ticket_issue(agreement=agreement, applicant=applicant, session_key="desk", now=NOW)
    return agreement, applicant, old


def _open(ticket):
    return lambda: phone.phone_session_open(
        token=ticket.token, applicant=None, device_id="phone-one-device-id", ctx=CTX, now=NOW
    )


def _issue(agreement, applicant):
    return lambda: qr.qr_ticket_issue(
        agreement=agreement, applicant=applicant, session_key="desk", now=NOW
    )


def test_a_new_code_waits_for_an_open_of_the_old_one(monkeypatch):
    agreement, applicant, old = _world()
    hold = HoldAfter(signing_services.lock_get)  # the open stops holding the agreement row
    monkeypatch.setattr(signing_services, "lock_get", hold)
    opened, issued = held_race(hold, _open(old), _issue(agreement, applicant))
    session = no_error(opened).session
    new = no_error(issued)
    assert session.ticket_id == old.pk and new.pk > old.pk  # the open came first, then the code
    # From now on the old code is refused: the screen shows the new one.
    with pytest.raises(DomainError) as caught:
        _open(old)()
    assert caught.value.code == "qr_superseded"


def test_control_without_the_lock_a_replaced_code_still_lets_a_phone_in(monkeypatch):
    """Without the agreement's row lock (the open reads it plainly, the issue does not take
    it): the new code is made while the open of the old one is between its check and its
    commit, and that open then succeeds through a code the screen no longer shows."""
    agreement, applicant, old = _world()
    checked, issued_done = threading.Event(), threading.Event()
    real_exists = QuerySet.exists

    def exists_then_wait(queryset):
        found = real_exists(queryset)
        if _named() == FIRST and queryset.model is QrTicket:
            checked.set()  # the open found no newer code …
            assert issued_done.wait(30)  # … and goes on only once the new code exists
        return found

    monkeypatch.setattr(QuerySet, "exists", exists_then_wait)
    # No row lock on either side (a plain read for the open, none for the issue).
    monkeypatch.setattr(phone, "agreement_lock", lambda pk: Agreement.objects.get(pk=pk))
    monkeypatch.setattr(signing_services, "agreement_lock", lambda pk: None)

    out_open, out_issue = {}, {}
    thread_open = _run(FIRST, _open(old), out_open)
    assert checked.wait(30)
    thread_issue = _run(SECOND, _issue(agreement, applicant), out_issue)
    thread_issue.join(30)
    assert not thread_issue.is_alive()  # issued while the open was under way: no wait
    issued_done.set()
    thread_open.join(30)
    new = no_error(out_issue)
    session = no_error(out_open).session
    assert new.pk > old.pk and session.ticket_id == old.pk
    assert SigningSession.objects.filter(ticket=old, ended_at__isnull=True).exists()
