from __future__ import annotations

from typing import Protocol


class SmsSendError(Exception):
    """The provider did not accept the message. `retryable` is False for errors that a
    retry cannot fix (a bad number, a missing template); the outbox then stops trying."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class SmsProvider(Protocol):
    name: str

    def send(self, *, phone: str, kind: str, params: list[str], text: str) -> str:
        """Send one message; return the provider's message id or raise SmsSendError."""
        ...
