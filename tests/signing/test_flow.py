"""The phone flow in order, every step refused out of order, the transition table, the
evidence chain, QR tickets."""

from __future__ import annotations

from datetime import timedelta

import pytest

from core.errors import DomainError
from signing.agreements import flow, services
from signing.agreements.evidence import evidence_verify
from signing.agreements.transitions import ALLOWED, transition_check
from signing.models import Agreement, ConsentKind, Evidence, SignatureCharacter
from tests.signing.worlds import CLOSES, CTX, OPENS, make_agreement, strokes

pytestmark = pytest.mark.django_db
S = timedelta(seconds=1)
NOW = OPENS + timedelta(hours=1)


def versions(*kinds):
    return {k: flow.consent_current(k).version for k in kinds}


def steps_to(agreement, applicant, last: int, now=NOW):
    """Walk the flow up to step `last` (Agreement.Step value)."""
    kw = {"agreement_id": agreement.pk, "applicant": applicant, "ctx": CTX, "now": now}
    actions = [
        lambda: flow.contract_view(**kw),
        lambda: flow.ecert_consent(
            versions=versions(ConsentKind.ECERT_SERVICE, ConsentKind.PRIVACY), **kw
        ),
        lambda: flow.identity_confirm(
            versions=versions(ConsentKind.PRIVACY, ConsentKind.BIOMETRIC), **kw
        ),
        lambda: Agreement.objects.filter(pk=agreement.pk).update(step=Agreement.Step.FACE_VERIFIED),
        lambda: flow.agreement_read(scrolled_to_end=True, reading_seconds=30, **kw),
        lambda: [
            flow.signature_character_save(index=i, strokes=strokes(), width=300, height=300, **kw)
            for i in range(len(agreement.signer_name))
        ],
        lambda: flow.signature_complete(**kw),
    ]
    for action in actions[:last]:
        action()
    agreement.refresh_from_db()
    return agreement


def code_of(fn, **kwargs):
    try:
        fn(**kwargs)
    except DomainError as exc:
        return exc.code
    return None


def test_the_steps_run_in_order_and_each_leaves_evidence():
    agreement, applicant = make_agreement()
    agreement = steps_to(agreement, applicant, 7)
    assert agreement.step == Agreement.Step.SIGNATURE_DRAWN and agreement.status == "pending"
    kinds = list(Evidence.objects.filter(agreement=agreement).values_list("kind", flat=True))
    assert kinds[:4] == ["created", "contract_viewed", "consented_ecert", "identity_confirmed"]
    assert kinds.count("character_drawn") == 3 and kinds[-1] == "signature_confirmed"
    consent = Evidence.objects.get(agreement=agreement, kind="consented_ecert").data["consents"]
    assert set(consent) == {"ecert_service", "privacy"} and all(
        len(v["sha256"]) == 64 for v in consent.values()
    )
    assert evidence_verify(agreement_id=agreement.pk).first_bad_seq is None


@pytest.mark.parametrize(
    "done,action",
    [
        (0, "ecert"),
        (0, "identity"),
        (0, "read"),
        (0, "char"),
        (0, "complete"),
        (1, "identity"),
        (2, "read"),
        (3, "read"),
        (4, "char"),
        (4, "complete"),
        (5, "complete"),
    ],
)
def test_every_step_is_refused_out_of_order(done, action):
    agreement, applicant = make_agreement()
    steps_to(agreement, applicant, done)
    kw = {"agreement_id": agreement.pk, "applicant": applicant, "ctx": CTX, "now": NOW}
    before = (Evidence.objects.count(), SignatureCharacter.objects.count())
    calls = {
        "ecert": lambda: flow.ecert_consent(
            versions=versions(ConsentKind.ECERT_SERVICE, ConsentKind.PRIVACY), **kw
        ),
        "identity": lambda: flow.identity_confirm(
            versions=versions(ConsentKind.PRIVACY, ConsentKind.BIOMETRIC), **kw
        ),
        "read": lambda: flow.agreement_read(scrolled_to_end=True, reading_seconds=30, **kw),
        "char": lambda: flow.signature_character_save(
            index=0, strokes=strokes(), width=300, height=300, **kw
        ),
        "complete": lambda: flow.signature_complete(**kw),
    }
    with pytest.raises(DomainError) as caught:
        calls[action]()
    assert caught.value.code in {"step_out_of_order", "signature_incomplete"}
    assert (Evidence.objects.count(), SignatureCharacter.objects.count()) == before


def test_a_repeated_tap_on_a_done_step_changes_nothing():
    agreement, applicant = make_agreement()
    steps_to(agreement, applicant, 2)
    before = Evidence.objects.count()
    flow.contract_view(agreement_id=agreement.pk, applicant=applicant, ctx=CTX, now=NOW)
    assert Evidence.objects.count() == before


def test_outdated_consent_versions_are_refused():
    agreement, applicant = make_agreement()
    steps_to(agreement, applicant, 1)
    assert (
        code_of(
            flow.ecert_consent,
            agreement_id=agreement.pk,
            applicant=applicant,
            versions={"ecert_service": 1, "privacy": 99},
            ctx=CTX,
            now=NOW,
        )
        == "consent_outdated"
    )


def test_reading_needs_the_end_and_some_time():
    agreement, applicant = make_agreement()
    steps_to(agreement, applicant, 4)
    kw = {"agreement_id": agreement.pk, "applicant": applicant, "ctx": CTX, "now": NOW}
    assert (
        code_of(flow.agreement_read, scrolled_to_end=False, reading_seconds=60, **kw)
        == "read_to_end"
    )
    assert (
        code_of(flow.agreement_read, scrolled_to_end=True, reading_seconds=2, **kw)
        == "read_too_fast"
    )
    with pytest.raises(DomainError) as refused:  # it says how long a reading takes
        flow.agreement_read(scrolled_to_end=True, reading_seconds=4, **kw)
    assert refused.value.message == "请仔细阅读协议内容，阅读时间不少于5秒"
    flow.agreement_read(scrolled_to_end=True, reading_seconds=5, **kw)  # the boundary


@pytest.mark.parametrize(
    "bad,code",
    [
        ([], "signature_invalid"),
        ([[{"x": 10, "y": 10, "t": 0, "p": 0.5}]], "signature_invalid"),  # a dot, no time
        (
            [[{"x": 10 + i, "y": 400, "t": i * 30, "p": 0.5} for i in range(10)]],
            "signature_invalid",
        ),  # outside
        ([[{"x": "a", "y": 1, "t": 0}]], "signature_invalid"),
        (
            [[{"x": 10 + i, "y": 10, "t": i, "p": 0.5} for i in range(10)]],
            "signature_invalid",
        ),  # 9 ms
        ([[{"x": 10, "y": 10, "t": 0}]] * 41, "signature_invalid"),
    ],
)
def test_bad_characters_are_refused(bad, code):
    agreement, applicant = make_agreement()
    steps_to(agreement, applicant, 5)
    assert (
        code_of(
            flow.signature_character_save,
            agreement_id=agreement.pk,
            applicant=applicant,
            index=0,
            strokes=bad,
            width=300,
            height=300,
            ctx=CTX,
            now=NOW,
        )
        == code
    )
    assert not SignatureCharacter.objects.exists()


def test_a_box_can_be_redone_and_a_box_outside_the_name_is_refused():
    agreement, applicant = make_agreement(name="李华")
    steps_to(agreement, applicant, 5)
    kw = {
        "agreement_id": agreement.pk,
        "applicant": applicant,
        "ctx": CTX,
        "now": NOW,
        "width": 300,
        "height": 300,
    }
    first = flow.signature_character_save(index=1, strokes=strokes(), **kw)
    again = flow.signature_character_save(index=1, strokes=strokes(t0=5000), **kw)
    assert first.pk == again.pk and SignatureCharacter.objects.count() == 1
    assert again.expected == "华" and bytes(again.png)[:8] == b"\x89PNG\r\n\x1a\n"
    assert code_of(flow.signature_character_save, index=2, strokes=strokes(), **kw) == "box_unknown"
    assert (
        code_of(
            flow.signature_complete,
            agreement_id=agreement.pk,
            applicant=applicant,
            ctx=CTX,
            now=NOW,
        )
        == "signature_incomplete"
    )


def test_the_window_bounds_every_step():
    agreement, applicant = make_agreement()
    kw = {"agreement_id": agreement.pk, "applicant": applicant, "ctx": CTX}
    assert code_of(flow.contract_view, now=OPENS - S, **kw) == "signing_not_open"
    assert code_of(flow.contract_view, now=CLOSES, **kw) == "signing_closed"
    assert code_of(flow.contract_view, now=CLOSES - S, **kw) is None


def test_only_the_main_applicant_may_sign():
    agreement, _ = make_agreement()
    _, stranger = make_agreement(name="张三")
    assert (
        code_of(flow.contract_view, agreement_id=agreement.pk, applicant=stranger, ctx=CTX, now=NOW)
        == "agreement_not_yours"
    )


def test_transition_table():
    S_ = Agreement.Status
    assert ALLOWED[S_.PENDING] == {S_.SIGNED, S_.VOID, S_.ABANDONED}
    # VOID: only a lease signed with its deposit unpaid at the window end (test_lease_review)
    assert ALLOWED[S_.SIGNED] == {S_.SEALED, S_.PENDING, S_.ABANDONED, S_.VOID}
    for terminal in (S_.SEALED, S_.VOID, S_.ABANDONED):
        assert ALLOWED[terminal] == frozenset()
    agreement = Agreement(status=S_.VOID)
    for target in S_.values:
        with pytest.raises(DomainError):
            transition_check(agreement, target)


@pytest.mark.parametrize("offset,voided", [(-1, False), (0, True), (1, True)])
def test_unsigned_at_the_window_end_is_void_once(offset, voided):
    agreement, _ = make_agreement()
    assert (services.agreements_void_due(now=CLOSES + offset * S) == [agreement.pk]) == voided
    assert services.agreements_void_due(now=CLOSES + 2 * S) == ([] if voided else [agreement.pk])
    agreement.refresh_from_db()
    assert agreement.status == "void"


def test_abandonment_declaration():
    agreement, applicant = make_agreement()
    text, version = services.abandon_declaration(agreement)
    assert "放弃签约声明书" in text
    with pytest.raises(DomainError):
        services.agreement_abandon(
            agreement_id=agreement.pk,
            actor=applicant.user,
            on_behalf=False,
            declaration_version="0" * 64,
            ctx=CTX,
            now=NOW,
        )
    services.agreement_abandon(
        agreement_id=agreement.pk,
        actor=applicant.user,
        on_behalf=False,
        declaration_version=version,
        ctx=CTX,
        now=NOW,
    )
    agreement.refresh_from_db()
    assert agreement.status == "abandoned"
    assert (
        code_of(
            flow.contract_view, agreement_id=agreement.pk, applicant=applicant, ctx=CTX, now=NOW
        )
        == "agreement_not_pending"
    )
    assert (
        code_of(services.agreements_void_due, now=CLOSES) is None
        and agreement.status == "abandoned"
    )


def test_push_sends_an_sms_and_records_it():
    from sms.models import SmsMessage

    agreement, _ = make_agreement()
    services.agreement_push(agreement_id=agreement.pk, actor=None, now=NOW)
    assert SmsMessage.objects.filter(kind="agreement_pushed").count() == 1
    assert Evidence.objects.filter(agreement=agreement, kind="pushed").exists()


def test_an_edited_evidence_row_is_caught():
    agreement, applicant = make_agreement()
    steps_to(agreement, applicant, 3)
    row = Evidence.objects.get(agreement=agreement, kind="consented_ecert")
    Evidence.objects.filter(pk=row.pk).update(ip="6.6.6.6")
    assert evidence_verify(agreement_id=agreement.pk).first_bad_seq == row.seq
