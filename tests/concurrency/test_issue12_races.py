"""The race tests issue 12 asks for that were still missing, each with its control:

1. two clocks void agreements at their deadline: each agreement is voided once;
2. parallel wrong SMS guesses against the attempt limit: at most MAX_ATTEMPTS guesses are
   checked, then even the right code is refused;
3. a double tap on 「去签约」: one lease, both taps answered with it;
4. two staff scheduling at once (formal sessions from ranks, a supplementary session): no
   family seated twice, session orders unique, no overlap, the loser a clean refusal.

Real threads, each on its own PostgreSQL connection. The tests are deterministic: one thread
is stopped while it holds the lock under test, and the other is let go only once PostgreSQL
shows it waiting on a lock (pg_stat_activity), so the two really meet at the lock. Each
control removes that lock (the service's lock helper replaced by a plain read) and, with
events placed around the read, shows the bad outcome happening: a double void, more guesses
checked than the limit and the right code then accepted, an IntegrityError on the second
lease, a family seated twice.
"""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import time_machine
from django.db import IntegrityError, connection
from django.test import Client

import signing.agreements.services as signing_services
import signing.lease.services as lease_module
from accounts.models import AuditEntry
from core.errors import DomainError
from selection import allocation, scheduling, supplementary
from selection.models import Seat, Session, SupplementaryApplication
from signing.agreements.evidence import evidence_verify
from signing.models import Agreement, Evidence, Lease
from sms import crypto
from sms import services as sms_services
from sms.models import Purpose, SmsCode, SmsMessage
from tests.signing.lease_worlds import NOW as LEASE_NOW
from tests.signing.lease_worlds import make_lease_world
from tests.signing.worlds import CLOSES, make_agreement
from tests.worlds import CTX, S1_START, make_world

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

FIRST, SECOND = "race-first", "race-second"


@pytest.fixture(autouse=True)
def long_lock_timeout(settings):
    """The waiting thread waits while the test checks on it: no 503 `busy` meanwhile."""
    settings.LOCK_TIMEOUT_MS = 30_000


# ------------------------------------------------------------------------------ harness


def _named() -> str:
    return threading.current_thread().name


def _run(name: str, fn, out: dict) -> threading.Thread:
    """Run `fn` in a thread called `name` (its own connection); result or error in `out`."""

    def target():
        try:
            out["result"] = fn()
        except BaseException as exc:  # asserted by the test
            out["error"] = exc
        finally:
            connection.close()

    thread = threading.Thread(target=target, name=name)
    thread.start()
    return thread


class HoldAfter:
    """Wraps a lock helper: the thread called `holder` stops once, right after the helper
    returns (so it holds the lock), until `go` is set."""

    def __init__(self, real, holder: str = FIRST) -> None:
        self.real, self.holder = real, holder
        self.reached, self.go = threading.Event(), threading.Event()

    def __call__(self, *args, **kwargs):
        result = self.real(*args, **kwargs)
        if _named() == self.holder and not self.reached.is_set():
            self.reached.set()
            assert self.go.wait(30)
        return result


def _lock_waiters() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND datname = current_database()"
        )
        return cursor.fetchone()[0]


def wait_until_blocked(threads: list[threading.Thread], count: int) -> None:
    """Return once `count` backends of this database wait on a row lock; fail if one of
    `threads` ends first (it did not wait: the lock is missing)."""
    for _ in range(3000):
        if _lock_waiters() >= count:
            return
        ended = [t.name for t in threads if not t.is_alive()]
        assert not ended, f"{ended} finished without waiting on the lock"
        threads[0].join(0.01)
    pytest.fail(f"fewer than {count} connections ever waited on the lock")


def held_race(hold: HoldAfter, first, second, *, waiters: int = 1):
    """`first` takes the lock and stops; `second` (a callable or a list of them) starts and
    is seen waiting on the lock; then `first` goes on. Returns the outcome dicts."""
    seconds = second if isinstance(second, list) else [second]
    out_first, out_seconds = {}, [{} for _ in seconds]
    thread_first = _run(FIRST, first, out_first)
    assert hold.reached.wait(30)
    threads = [
        _run(f"{SECOND}-{i}", fn, out)
        for i, (fn, out) in enumerate(zip(seconds, out_seconds, strict=True))
    ]
    try:
        wait_until_blocked(threads, waiters)
    finally:
        hold.go.set()
        thread_first.join(30)
        for thread in threads:
            thread.join(30)
    assert not thread_first.is_alive() and not any(t.is_alive() for t in threads)
    return out_first, (out_seconds if isinstance(second, list) else out_seconds[0])


def no_error(out: dict):
    assert "error" not in out, repr(out.get("error"))
    return out["result"]


# ------------------------------------------------------------------------------ 1. void


def _pending_agreements(n: int) -> list[int]:
    return [make_agreement(name=f"王{i}")[0].pk for i in range(n)]


def test_two_clocks_void_each_agreement_at_the_deadline_exactly_once(monkeypatch):
    ids = _pending_agreements(5)
    hold = HoldAfter(signing_services.lock_get)
    monkeypatch.setattr(signing_services, "lock_get", hold)

    def clock():
        return signing_services.agreements_void_due(now=CLOSES)

    first, second = held_race(hold, clock, clock)
    voided_first, voided_second = no_error(first), no_error(second)
    assert sorted(voided_first + voided_second) == sorted(ids)  # each voided by one clock
    assert set(Agreement.objects.values_list("status", flat=True)) == {Agreement.Status.VOID}
    for agreement_id in ids:
        assert Evidence.objects.filter(agreement_id=agreement_id, kind="voided").count() == 1
        assert evidence_verify(agreement_id=agreement_id).first_bad_seq is None
    # whatever the void tells the family, it tells it once
    sent = list(SmsMessage.objects.values_list("phone", "kind"))
    assert len(sent) == len(set(sent))


def test_control_without_the_agreement_lock_two_clocks_void_it_twice(monkeypatch):
    """The second clock read the agreement as 待签字 before the first committed its void;
    with a plain read instead of the row lock it voids it again: two `voided` entries."""
    (agreement_id,) = _pending_agreements(1)
    second_read, first_done = threading.Event(), threading.Event()

    def plain_get(source, **lookup):
        agreement = source.get(**lookup)  # no FOR UPDATE
        if _named() == SECOND:
            second_read.set()
            assert first_done.wait(30)
        return agreement

    monkeypatch.setattr(signing_services, "lock_get", plain_get)

    def clock():
        return signing_services.agreements_void_due(now=CLOSES)

    out_second, out_first = {}, {}
    thread_second = _run(SECOND, clock, out_second)
    assert second_read.wait(30)
    _run(FIRST, clock, out_first).join(30)
    first_done.set()
    thread_second.join(30)
    assert no_error(out_first) == [agreement_id]
    assert no_error(out_second) == [agreement_id]  # voided a second time
    assert Evidence.objects.filter(agreement_id=agreement_id, kind="voided").count() == 2


# ------------------------------------------------------------------------------ 2. SMS


PHONE, SUBJECT, RIGHT, WRONG = "13800009999", "race-subject", "246810", "000000"


def _live_code() -> SmsCode:
    salt = "ab" * 16
    return SmsCode.objects.create(
        purpose=Purpose.LOGIN,
        subject=SUBJECT,
        phone=PHONE,
        salt=salt,
        code_hash=sms_services._code_hash(
            salt=salt, purpose=Purpose.LOGIN, subject=SUBJECT, phone=PHONE, code=RIGHT
        ),
        created_at=CLOSES,
        expires_at=CLOSES + timedelta(minutes=5),
    )


def _guess(code: str):
    def verify():
        return sms_services.sms_code_verify(
            purpose=Purpose.LOGIN,
            subject=SUBJECT,
            phone=PHONE,
            code=code,
            now=CLOSES + timedelta(seconds=30),
        )

    return verify


def _count_checks(monkeypatch) -> list[int]:
    checks: list[int] = []
    real = crypto.hashes_equal

    def counted(a, b):
        checks.append(1)  # list.append is atomic: safe across the threads
        return real(a, b)

    monkeypatch.setattr(crypto, "hashes_equal", counted)
    return checks


def test_parallel_wrong_guesses_never_check_more_than_the_attempt_limit(monkeypatch, settings):
    limit = settings.SMS["MAX_ATTEMPTS"]
    guessers = limit + 5
    code = _live_code()
    checks = _count_checks(monkeypatch)
    hold = HoldAfter(sms_services.lock_first)
    monkeypatch.setattr(sms_services, "lock_first", hold)

    first, others = held_race(
        hold, _guess(WRONG), [_guess(WRONG) for _ in range(guessers - 1)], waiters=guessers - 1
    )
    outcomes = [first, *others]
    errors = [out.get("error") for out in outcomes]
    assert all(isinstance(error, DomainError) for error in errors), errors
    codes = sorted(error.code for error in errors)
    # limit-1 「还可尝试n次」, the last counted guess and every later one refused as locked
    assert codes.count("sms_code_invalid") == limit - 1
    assert codes.count("sms_code_locked") == guessers - limit + 1
    assert len(checks) == limit  # guesses compared with the stored code
    code.refresh_from_db()
    assert code.attempts == limit and code.used_at is None

    with pytest.raises(DomainError) as caught:
        _guess(RIGHT)()
    assert caught.value.code == "sms_code_locked"  # the right code comes too late
    assert len(checks) == limit
    code.refresh_from_db()
    assert code.used_at is None


def test_control_without_the_code_lock_every_guess_is_checked_and_the_code_survives(
    monkeypatch, settings
):
    """With a plain read instead of the row lock, every guesser reads `attempts` = 0 before
    any of them writes: all are checked against the code (more than the limit), the counter
    loses updates, and the right code is then accepted."""
    limit = settings.SMS["MAX_ATTEMPTS"]
    guessers = limit + 5
    code = _live_code()
    checks = _count_checks(monkeypatch)
    all_read = threading.Barrier(guessers, timeout=30)

    def plain_first(source, **kwargs):
        row = source.first()  # no FOR UPDATE
        all_read.wait()  # every guesser has read the code's attempts
        return row

    monkeypatch.setattr(sms_services, "lock_first", plain_first)
    outs = [{} for _ in range(guessers)]
    threads = [_run(f"guess-{i}", _guess(WRONG), out) for i, out in enumerate(outs)]
    for thread in threads:
        thread.join(30)
    assert all(out["error"].code == "sms_code_invalid" for out in outs)
    assert len(checks) == guessers > limit  # more guesses checked than the limit
    code.refresh_from_db()
    assert code.attempts == 1  # lost updates

    monkeypatch.setattr(sms_services, "lock_first", lambda source, **kwargs: source.first())
    _guess(RIGHT)()  # accepted: no error
    code.refresh_from_db()
    assert code.used_at is not None


# ------------------------------------------------------------------------------ 3. lease


def test_a_double_tap_on_start_lease_creates_one_lease_for_both_taps(monkeypatch):
    world = make_lease_world()
    hold = HoldAfter(lease_module.lock_get)
    monkeypatch.setattr(lease_module, "lock_get", hold)
    clients = []
    for _ in range(2):  # two requests of the same applicant, each on its own connection
        client = Client()
        client.force_login(world.applicant.user)
        clients.append(client)

    def tap(client):
        def post():
            response = client.post("/api/v1/lease/start/", content_type="application/json")
            return response.status_code, response.json()

        return post

    with time_machine.travel(LEASE_NOW, tick=True):
        first, second = held_race(hold, tap(clients[0]), tap(clients[1]))
    (status_1, body_1), (status_2, body_2) = no_error(first), no_error(second)
    assert (status_1, status_2) == (200, 200), (body_1, body_2)
    lease = Lease.objects.get()
    assert body_1["id"] == body_2["id"] == lease.pk
    assert lease.allocation_id == world.allocation.pk
    assert Agreement.objects.filter(family=world.family).count() == 1
    assert Evidence.objects.filter(kind="lease_started").count() == 1
    assert evidence_verify(agreement_id=lease.agreement_id).first_bad_seq is None


def test_control_without_the_family_lock_the_second_tap_of_a_double_tap_fails(
    monkeypatch,
):
    """Both taps see no lease yet; without the family lock both go on to create one, and the
    second fails instead of being answered with the first's lease (what the locked double tap
    above gets). How it fails depends on how far the first got: on the lease's one-to-one
    allocation, an IntegrityError (a 500 before the API mapped it), when both inserts
    overlap; on the agreement's own check (agreement_exists) when the first had committed by
    then, which a busy machine makes likely enough to see."""
    world = make_lease_world()
    monkeypatch.setattr(lease_module, "lock_get", lambda source, **lookup: None)  # no lock
    both_looked = threading.Barrier(2, timeout=30)
    real_create = lease_module.agreement_create

    def create_after_both_looked(**kwargs):
        both_looked.wait()  # both found no lease for the allocation
        return real_create(**kwargs)

    monkeypatch.setattr(lease_module, "agreement_create", create_after_both_looked)

    def tap():
        return lease_module.lease_start(applicant=world.applicant, ctx=CTX, now=LEASE_NOW)

    outs = [{}, {}]
    threads = [_run(f"tap-{i}", tap, out) for i, out in enumerate(outs)]
    for thread in threads:
        thread.join(30)
    errors = [out.get("error") for out in outs if "error" in out]
    assert len(errors) == 1, outs
    error = errors[0]
    assert isinstance(error, IntegrityError) or (
        isinstance(error, DomainError) and error.code == "agreement_exists"
    ), outs
    assert Lease.objects.count() == 1


# ------------------------------------------------------------------------------ 4. staff


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create(username="race-op", is_staff=True)


def _ranks_world():
    """Two families seated in session 1; ten more waiting for a formal session."""
    world = make_world(families=12, units=2, sessions=1, per_session=2)
    return world, [f.rank for f in world.families[2:]]


def _schedule_ranks(world, staff, *, ranks, start):
    def schedule():
        return scheduling.sessions_schedule_from_ranks(
            round_id=world.round.pk,
            first_start=start,
            block_size=3,
            gap_minutes=5,
            actor=staff,
            rank_from=ranks[0],
            rank_to=ranks[-1],
            now=S1_START,
        )

    return schedule


def _formal_seats_per_family(world) -> dict[int, int]:
    counts: dict[int, int] = {}
    for family_id in Seat.objects.filter(
        session__round=world.round, session__kind=Session.Kind.FORMAL
    ).values_list("family_id", flat=True):
        counts[family_id] = counts.get(family_id, 0) + 1
    return counts


def _sessions_sound(world) -> list[Session]:
    sessions = list(Session.objects.filter(round=world.round).order_by("starts_at"))
    orders = [s.order for s in sessions]
    assert len(set(orders)) == len(orders)
    for earlier, later in zip(sessions, sessions[1:], strict=False):
        assert earlier.ends_at <= later.starts_at, (earlier, later)  # no overlap
    return sessions


HOUR = timedelta(hours=1)
SCHEDULE_RACES = {
    # (first staff's ranks, start), (second staff's ranks, start), the second's refusal
    "overlapping_blocks": ((slice(0, 6), 1 * HOUR), (slice(3, 10), 3 * HOUR), None),
    "same_block": ((slice(0, 10), 1 * HOUR), (slice(0, 10), 3 * HOUR), "no_families"),
    "same_time": ((slice(0, 5), 1 * HOUR), (slice(5, 10), 1 * HOUR), "session_overlap"),
}


@pytest.mark.parametrize("name", list(SCHEDULE_RACES))
def test_two_staff_scheduling_from_ranks_at_once_never_seat_a_family_twice(
    name, monkeypatch, staff
):
    world, waiting = _ranks_world()
    (ranks_1, at_1), (ranks_2, at_2), refusal = SCHEDULE_RACES[name]
    hold = HoldAfter(scheduling.lock_first)
    monkeypatch.setattr(scheduling, "lock_first", hold)
    first, second = held_race(
        hold,
        _schedule_ranks(world, staff, ranks=waiting[ranks_1], start=S1_START + at_1),
        _schedule_ranks(world, staff, ranks=waiting[ranks_2], start=S1_START + at_2),
    )
    made_first = no_error(first)
    seats = _formal_seats_per_family(world)
    assert set(seats.values()) == {1}  # no family seated twice
    sessions = _sessions_sound(world)
    if refusal is None:
        made_second = no_error(second)
        assert len(seats) == 12  # the second staff seated only the families still waiting
        assert [s.order for s in sessions] == list(range(1, 2 + len(made_first + made_second)))
    else:
        error = second.get("error")
        assert isinstance(error, DomainError) and error.code == refusal, repr(error)
        assert len(sessions) == 1 + len(made_first)  # nothing of the loser's stayed
    phones = list(SmsMessage.objects.filter(kind="session_scheduled").values_list("phone"))
    assert len(phones) == len(set(phones)) == len(seats) - 2  # one SMS per newly seated family
    audits = AuditEntry.objects.filter(action="selection.sessions_schedule").count()
    assert audits == (2 if refusal is None else 1)


def test_control_without_the_round_lock_two_staff_seat_the_same_families_twice(monkeypatch, staff):
    """The second staff read the waiting families before the first committed; with a plain
    read of the round instead of its lock, it seats them again in its own sessions."""
    world, waiting = _ranks_world()
    monkeypatch.setattr(scheduling, "lock_first", lambda source, **kwargs: source.first())
    second_read, first_done = threading.Event(), threading.Event()
    real_unscheduled = scheduling._unscheduled_families

    def unscheduled(*args):
        families = list(real_unscheduled(*args))
        if _named() == SECOND:
            second_read.set()
            assert first_done.wait(30)
        return families

    monkeypatch.setattr(scheduling, "_unscheduled_families", unscheduled)
    out_first, out_second = {}, {}
    thread_second = _run(
        SECOND, _schedule_ranks(world, staff, ranks=waiting, start=S1_START + 3 * HOUR), out_second
    )
    assert second_read.wait(30)
    _run(
        FIRST, _schedule_ranks(world, staff, ranks=waiting, start=S1_START + HOUR), out_first
    ).join(30)
    first_done.set()
    thread_second.join(30)
    no_error(out_first)
    no_error(out_second)
    seats = _formal_seats_per_family(world)
    assert all(seats[f.pk] == 2 for f in world.families[2:])  # every waiting family, twice


@pytest.fixture
def applied(world):
    """Both formal sessions closed; families 0 and 2 applied for 补选; now is the deadline."""
    s1, s2 = world.sessions
    allocation.session_close(session_id=s1.pk, now=s1.ends_at)
    allocation.session_close(session_id=s2.pk, now=s2.ends_at)
    for family in (world.families[0], world.families[2]):
        supplementary.supplementary_apply(
            family=family, round_id=world.round.pk, ctx=CTX, now=s2.ends_at
        )
    world.deadline = supplementary.supplementary_applications_deadline(round_id=world.round.pk)
    world.applicants = [world.families[0].pk, world.families[2].pk]
    return world


def _schedule_supplementary(world, staff, *, start, family_ids=None):
    def schedule():
        return supplementary.supplementary_session_schedule(
            round_id=world.round.pk,
            starts_at=start,
            actor=staff,
            now=world.deadline,
            family_ids=family_ids,
        )

    return schedule


def _supplementary_seats(world) -> dict[int, int]:
    counts: dict[int, int] = {}
    for family_id in Seat.objects.filter(
        session__round=world.round, session__kind=Session.Kind.SUPPLEMENTARY
    ).values_list("family_id", flat=True):
        counts[family_id] = counts.get(family_id, 0) + 1
    return counts


@pytest.mark.parametrize("named", [False, True], ids=["all_applications", "named_families"])
def test_two_staff_scheduling_the_same_supplementary_families_at_once(
    named, applied, monkeypatch, staff
):
    hold = HoldAfter(supplementary.lock_first)
    monkeypatch.setattr(supplementary, "lock_first", hold)
    ids = applied.applicants if named else None
    first, second = held_race(
        hold,
        _schedule_supplementary(applied, staff, start=applied.deadline + HOUR, family_ids=ids),
        _schedule_supplementary(applied, staff, start=applied.deadline + 2 * HOUR, family_ids=ids),
    )
    session = no_error(first)
    error = second.get("error")
    assert isinstance(error, DomainError), repr(error)  # a clean refusal, no IntegrityError
    assert error.code == ("not_applied" if named else "no_applications")
    assert _supplementary_seats(applied) == {pk: 1 for pk in applied.applicants}
    assert list(Session.objects.filter(kind=Session.Kind.SUPPLEMENTARY)) == [session]
    assert set(SupplementaryApplication.objects.values_list("session_id", flat=True)) == {
        session.pk
    }
    _sessions_sound(applied)
    assert SmsMessage.objects.filter(kind="supplementary_scheduled").count() == 2
    assert AuditEntry.objects.filter(action="selection.supplementary_schedule").count() == 1


def test_control_without_the_round_lock_supplementary_families_are_seated_twice(
    applied, monkeypatch, staff
):
    """The second staff read the unscheduled applications before the first committed; with
    plain reads instead of the round and application locks it schedules them again."""
    monkeypatch.setattr(supplementary, "lock_first", lambda source, **kwargs: source.first())
    monkeypatch.setattr(supplementary, "lock_rows", lambda source, *args, **kwargs: list(source))
    second_read, first_done = threading.Event(), threading.Event()
    real_give_up = supplementary.GiveUp

    class GiveUpAfterRead:  # the first query after the applications were read
        class objects:  # noqa: N801 (stands in for the manager)
            @staticmethod
            def filter(*args, **kwargs):
                if _named() == SECOND and not second_read.is_set():
                    second_read.set()
                    assert first_done.wait(30)
                return real_give_up.objects.filter(*args, **kwargs)

    monkeypatch.setattr(supplementary, "GiveUp", GiveUpAfterRead)
    out_first, out_second = {}, {}
    thread_second = _run(
        SECOND,
        _schedule_supplementary(applied, staff, start=applied.deadline + 2 * HOUR),
        out_second,
    )
    assert second_read.wait(30)
    _run(
        FIRST, _schedule_supplementary(applied, staff, start=applied.deadline + HOUR), out_first
    ).join(30)
    first_done.set()
    thread_second.join(30)
    no_error(out_first)
    no_error(out_second)
    assert _supplementary_seats(applied) == {pk: 2 for pk in applied.applicants}
    assert SmsMessage.objects.filter(kind="supplementary_scheduled").count() == 4
