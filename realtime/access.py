"""Who may follow which stream. Used by the sockets and by the HTTP catch-up endpoint, so
both answer the same way."""

from __future__ import annotations

from django.core import signing

from accounts.models import Applicant
from selection.models import Round, Seat

QR_SALT = "anju.realtime.qr"
QR_TOKEN_SECONDS = 4 * 24 * 3600  # a desktop page may stay open through a signing window


def applicant_for(user) -> Applicant | None:
    if user is None or not user.is_authenticated:
        return None
    return Applicant.objects.select_related("family").filter(user=user).first()


def qr_stream_token(*, ticket_id: str) -> str:
    """Handed to the desktop page that shows a QR code: lets it follow the ticket's progress
    stream (step names only, no personal data) until the token expires. Not bound to the
    desktop's login on purpose: the applicant logs in on the phone to scan, which ends the
    desktop's session (one active device per family), and the desktop must keep hearing the
    phone's progress all the same."""
    return signing.dumps({"t": ticket_id}, salt=QR_SALT)


def qr_ticket_from_token(token: str) -> str | None:
    try:
        data = signing.loads(token, salt=QR_SALT, max_age=QR_TOKEN_SECONDS)
    except signing.BadSignature:
        return None
    return data.get("t") if isinstance(data, dict) else None


def family_streams(*, family, round_id: int) -> list[str] | None:
    """The streams a family's selection socket follows in a round, or None when the family
    has no seat in it."""
    from events.streams import family_stream, round_stream, session_stream

    session_ids = list(
        Seat.objects.filter(family=family, session__round_id=round_id).values_list(
            "session_id", flat=True
        )
    )
    if not session_ids:
        return None
    return [
        round_stream(round_id),
        family_stream(family.pk),
        *(session_stream(s) for s in session_ids),
    ]


def may_read(*, stream: str, user, session_key: str | None, token: str = "") -> bool:
    """round.* is public (if the round exists); session.* its families; family.* that family;
    qr.* whoever holds its progress token (the desktop page that showed the code)."""
    kind, _, ident = stream.partition(".")
    if kind == "round":
        return ident.isdigit() and Round.objects.filter(pk=int(ident)).exists()
    if kind == "qr":
        return qr_ticket_from_token(token) == ident
    applicant = applicant_for(user)
    if applicant is None or not ident.isdigit() or not hasattr(applicant, "family"):
        return False
    if kind == "family":
        return applicant.family.pk == int(ident)
    if kind == "session":
        return Seat.objects.filter(session_id=int(ident), family=applicant.family).exists()
    return False
