"""A sealed agreement that went through the whole phone flow — consents, a passed face check,
the reading, every character, the SMS code, the submit and the seal — for the evidence
package's tests; and the rewrites an attacker with the database could make."""

from __future__ import annotations

from datetime import timedelta

from accounts.models import User
from core.hashchain import chain_hash
from signing.agreements import flow, services
from signing.agreements.evidence import entry_content
from signing.models import Agreement, ConsentKind, Evidence, FaceCheck
from sms import crypto
from sms.models import SmsMessage
from tests.signing.worlds import CTX, OPENS, make_agreement, strokes

NOW = OPENS + timedelta(hours=1)
SEALED_AT = NOW + timedelta(hours=3)
FACE_RESULT_ID = "face-result-7731"
FACE_SCORE = 0.93


def _versions(*kinds):
    return {k: flow.consent_current(k).version for k in kinds}


def sealed_agreement(*, name: str = "王小明"):
    """Returns (agreement, applicant) sealed at SEALED_AT. Needs a CA valid in January 2026
    (tests/signing/viewer_worlds.py `ca_for`)."""
    agreement, applicant = make_agreement(name=name)
    kw = {"agreement_id": agreement.pk, "applicant": applicant, "ctx": CTX, "now": NOW}
    flow.contract_view(**kw)
    flow.ecert_consent(versions=_versions(ConsentKind.ECERT_SERVICE, ConsentKind.PRIVACY), **kw)
    flow.identity_confirm(versions=_versions(ConsentKind.PRIVACY, ConsentKind.BIOMETRIC), **kw)
    face = FaceCheck.objects.create(
        agreement=agreement,
        attempt=1,
        provider="dev",
        order_id="fc_evidence_world",
        status=FaceCheck.Status.PASSED,
        score=FACE_SCORE,
        result_id=FACE_RESULT_ID,
        created_at=NOW,
        completed_at=NOW,
    )
    flow.face_verified(face_check=face, **kw)
    flow.agreement_read(scrolled_to_end=True, reading_seconds=30, **kw)
    for index in range(len(agreement.signer_name)):
        flow.signature_character_save(
            index=index, strokes=strokes(t0=index * 1000), width=300, height=300, **kw
        )
    flow.signature_complete(**kw)
    flow.sign_code_send(**kw)
    message = SmsMessage.objects.filter(kind="verify_code").order_by("-id").first()
    code = crypto.unseal(message.payload)["params"][0]  # the outbox's sealed text
    flow.sign_submit(code=code, **kw)
    reviewer, _ = User.objects.get_or_create(
        username="evidence-reviewer", defaults={"is_staff": True}
    )
    services.agreement_approve(agreement_id=agreement.pk, actor=reviewer, now=SEALED_AT)
    agreement.refresh_from_db()
    assert agreement.status == Agreement.Status.SEALED
    return agreement, applicant


def rewrite_row(agreement_id: int, seq: int, **changes) -> None:
    """Edit row `seq` and recompute its hash and every later row's links and hashes, as
    someone holding the database (but not the log key) could."""
    rows = list(Evidence.objects.filter(agreement_id=agreement_id).order_by("seq"))
    prev = None
    for row in rows:
        if row.seq == seq:
            for field, value in changes.items():
                setattr(row, field, value)
        if row.seq >= seq:
            row.prev_hash = prev if prev is not None else row.prev_hash
            row.hash = chain_hash(entry_content(row), row.prev_hash)
            Evidence.objects.filter(pk=row.pk).update(
                prev_hash=row.prev_hash, hash=row.hash, **(changes if row.seq == seq else {})
            )
        prev = row.hash


def cut_tail(agreement_id: int, rows: int) -> list[str]:
    """Delete the last `rows` rows; returns their kinds."""
    last = list(Evidence.objects.filter(agreement_id=agreement_id).order_by("-seq")[:rows])
    Evidence.objects.filter(pk__in=[row.pk for row in last]).delete()
    return [row.kind for row in reversed(last)]
