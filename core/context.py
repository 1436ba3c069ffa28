"""Who did something, from where: carried from the interface layer into services."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RequestContext:
    ip: str = ""
    user_agent: str = ""
    # The phone's signing session (signing/agreements/phone.py) the request came through, if any: a
    # scoped way into one agreement, not a login. Recorded with every step it takes.
    signing_session: int | None = None

    @classmethod
    def from_request(cls, request, *, signing_session: int | None = None) -> RequestContext:
        # REMOTE_ADDR is the peer; behind nginx, deploy/ sets it from X-Real-IP (see runbook).
        return cls(
            ip=request.META.get("REMOTE_ADDR", "")[:64],
            user_agent=request.META.get("HTTP_USER_AGENT", "")[:400],
            signing_session=signing_session,
        )
