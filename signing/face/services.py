"""Face checks: record the intent, call the provider after commit, apply the result once.

These services never advance the agreement's step. A passed FaceCheck is only a fact about
the provider's answer; signing/agreements/flow.py's `face_verified` moves the phone flow on when the
applicant's page sees a passed check of the current attempt (and checks it belongs to them).
"""

from __future__ import annotations

import logging
import secrets
from datetime import datetime

from django.conf import settings
from django.db import transaction

from core.errors import Conflict, Throttled
from core.locking import lock_get
from signing.agreements.evidence import evidence_append
from signing.agreements.transitions import agreement_signable_check, signing_window_check
from signing.face import get_provider
from signing.face.base import FaceOrderUnknown, FaceResult, FaceResultPending, FaceStart
from signing.models import Agreement, FaceCheck

logger = logging.getLogger("anju.face")

Step = Agreement.Step


def _order_id() -> str:
    return f"fc_{secrets.token_hex(16)}"


def _check_can_start(agreement: Agreement, now: datetime, reverify: bool) -> None:
    if reverify:
        # A later stage's code opened on a phone that has not passed this attempt's face
        # check (signing/agreements/phone.py `face_reverify_needed`): the check proves the phone again.
        agreement_signable_check(agreement, signed_too=True)
        signing_window_check(agreement, now)
        if agreement.step < Step.FACE_VERIFIED:
            raise Conflict("step_out_of_order", f"请先完成「{Step(agreement.step + 1).label}」")
        return
    agreement_signable_check(agreement)
    signing_window_check(agreement, now)
    if agreement.step != Step.IDENTITY_CONFIRMED:
        if agreement.step > Step.IDENTITY_CONFIRMED:
            raise Conflict("step_out_of_order", "人脸识别已完成")
        raise Conflict("step_out_of_order", f"请先完成「{Step(agreement.step + 1).label}」")


def face_check_start(
    *,
    agreement: Agreement,
    now: datetime,
    signing_session_id: int | None = None,
    reverify: bool = False,
) -> FaceCheck:
    """Record the intent of a face check: a FaceCheck STARTED for the agreement's current
    attempt, with a fresh random order id and the configured provider's name; `reverify`
    (a phone proving itself again) is kept on it, for the return to tell what it proves.

    Locks the agreement row. Publishes nothing. Raises `agreement_not_pending`,
    `signing_not_open`, `signing_closed`, `step_out_of_order` (the flow is not at the face
    step; with `reverify`, not past it), `face_attempts_exceeded` (FACE["MAX_STARTS_PER_ATTEMPT"] checks this attempt;
    each costs a provider call).

    Only the intent: the caller calls `provider.start()` after this transaction commits
    (see `face_check_begin`), never inside it."""
    provider = get_provider().name
    with transaction.atomic():
        agreement = lock_get(Agreement.objects, pk=agreement.pk)
        _check_can_start(agreement, now, reverify)
        started = FaceCheck.objects.filter(agreement=agreement, attempt=agreement.attempt).count()
        if started >= settings.FACE["MAX_STARTS_PER_ATTEMPT"]:
            raise Throttled("face_attempts_exceeded", "人脸识别次数过多，请联系工作人员")
        return FaceCheck.objects.create(
            agreement=agreement,
            attempt=agreement.attempt,
            provider=provider,
            order_id=_order_id(),
            signing_session_id=signing_session_id,
            reverify=reverify,
            status=FaceCheck.Status.STARTED,
            created_at=now,
        )


def face_check_begin(
    *,
    agreement: Agreement,
    now: datetime,
    return_url: str,
    callback_url: str,
    signing_session_id: int | None = None,
    reverify: bool = False,
) -> tuple[FaceCheck, FaceStart]:
    """`face_check_start`, then `provider.start()` for the new order (`{order_id}` in
    `return_url` is replaced by the order's id) with the main
    applicant's real name and ID number. Call it outside any transaction: the intent commits
    first, the provider is called after. Raises what `face_check_start` raises and
    FaceProviderError (answer 503). Repeating it after a provider failure is safe: a new
    order, and the stale STARTED one is never completed."""
    face_check = face_check_start(
        agreement=agreement, now=now, signing_session_id=signing_session_id, reverify=reverify
    )
    return_url = return_url.replace("{order_id}", face_check.order_id)
    applicant = (
        Agreement.objects.select_related("family__main_applicant")
        .get(pk=agreement.pk)
        .family.main_applicant
    )
    start = get_provider().start(
        order_id=face_check.order_id,
        real_name=applicant.real_name,
        id_number=applicant.id_number,
        return_url=return_url,
        callback_url=callback_url,
    )
    return face_check, start


def _lock_for_apply(order_id: str, provider: str) -> FaceCheck:
    """The FaceCheck of `order_id`, its agreement row locked first (the order every signing
    service locks in, which also serialises the evidence chain), then its own row."""
    found = (
        FaceCheck.objects.filter(order_id=order_id, provider=provider)
        .values_list("pk", "agreement_id")
        .first()
    )
    if found is None:
        raise FaceOrderUnknown()
    pk, agreement_id = found
    lock_get(Agreement.objects.filter(pk=agreement_id).values_list("pk"))
    return lock_get(FaceCheck.objects.select_related("agreement"), pk=pk)


def _record(face_check: FaceCheck, result: FaceResult, now: datetime) -> None:
    passed = (
        result.passed and result.score is not None and result.score >= settings.FACE["PASS_SCORE"]
    )
    face_check.status = FaceCheck.Status.PASSED if passed else FaceCheck.Status.FAILED
    face_check.score = result.score
    face_check.result_id = result.result_id[:100]
    face_check.completed_at = now
    face_check.save(update_fields=["status", "score", "result_id", "completed_at"])
    evidence_append(
        agreement=face_check.agreement,
        kind="face_check_result",
        now=now,
        data={
            "attempt": face_check.attempt,
            "provider": face_check.provider,
            "order_id": face_check.order_id,
            "result_id": face_check.result_id,
            "score": face_check.score,
            "provider_passed": result.passed,
            "pass_score": settings.FACE["PASS_SCORE"],
            "status": face_check.status,
        },
    )


def face_check_apply(*, result: FaceResult, now: datetime) -> FaceCheck:
    """Apply a verified provider result to its FaceCheck, exactly once.

    PASSED when the provider passed it and its score reaches FACE["PASS_SCORE"], FAILED
    otherwise; keeps the score and the provider's result id (never an image) and appends a
    `face_check_result` evidence entry. A check that is no longer STARTED is returned
    unchanged: a redelivery, a late poll or a conflicting second answer changes nothing (the
    first answer stands).

    Locks the agreement row, then the FaceCheck row. Publishes nothing. Does NOT advance the
    agreement's step: the caller (signing/agreements/flow.py `face_verified`) does that when the
    applicant's page sees the passed check. Raises `face_order_unknown` for an order we never
    started with this provider."""
    with transaction.atomic():
        face_check = _lock_for_apply(result.order_id, result.provider)
        if face_check.status != FaceCheck.Status.STARTED:
            if (face_check.result_id, face_check.score) != (result.result_id[:100], result.score):
                logger.warning(
                    "face check %s already %s; a different result (%s) was ignored",
                    face_check.order_id,
                    face_check.status,
                    result.result_id,
                )
            return face_check
        _record(face_check, result, now)
        return face_check


def face_check_refresh(*, provider_order_id: str, now: datetime) -> FaceCheck | None:
    """Poll the provider for a session's result (the return page's `token`) and apply it.
    None while the provider has no final result. Call it outside any transaction. Raises
    FaceCallbackInvalid for a token the provider does not know, FaceProviderError.

    The FaceCheck returned may belong to anyone whose token was passed: the caller checks it
    belongs to the applicant's agreement before acting on it."""
    result = get_provider().fetch_result(provider_order_id=provider_order_id)
    if result is None:
        return None
    return face_check_apply(result=result, now=now)


def face_check_for_return(
    *, agreement: Agreement, order_id: str, provider_token: str, now: datetime
) -> FaceCheck:
    """The phone came back from the provider: this agreement's check `order_id`, with the
    provider's result pulled in if the callback has not arrived yet (`provider_token` from
    the return URL; the provider's answer is the truth, the token only says where to look).
    Raises `face_order_unknown` for another agreement's or an unknown order,
    `face_result_pending` while the provider has no final result."""
    face_check = FaceCheck.objects.filter(agreement=agreement, order_id=order_id).first()
    if face_check is None:
        raise FaceOrderUnknown()
    if face_check.status == FaceCheck.Status.STARTED and provider_token:
        refreshed = face_check_refresh(provider_order_id=provider_token, now=now)
        if refreshed is not None and refreshed.pk != face_check.pk:
            raise FaceOrderUnknown()
        face_check.refresh_from_db()
    if face_check.status == FaceCheck.Status.STARTED:
        raise FaceResultPending()
    return face_check
