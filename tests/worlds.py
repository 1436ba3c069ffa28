"""Selection worlds for tests: a small round to select in, with time pinned around its
sessions. The `world` fixture (tests/conftest.py) builds the default one."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from accounts.models import Family, Layout
from core.context import RequestContext
from selection import carts
from selection.models import Round, Seat, Session, Unit
from selection.phases import family_state
from tests.factories import FamilyFactory

TZ = ZoneInfo("Asia/Shanghai")
PRE_START = datetime(2026, 3, 2, 9, 0, tzinfo=TZ)
S1_START = datetime(2026, 3, 3, 9, 30, tzinfo=TZ)
WINDOW = timedelta(seconds=120)
CTX = RequestContext(ip="10.0.0.9", user_agent="pytest")


@dataclass
class World:
    round: Round
    sessions: list[Session]
    units: list[Unit]
    families: list[Family]

    def unit(self, label: str) -> Unit:
        building, number = label.split("-")
        return next(u for u in self.units if u.building == building and u.number == number)


def make_world(
    *,
    families: int = 4,
    units: int = 6,
    sessions: int = 2,
    per_session: int | None = None,
    cart_limit: int = 5,
) -> World:
    rnd = Round.objects.create(
        name=f"测试批次{Round.objects.count() + 1}",
        preselect_starts_at=PRE_START,
        cart_limit=cart_limit,
        window_seconds=120,
    )
    made_units = [
        Unit.objects.create(
            round=rnd,
            building="3",
            number=f"{1201 + i}",
            floor=12,
            layout=Layout.ONE_BED,
            orientation="S",
            area=Decimal("45.20"),
            monthly_rent=Decimal("1469"),
        )
        for i in range(units)
    ]
    made_families = [
        FamilyFactory(eligible_layouts=[Layout.ONE_BED])  # ranks rise in creation order
        for i in range(families)
    ]
    per_session = per_session or max(1, families // sessions)
    made_sessions = []
    for index in range(sessions):
        start = S1_START + index * timedelta(minutes=5)
        session = Session.objects.create(
            round=rnd, order=index + 1, starts_at=start, ends_at=start + WINDOW
        )
        for family in made_families[index * per_session : (index + 1) * per_session]:
            Seat.objects.create(session=session, family=family)
        made_sessions.append(session)
    return World(rnd, made_sessions, made_units, made_families)


def declare(family: Family, rnd: Round, phase: str, now: datetime) -> None:
    state = family_state(family=family, round_id=rnd.pk, now=now)
    _, version = carts.declaration_current(state=state, phase=phase)
    carts.declaration_acknowledge(
        family=family, round_id=rnd.pk, phase=phase, version=version, ctx=CTX, now=now
    )


def preselect(family: Family, rnd: Round, units: list[Unit], now: datetime = PRE_START) -> None:
    declare(family, rnd, "pre", now)
    for unit in units:
        carts.cart_add(family=family, round_id=rnd.pk, kind="pre", unit_id=unit.pk, now=now)


def enter(family: Family, rnd: Round, session: Session, now: datetime | None = None) -> None:
    now = now or session.starts_at
    declare(family, rnd, "formal", now)
    carts.formal_enter(family=family, round_id=rnd.pk, now=now)


def family_client(family: Family):
    """A Django test client logged in as `family`'s main applicant (its session, as the
    pages have it)."""
    from django.test import Client

    from accounts.services import applicant_user_ensure

    client = Client()
    client.force_login(applicant_user_ensure(applicant=family.main_applicant).user)
    return client


def supplementary_world():
    """One family with a formal session and, two hours after it, a 补选 session."""
    world = make_world(families=1, units=2, sessions=1)
    s1 = world.sessions[0]
    start = s1.ends_at + timedelta(hours=2)
    supp = Session.objects.create(
        round=world.round,
        order=2,
        kind=Session.Kind.SUPPLEMENTARY,
        starts_at=start,
        ends_at=start + timedelta(seconds=120),
    )
    Seat.objects.create(session=supp, family=world.families[0])
    return world, s1, supp
