"""Who did something, from where: carried from the interface layer into services."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RequestContext:
    ip: str = ""
    user_agent: str = ""

    @classmethod
    def from_request(cls, request) -> RequestContext:
        # REMOTE_ADDR is the peer; behind nginx, deploy/ sets it from X-Real-IP (see runbook).
        return cls(
            ip=request.META.get("REMOTE_ADDR", "")[:64],
            user_agent=request.META.get("HTTP_USER_AGENT", "")[:400],
        )
