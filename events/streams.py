"""Stream names. A stream is what a client follows and what its seqs count."""

from __future__ import annotations


def round_stream(round_id: int) -> str:
    """Public: unit status changes and phase changes of a round (the broadcast board)."""
    return f"round.{round_id}"


def session_stream(session_id: int) -> str:
    """The families of one session: opened, last 30 s, closed."""
    return f"session.{session_id}"


def family_stream(family_id: int) -> str:
    """One family only: its own result."""
    return f"family.{family_id}"


def qr_stream(ticket_id: str) -> str:
    """One QR ticket: the desktop page hears the phone's progress."""
    return f"qr.{ticket_id}"
