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


class Unavailable(DomainError):
    """Something this request depends on (a provider, a lock) is not available right now:
    nothing was written and a retry shortly may work. The API answers 503 with Retry-After
    in one place (mobile_api.errors); `detail` is for the log, never shown."""

    kind = "unavailable"
    code = "unavailable"
    message = "服务暂时不可用，请稍后再试"

    def __init__(
        self,
        code: str | None = None,
        message: str | None = None,
        *,
        detail: str = "",
        retry_after: int | None = 5,
        **kwargs,
    ) -> None:
        super().__init__(code, message, retry_after=retry_after, **kwargs)
        self.detail = detail
        if detail:
            self.args = (f"{self.code}: {detail}",)


class Throttled(DomainError):
    kind = "throttled"
    code = "throttled"
    message = "操作过于频繁，请稍后再试"
