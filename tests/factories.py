"""factory_boy factories with valid resident ID numbers and mobile numbers."""

from __future__ import annotations

import factory
from stdnum.cn import ric

from accounts.models import Applicant, Family, Layout, User


def id_number_for(seq: int) -> str:
    """A valid 18-digit resident ID number: Futian district code, a birth date, a serial."""
    body = f"440304{1960 + seq % 40:04d}{1 + seq % 12:02d}{1 + seq % 28:02d}{seq % 1000:03d}"
    return body + ric.calc_check_digit(body + "0")  # the argument includes a check digit


def _factory_id_number(seq: int) -> str:
    """id_number_for(seq), stepping past the demo data's numbers (selection/demo.py shares the
    district and birth years): modules that load the demo data also make families here, and
    whether a sequence number hits a demo family depends on how many ran before."""
    from selection.demo import demo_id_number

    n = seq
    while True:
        number = id_number_for(n)
        serial = int(number[14:17])
        if serial == 0 or demo_id_number(serial) != number:
            return number
        n += 100_000


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User

    username = factory.Sequence(lambda n: f"user{n}")


class ApplicantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Applicant

    real_name = factory.Sequence(lambda n: f"申请人{n}")
    id_number = factory.Sequence(_factory_id_number)
    mobile = factory.Sequence(lambda n: f"138{n:08d}")
    # Has acknowledged version 1 of the privacy notice (the seeded texts' version), so tests
    # of other things are not sent to the notice; tests/accounts/test_privacy_notice.py makes
    # applicants that have not.
    privacy_version = 1


class FamilyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Family

    rank = factory.Sequence(lambda n: n + 1)
    household_size = 3
    eligible_layouts = factory.LazyFunction(lambda: [Layout.ONE_BED, Layout.TWO_BED])
    main_applicant = factory.SubFactory(ApplicantFactory)


def log_entry(*, round, unit, family, session=None, kind: str = "staff_assign"):
    """A log entry for an allocation a test makes directly (the database wants one behind
    every allocation; the log's check wants it to name the allocation's family and unit)."""
    from django.utils import timezone

    from selection.ledger import LedgerWriter

    entry = LedgerWriter.entry(
        round_id=getattr(round, "pk", round),
        session_id=getattr(session, "pk", session),
        kind=kind,
        payload={"family": family.pk, "unit": unit.pk, "unit_label": unit.label, "how": "staff"},
        now=timezone.now(),
    )
    entry.save()
    return entry


def log_ok() -> None:
    """Sequence what is pending (no sequencer runs in tests), then check every round's log."""
    from selection.translog import logs_verify, sequence_pending

    sequence_pending()
    bad = [result for result in logs_verify() if result.first_bad is not None]
    assert not bad, bad
