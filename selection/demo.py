"""Demo data for the quick start: one round of about 200 units, 100 families in rank order
split into sessions, one staff user per role. Idempotent: natural keys everywhere, so
running it again updates in place and never duplicates."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone
from stdnum.cn import ric

from accounts.models import Applicant, Family, Layout, User
from accounts.roles import ROLE_LABELS
from accounts.services import family_upsert
from selection.models import Orientation, Round, Seat, Session, Unit

ROUND_NAME = "2026年第一批公共租赁住房网上选房（演示）"
FAMILY_COUNT = 100
SESSION_SIZE = 20
FIRST_SESSION_IN_MINUTES = 5
SESSION_GAP_MINUTES = 5
STAFF_PASSWORD = "anju-demo-2026"  # noqa: S105  (demo only; printed by `make demo`)

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高"
GIVEN = [
    "伟",
    "芳",
    "娜",
    "敏",
    "静",
    "丽",
    "强",
    "磊",
    "军",
    "洋",
    "勇",
    "艳",
    "杰",
    "娟",
    "涛",
    "明",
    "超",
    "秀英",
    "华",
    "平",
]
# (building, layout, floors, units per floor, area, orientation cycle)
BUILDINGS = [
    ("1", Layout.ONE_BED, range(2, 20), 4, Decimal("45.20"), ["S", "S", "N", "E"]),
    ("2", Layout.TWO_BED, range(2, 18), 4, Decimal("64.80"), ["S", "SE", "N", "W"]),
    ("3", Layout.STUDIO, range(2, 20), 2, Decimal("32.50"), ["S", "N"]),
    ("5", Layout.THREE_BED, range(2, 16), 2, Decimal("86.30"), ["S", "SW"]),
]
RENT_PER_SQM = Decimal("32.5")


@dataclass(frozen=True)
class DemoSummary:
    round: Round
    units: int
    families: int
    sessions: int
    first_family: Family
    staff: dict[str, str]


def demo_id_number(rank: int) -> str:
    """A valid ID number for demo family `rank` (Futian district, born 1970–1999)."""
    body = f"440304{1970 + rank % 30:04d}{1 + rank % 12:02d}{1 + rank % 28:02d}{rank:03d}"
    return body + ric.calc_check_digit(body + "0")


def _layouts_for(size: int) -> list[str]:
    if size == 1:
        return [Layout.STUDIO, Layout.ONE_BED]
    if size == 2:
        return [Layout.ONE_BED, Layout.TWO_BED]
    if size <= 4:
        return [Layout.TWO_BED, Layout.THREE_BED]
    return [Layout.THREE_BED]


def demo_staff_accounts() -> dict[str, str]:
    """The demo's staff: one account per role (operator, reviewer, supervisor), each with
    STAFF_PASSWORD, in its role's group. Returns {username: label}."""
    staff = {}
    with transaction.atomic():
        for role, label in ROLE_LABELS.items():
            user, created = User.objects.get_or_create(
                username=role, defaults={"is_staff": True, "first_name": label}
            )
            if created:
                user.set_password(STAFF_PASSWORD)
                user.save(update_fields=["password"])
            user.groups.set([Group.objects.get(name=role)])
            staff[role] = label
    return staff


def demo_data_load(*, now: datetime | None = None) -> DemoSummary:
    now = now or timezone.now()
    with transaction.atomic():
        rnd, _ = Round.objects.get_or_create(
            name=ROUND_NAME, defaults={"preselect_starts_at": now - timedelta(hours=1)}
        )
        if rnd.preselect_starts_at > now:
            rnd.preselect_starts_at = now - timedelta(hours=1)
            rnd.save(update_fields=["preselect_starts_at"])
        for building, layout, floors, per_floor, area, orientations in BUILDINGS:
            for floor in floors:
                for index in range(per_floor):
                    Unit.objects.update_or_create(
                        round=rnd,
                        building=building,
                        number=f"{floor}{index + 1:02d}",
                        defaults={
                            "floor": floor,
                            "layout": layout,
                            "orientation": Orientation(orientations[index % len(orientations)]),
                            "area": area,
                            "monthly_rent": (area * RENT_PER_SQM).quantize(Decimal("1")),
                        },
                    )
        families = []
        for rank in range(1, FAMILY_COUNT + 1):
            size = 1 + rank % 5
            family, _ = family_upsert(
                rank=rank,
                household_size=size,
                eligible_layouts=_layouts_for(size),
                real_name=SURNAMES[rank % len(SURNAMES)] + GIVEN[(rank * 7) % len(GIVEN)],
                id_number=demo_id_number(rank),
                mobile=f"139{rank:08d}",
            )
            families.append(family)
        # The demo's families have read the privacy notice (version 1 of the seeded texts), so
        # the walk-through starts at the home page; a newer version is asked for as usual.
        Applicant.objects.filter(family__in=families, privacy_version=0).update(privacy_version=1)
        # Someone trying the demo gets pre-selection now and the first session in a few
        # minutes. A rerun moves sessions that have not started yet; played ones are kept.
        first_start = (now + timedelta(minutes=FIRST_SESSION_IN_MINUTES)).replace(
            second=0, microsecond=0
        )
        for order, start in enumerate(range(0, FAMILY_COUNT, SESSION_SIZE), start=1):
            starts_at = first_start + timedelta(minutes=SESSION_GAP_MINUTES * (order - 1))
            window = {
                "starts_at": starts_at,
                "ends_at": starts_at + timedelta(seconds=rnd.window_seconds),
            }
            session, created = Session.objects.get_or_create(
                round=rnd, order=order, defaults=window
            )
            if (
                not created
                and session.status == Session.Status.SCHEDULED
                and not session.seats.filter(entered_at__isnull=False).exists()
            ):
                Session.objects.filter(pk=session.pk).update(**window)
            for family in families[start : start + SESSION_SIZE]:
                Seat.objects.get_or_create(session=session, family=family)
        staff = demo_staff_accounts()
    return DemoSummary(
        round=rnd,
        units=rnd.units.count(),
        families=Family.objects.count(),
        sessions=rnd.sessions.count(),
        first_family=families[0],
        staff=staff,
    )
