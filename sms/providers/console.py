from __future__ import annotations

import logging
import uuid

from sms.models import DevInboxMessage

logger = logging.getLogger("anju.sms")


class ConsoleProvider:
    """Development provider: logs the message and keeps it for the DEBUG-only /dev/sms/ page."""

    name = "console"

    def send(self, *, phone: str, kind: str, params: list[str], text: str) -> str:
        logger.info("SMS to %s: %s", phone, text)
        DevInboxMessage.objects.create(phone=phone, text=text)
        return f"console-{uuid.uuid4().hex[:16]}"
