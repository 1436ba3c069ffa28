"""`{{ amount_fen|yuan }}`: an amount stored in fen, shown to staff in 元 with two decimals."""

from __future__ import annotations

from django import template

register = template.Library()


def fen_to_yuan(value) -> str:
    if value is None or value == "":
        return "—"
    fen = int(value)
    sign = "-" if fen < 0 else ""
    fen = abs(fen)
    return f"{sign}{fen // 100}.{fen % 100:02d}"


@register.filter
def yuan(value) -> str:
    return fen_to_yuan(value)
