"""Where to get help (guide 001, 「咨询方式」): the consultation numbers and hours of an
agreement's template, or the site's defaults (settings.SIGNING CONSULT_PHONES and
CONSULT_HOURS) where the template leaves them blank. Every place that says 请拨打咨询电话
(pages through the API's `help`, the abandonment page, the rejection SMS) reads them here."""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.conf import settings

from signing.models import AgreementTemplate

_SEPARATORS = re.compile(r"[、,，;；/\s]+")


@dataclass(frozen=True)
class ConsultHelp:
    phones: tuple[str, ...]
    hours: str

    @property
    def phones_text(self) -> str:
        """「0755-23619344、0755-82559564」"""
        return "、".join(self.phones)

    @property
    def text(self) -> str:
        """「0755-23619344、0755-82559564（工作日 9:00-12:00，14:00-18:00）」"""
        return f"{self.phones_text}（{self.hours}）" if self.hours else self.phones_text

    def as_json(self) -> dict:
        return {
            "phones": list(self.phones),
            "phones_text": self.phones_text,
            "hours": self.hours,
            "text": self.text,
        }


def consult_help(template: AgreementTemplate | None = None) -> ConsultHelp:
    """The template's numbers and hours, each falling back to the site's default when blank."""
    phones = (template.consult_phones if template else "").strip()
    hours = (template.consult_hours if template else "").strip()
    phones = phones or settings.SIGNING["CONSULT_PHONES"]
    hours = hours or settings.SIGNING["CONSULT_HOURS"]
    return ConsultHelp(
        phones=tuple(p for p in _SEPARATORS.split(phones) if p),
        hours=hours.strip(),
    )
