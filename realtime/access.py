"""Who may follow which stream. Used by the sockets and by the HTTP catch-up endpoint, so
both answer the same way."""

from __future__ import annotations

from datetime import datetime

from django.core import signing
from django.utils import timezone

from accounts.models import Applicant
from selection.models import Round, Seat

QR_SALT = "anju.realtime.qr"


def applicant_for(user) -> Applicant | None:
    if user is None or not user.is_authenticated:
        return None
    return Applicant.objects.select_related("family").filter(user=user).first()


def qr_stream_token(*, ticket_id: str, expires_at: datetime) -> str:
    """Handed to the desktop page that shows a QR code: lets it follow that ticket's progress
    stream (step names only, no personal data) until the ticket expires, and no longer. Not
    bound to the desktop's login: the page keeps hearing the phone whatever happens to its own
    session (a phone's signing session is not a login, so normally nothing does)."""
    return signing.dumps({"t": ticket_id, "e": int(expires_at.timestamp())}, salt=QR_SALT)


def qr_token_read(token: str, *, now: datetime | None = None) -> tuple[str, float] | None:
    """(ticket id, seconds left) for a live progress token; None for a forged, malformed or
    expired one."""
    try:
        data = signing.loads(token, salt=QR_SALT)
    except signing.BadSignature:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("e"), int):
        return None
    left = data["e"] - (now or timezone.now()).timestamp()
    ticket = data.get("t")
    return (ticket, left) if left > 0 and isinstance(ticket, str) else None


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


def round_head(round_id: int) -> int | None:
    """The public round stream's head (0 before its first event), or None when the round does
    not exist: one query, which is all a board socket's connect reads. Written as SQL: a crowd
    opening the board at once queues on the server's one database thread, and building the
    same query through the ORM cost more there than running it (docs/BENCHMARKS.md)."""
    from django.db import connection

    from events.models import Stream
    from events.streams import round_stream

    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT COALESCE((SELECT last_seq FROM {Stream._meta.db_table} WHERE name = %s), 0)"
            f" FROM {Round._meta.db_table} WHERE id = %s",
            [round_stream(round_id), round_id],
        )
        row = cursor.fetchone()
    return None if row is None else row[0]


def may_read(*, stream: str, user, session_key: str | None, token: str = "") -> bool:
    """round.* is public (if the round exists); session.* its families; family.* that family;
    qr.* whoever holds its progress token (the desktop page that showed the code)."""
    kind, _, ident = stream.partition(".")
    if kind == "round":
        return ident.isdigit() and Round.objects.filter(pk=int(ident)).exists()
    if kind == "qr":
        found = qr_token_read(token)
        return found is not None and found[0] == ident
    applicant = applicant_for(user)
    if applicant is None or not ident.isdigit() or not hasattr(applicant, "family"):
        return False
    if kind == "family":
        return applicant.family.pk == int(ident)
    if kind == "session":
        return Seat.objects.filter(session_id=int(ident), family=applicant.family).exists()
    return False
