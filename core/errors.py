"""Domain errors: a stable code for programs and a Chinese message for the page.

Domain services raise these; the API's one exception handler turns them into
`{"error": {"code", "message", "fields"}}`. `kind` says what sort of refusal it is so the
interface layers can map it (HTTP status, websocket error frame) without a table per code.
"""

from __future__ import annotations

from typing import Literal

Kind = Literal[
    "invalid", "unauthenticated", "forbidden", "not_found", "conflict", "throttled", "unavailable"
]


class DomainError(Exception):
    code: str = "invalid"
    message: str = "请求无效"
    kind: Kind = "invalid"

    def __init__(
        self,
        code: str | None = None,
        message: str | None = None,
        *,
        kind: Kind | None = None,
        fields: dict[str, list[str]] | None = None,
        retry_after: int | None = None,
    ) -> None:
        self.code = code or self.code
        self.message = message or self.message
        self.kind = kind or self.kind
        self.fields = fields or {}
        self.retry_after = retry_after
        super().__init__(f"{self.code}: {self.message}")


class ValidationFailed(DomainError):
    kind = "invalid"


class NotAllowed(DomainError):
    kind = "forbidden"


class Conflict(DomainError):
    kind = "conflict"


class Throttled(DomainError):
    kind = "throttled"
    code = "throttled"
    message = "操作过于频繁，请稍后再试"
