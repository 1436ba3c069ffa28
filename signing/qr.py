"""QR tickets: the desktop's 「签约协议」 code and the phone that opens it.

The code encodes `SITE_URL/s/<token>`: an opaque random token, never a session id. It stays
valid until the signing window ends, so a screenshot scanned later from the phone's album
still works, and it does not depend on the desktop's session. Opening it needs the
agreement's main applicant's own login, so a leaked screenshot lets nobody else sign."""

from __future__ import annotations

import functools
import hashlib
import io
import secrets
from datetime import datetime

import qrcode
from django.conf import settings
from django.db import transaction
from PIL import Image, ImageDraw, ImageFont
from qrcode.constants import ERROR_CORRECT_M

from accounts.models import Applicant
from core.context import RequestContext
from core.errors import DomainError, NotAllowed
from events.services import event_record
from events.streams import qr_stream
from signing.models import Agreement, QrScan, QrTicket

SHORT_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
QUIET_ZONE = 6  # modules; the standard asks 4, a screenshot cropped by a thumb needs more
BOX_SIZE = 10


class QrInvalid(DomainError):
    kind = "not_found"
    code = "qr_invalid"
    message = "二维码无效，请在电脑端重新获取"


def qr_url(ticket: QrTicket) -> str:
    return f"{settings.SITE_URL}/s/{ticket.token}"


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
    if agreement.status != Agreement.Status.PENDING:
        raise NotAllowed("agreement_not_pending", "协议当前不可签署")
    if now >= agreement.window_ends_at:
        raise NotAllowed("signing_closed", "签约期限已过")
    return qr_ticket_create(
        agreement=agreement, purpose=QrTicket.Purpose.SIGN, session_key=session_key, now=now
    )


def qr_ticket_create(
    *, agreement: Agreement, purpose: str, session_key: str, now: datetime
) -> QrTicket:
    """A ticket for `purpose`, valid until the agreement's window ends; the caller checked
    that the agreement is the applicant's and that this code may be shown now."""
    return QrTicket.objects.create(
        agreement=agreement,
        purpose=purpose,
        token=secrets.token_urlsafe(24),
        short_code="".join(secrets.choice(SHORT_ALPHABET) for _ in range(8)),
        created_at=now,
        expires_at=agreement.window_ends_at,
        created_session_hash=hashlib.sha256(session_key.encode()).hexdigest(),
    )


@functools.cache
def _label_font() -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=BOX_SIZE * 3)  # loaded once, not per code


def qr_png(ticket: QrTicket) -> bytes:
    """PNG of the code (error correction M, wide quiet zone) with the short code printed
    under it, so it can also be typed."""
    # M (15 %) as the issue asks: a screen or a screenshot does not get dirty like paper, and
    # each level up makes the code denser and slower to make.
    code = qrcode.QRCode(error_correction=ERROR_CORRECT_M, box_size=BOX_SIZE, border=QUIET_ZONE)
    code.add_data(qr_url(ticket))
    code.make(fit=True)
    image = code.make_image(fill_color="black", back_color="white").get_image().convert("L")
    font = _label_font()
    label = f"{ticket.short_code[:4]} {ticket.short_code[4:]}"
    canvas = Image.new("L", (image.width, image.height + BOX_SIZE * 5), 255)
    canvas.paste(image, (0, 0))
    draw = ImageDraw.Draw(canvas)
    width = draw.textlength(label, font=font)
    draw.text(((image.width - width) / 2, image.height - BOX_SIZE), label, fill=0, font=font)
    out = io.BytesIO()
    canvas.save(out, format="PNG")  # grayscale, no optimise pass: a few ms instead of tens
    return out.getvalue()


def qr_ticket_open(
    *, token: str, applicant: Applicant | None, ctx: RequestContext, now: datetime
) -> QrTicket:
    """The phone opened the code. Every scan is recorded (refused ones too, with why); the
    desktop hears 已扫码 on the first accepted one. Raises `qr_invalid`, `qr_expired`,
    `not_authenticated` (log in first, then open again), `qr_not_yours`."""
    ticket = QrTicket.objects.select_related("agreement__family").filter(token=token or "").first()
    if ticket is None:
        raise QrInvalid()

    def refuse(reason: str, error: DomainError) -> DomainError:
        QrScan.objects.create(
            ticket=ticket,
            at=now,
            user=applicant.user if applicant else None,
            accepted=False,
            reason=reason,
            ip=ctx.ip,
            user_agent=ctx.user_agent,
        )
        return error

    if now >= ticket.expires_at:
        raise refuse("expired", DomainError("qr_expired", "二维码已过期", kind="forbidden"))
    if applicant is None:
        raise refuse(
            "login_required",
            DomainError("not_authenticated", "请先登录后再扫码", kind="unauthenticated"),
        )
    if ticket.agreement.family.main_applicant_id != applicant.pk:
        raise refuse(
            "not_owner",
            NotAllowed("qr_not_yours", "该二维码不属于您，只有主申请人本人可以扫码签约"),
        )
    with transaction.atomic():
        first = not ticket.scans.filter(accepted=True).exists()
        QrScan.objects.create(
            ticket=ticket,
            at=now,
            user=applicant.user,
            accepted=True,
            ip=ctx.ip,
            user_agent=ctx.user_agent,
        )
        if first:
            event_record(
                stream=qr_stream(str(ticket.pk)),
                type="qr.scanned",
                data={"label": "已扫码"},
                now=now,
            )
    return ticket
