"""Who may act on an agreement's phone steps: the applicant's own login, or the phone's
signing session (signing/agreements/phone.py) that a QR ticket started. Used by the phone flow's views
(mobile_api/signing_api.py, the deposit views of mobile_api/lease_api.py) and the phone pages
(h5/), so that they answer alike.

The phone holds two cookies, both HttpOnly and SameSite=Lax:
- `anju_sign`: the signing session's secret (only its hash is stored), for as long as the
  ticket lives;
- `anju_phone`: a random device id kept a year, so that the phone that passed the face check
  is known again when it scans the next stage's code (its hash is stored).
Neither is a login: the Django session and the account's device session are never touched.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone

from accounts.models import Applicant
from accounts.validators import mask_name
from core.context import RequestContext
from core.errors import DomainError
from realtime.access import qr_stream_token
from signing.agreements import phone
from signing.models import Agreement, SigningSession

SESSION_COOKIE = "anju_sign"
DEVICE_COOKIE = "anju_phone"
DEVICE_COOKIE_SECONDS = 365 * 24 * 3600


@dataclass(frozen=True)
class Signer:
    agreement: Agreement
    applicant: Applicant  # the agreement's main applicant
    session: SigningSession | None  # None: the applicant's own login

    def ctx(self, request) -> RequestContext:
        return RequestContext.from_request(
            request, signing_session=self.session.pk if self.session else None
        )

    @property
    def verified(self) -> bool:
        """May see the agreement's text, the unit and the amounts: the applicant's own login,
        or a phone that passed this attempt's face check."""
        return self.session is None or phone.phone_identity_verified(
            session=self.session, agreement=self.agreement
        )


def _logged_in_applicant(request) -> Applicant | None:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return None
    return Applicant.objects.filter(user=user).first()


def _not_found() -> DomainError:
    return DomainError("agreement_not_found", "协议不存在", kind="not_found")


def phone_session_of(request, *, now: datetime | None = None) -> SigningSession | None:
    """The live signing session the request's cookie names (raises when it was taken over or
    has expired), or None."""
    return phone.phone_session_get(
        secret=request.COOKIES.get(SESSION_COOKIE, ""), now=now or timezone.now()
    )


def signer_for(request, *, agreement_id: int, action: str) -> Signer:
    """The signer of agreement `agreement_id` for `action` (signing/agreements/phone.py's action names).
    The applicant's own login may do everything; a phone's signing session only what its
    ticket allows. Raises `not_authenticated` (neither), `forbidden` (a staff login),
    `agreement_not_found` (another family's agreement, logged in), `signing_session_scope`, `signing_session_ended`,
    `signing_session_taken_over`."""
    now = timezone.now()
    applicant = _logged_in_applicant(request)
    if applicant is not None:
        agreement = (
            Agreement.objects.select_related("family__main_applicant")
            .filter(pk=agreement_id, family__main_applicant=applicant)
            .first()
        )
        if agreement is not None:
            return Signer(agreement=agreement, applicant=applicant, session=None)
        raise _not_found()  # another applicant's login is never helped by a phone cookie
    session = phone_session_of(request, now=now)
    if session is None:
        if request.user.is_authenticated:  # a staff account: the same answer as IsApplicant
            raise DomainError("forbidden", "无权进行此操作", kind="forbidden")
        raise DomainError("not_authenticated", "请扫描电脑端的签约二维码", kind="unauthenticated")
    phone.phone_session_allows(session=session, agreement_id=agreement_id, action=action, now=now)
    agreement = session.agreement
    return Signer(agreement=agreement, applicant=agreement.family.main_applicant, session=session)


def device_id(request) -> tuple[str, bool]:
    """The phone's device id from its cookie, or a new one (True: set the cookie)."""
    value = request.COOKIES.get(DEVICE_COOKIE, "")
    if 16 <= len(value) <= 64 and value.replace("-", "").replace("_", "").isalnum():
        return value, False
    return secrets.token_urlsafe(24), True


def cookies_set(response, request, *, opened: phone.PhoneOpen, device: str, new_device: bool):
    secure = request.is_secure()
    seconds = max(int((opened.session.expires_at - timezone.now()).total_seconds()), 1)
    response.set_cookie(
        SESSION_COOKIE, opened.secret, max_age=seconds, httponly=True, samesite="Lax", secure=secure
    )
    if new_device:
        response.set_cookie(
            DEVICE_COOKIE,
            device,
            max_age=DEVICE_COOKIE_SECONDS,
            httponly=True,
            samesite="Lax",
            secure=secure,
        )


def session_json(signer: Signer) -> dict | None:
    """What the phone page needs to know about its own session (None: a login)."""
    session = signer.session
    if session is None:
        return None
    agreement = signer.agreement
    return {
        "id": session.pk,
        "purpose": session.purpose,
        "purpose_label": session.get_purpose_display(),
        "expires_at": session.expires_at.isoformat(),
        "verified": signer.verified,
        "verify_needed": phone.face_reverify_needed(session=session, agreement=agreement),
        "stream": f"qr.{session.ticket_id}",
        "stream_token": qr_stream_token(
            ticket_id=str(session.ticket_id), expires_at=session.expires_at
        ),
    }


def shown_name(signer: Signer) -> str:
    name = signer.applicant.real_name
    return name if signer.verified else mask_name(name)
