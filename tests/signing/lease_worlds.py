"""A family holding an allocation, ready to start its lease, with time pinned after the
allocation; and the payment provider's outgoing notifications routed into this app."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from django.test import Client
from PIL import Image

from accounts.models import Applicant, Family
from accounts.services import applicant_user_ensure
from selection import allocation, carts
from selection.models import Allocation
from signing.agreements.seed import texts_seed
from tests.worlds import S1_START, TZ, enter, make_world, preselect

ALLOCATED_AT = S1_START + timedelta(seconds=20)
NOW = ALLOCATED_AT + timedelta(minutes=30)  # inside the signing window
# make_world's round: lease_signing_days 7 → 18:00 on the 7th day after the allocation
WINDOW_ENDS = datetime(2026, 3, 10, 18, 0, tzinfo=TZ)
ACCOUNT = "6222021234567890128"  # 19 digits, Luhn-valid (a UnionPay debit number shape)


@dataclass
class LeaseWorld:
    family: Family
    applicant: Applicant
    other: Applicant  # a family of the same round with its own allocation
    allocation: Allocation


def make_lease_world(*, name: str = "王小明") -> LeaseWorld:
    texts_seed()
    world = make_world(families=2, units=2, sessions=1, per_session=2)
    rnd, session = world.round, world.sessions[0]
    owners = []
    for index, family in enumerate(world.families):
        applicant = family.main_applicant
        if index == 0:
            applicant.real_name = name
            applicant.save(update_fields=["real_name"])
        unit = world.units[index]
        preselect(family, rnd, [unit])
        enter(family, rnd, session, now=S1_START + timedelta(seconds=5))
        carts.cart_sync(family=family, round_id=rnd.pk, now=S1_START + timedelta(seconds=6))
        allocation.selection_confirm(
            family=family,
            round_id=rnd.pk,
            unit_id=unit.pk,
            idempotency_key=f"lease-world-{index}",
            now=ALLOCATED_AT,
        )
        owners.append(applicant_user_ensure(applicant=applicant))
    return LeaseWorld(
        family=world.families[0],
        applicant=owners[0],
        other=owners[1],
        allocation=Allocation.objects.get(family=world.families[0]),
    )


def lease_submitted(lease, *, now: datetime) -> None:
    """The facts of a lease signed with its deposit paid (待审核), written directly: the steps
    themselves are walked in test_lease_journey and the browser tests."""
    from signing.models import Agreement, Lease

    Agreement.objects.filter(pk=lease.agreement_id).update(
        status="signed", step=Agreement.Step.SUBMITTED, signed_at=now, reject_reason=""
    )
    Lease.objects.filter(pk=lease.pk).update(
        bank="ICBC",
        account_number=ACCOUNT,
        account_holder="王小明",
        bank_attempt=1,
        deposit_paid_at=now,
    )


def photo_bytes(fmt: str = "JPEG", size: tuple[int, int] = (856, 540)) -> bytes:
    """A plausible card photo (a bank card is 85.6 × 54 mm)."""
    image = Image.new("RGB", size, (30, 90, 160))
    out = io.BytesIO()
    image.save(out, format=fmt)
    return out.getvalue()


class NotifyTransport(httpx.BaseTransport):
    """The payment provider's server-to-server notification, delivered into this app through
    the Django test client, with its Wechatpay-* headers. Records what was answered."""

    def __init__(self) -> None:
        self.calls: list[dict] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower().startswith("wechatpay-")}
        response = Client().generic(
            request.method,
            request.url.raw_path.decode(),
            data=body,
            content_type=request.headers.get("content-type", ""),
            headers=headers,
        )
        self.calls.append({"body": body, "headers": headers, "status": response.status_code})
        return httpx.Response(response.status_code, content=response.content)


def lease_info_filled(
    *,
    world: LeaseWorld | None = None,
    applicant=None,
    lease,
    account_number: str,
    ctx,
    now,
    bank: str = "ICBC",
    holder=None,
):
    """完善承租信息 as the applicant does it (`world`'s, or `applicant`): both card photos,
    then the bank account."""
    from signing.lease.services import lease_bank_confirm, lease_card_photo_upload
    from signing.models import CardPhoto

    applicant = applicant or world.applicant
    for side in CardPhoto.Side.values:
        lease_card_photo_upload(
            lease=lease,
            applicant=applicant,
            side=side,
            data=photo_bytes(),
            filename="card.jpg",
            declared_type="image/jpeg",
            ctx=ctx,
            now=now,
        )
    return lease_bank_confirm(
        lease=lease,
        applicant=applicant,
        bank=bank,
        account_number=account_number,
        account_holder=holder or applicant.real_name,
        ctx=ctx,
        now=now,
    )


def signing_ca_from_before(settings, directory) -> None:
    """A development CA made before NOW: the lease world's time is pinned in March 2026, and a
    CA made on the day the suite runs would not be valid yet when the contract is sealed."""
    from signing.agreements.ca import dev_ca_ensure

    dev_ca_ensure(directory=directory, now=NOW - timedelta(days=30))
    settings.SIGNING = {**settings.SIGNING, "CA_DIR": directory, "DEV_CA_AUTOCREATE": False}
