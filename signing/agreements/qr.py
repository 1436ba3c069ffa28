"""QR tickets: the desktop's 「签约协议」 code (and a lease's stage codes).

The code encodes `SITE_URL/s/<token>`: an opaque random token, never a session id, so it does
not depend on the desktop's session and a screenshot scanned from the phone's album works the
same. It lives a bounded time (signing/agreements/phone.py `qr_ticket_expiry`); the desktop page issues a
new one when it runs out. Opening it starts a signing session on the phone
(signing/agreements/phone.py), not a login; a leaked screenshot shows masked details only and cannot
pass the main applicant's face check."""

from __future__ import annotations

import hashlib
import io
import secrets
from datetime import datetime

import qrcode
from django.db import transaction
from qrcode.constants import ERROR_CORRECT_M

from accounts.models import Applicant
from core.errors import NotAllowed
from core.urls import absolute_url
from signing.agreements.transitions import agreement_signable_check
from signing.models import Agreement, QrTicket

SHORT_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
QUIET_ZONE = 6  # modules; the standard asks 4, a screenshot cropped by a thumb needs more
BOX_SIZE = 10


def qr_url(ticket: QrTicket) -> str:
    return absolute_url(f"/s/{ticket.token}")


def qr_ticket_issue(
    *,
    agreement: Agreement,
    applicant: Applicant,
    session_key: str,
    now: datetime,
) -> QrTicket:
    """The 「签约协议」 QR ticket for the desktop page of the agreement's own applicant. Raises
    `agreement_not_yours`, `signing_closed`, `agreement_not_pending`."""
    if agreement.family.main_applicant_id != applicant.pk:
        raise NotAllowed("agreement_not_yours", "该协议不属于您")
    agreement_signable_check(agreement)
    if now >= agreement.window_ends_at:
        raise NotAllowed("signing_closed", "签约期限已过")
    return qr_ticket_create(
        agreement=agreement, purpose=QrTicket.Purpose.SIGN, session_key=session_key, now=now
    )


def qr_ticket_create(
    *, agreement: Agreement, purpose: str, session_key: str, now: datetime
) -> QrTicket:
    """A ticket for `purpose`, valid for its bounded lifetime (never past the agreement's
    window); the caller checked that the agreement is the applicant's and that this code may
    be shown now. It replaces the agreement's earlier codes of that purpose: only the newest
    one opens (phone.py `phone_session_open`), so the code on the screen, and its 识别码, is
    the one the phone signs through. Made under the agreement's lock, which an open takes
    too: an open either sees this ticket or came before it."""
    from signing.agreements.phone import qr_ticket_expiry
    from signing.agreements.services import agreement_lock

    with transaction.atomic():
        agreement_lock(agreement.pk)
        return QrTicket.objects.create(
            agreement=agreement,
            purpose=purpose,
            token=secrets.token_urlsafe(24),
            short_code="".join(secrets.choice(SHORT_ALPHABET) for _ in range(8)),
            created_at=now,
            expires_at=qr_ticket_expiry(agreement=agreement, purpose=purpose, now=now),
            created_session_hash=hashlib.sha256(session_key.encode()).hexdigest(),
        )


def qr_png(ticket: QrTicket) -> bytes:
    """PNG of the code (error correction M, wide quiet zone). The 识别码 is printed once, by
    the page beside the code, not inside the image as well."""
    return png_of(qr_url(ticket))


def png_of(text: str) -> bytes:
    """PNG of a QR code holding `text`: the ticket's URL, or a payment's WeChat Pay Native
    code_url (the lease's deposit)."""
    # M (15 %): a screen or a screenshot does not get dirty like paper, and each level up
    # makes the code denser and slower to make.
    code = qrcode.QRCode(error_correction=ERROR_CORRECT_M, box_size=BOX_SIZE, border=QUIET_ZONE)
    code.add_data(text)
    code.make(fit=True)
    canvas = code.make_image(fill_color="black", back_color="white").get_image().convert("L")
    out = io.BytesIO()
    canvas.save(out, format="PNG")  # grayscale, no optimise pass: a few ms instead of tens
    return out.getvalue()
