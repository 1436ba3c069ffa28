"""`{{ value|datetime_zh }}`: core/fmt.py's one time format in templates."""

from __future__ import annotations

from django import template

from core import fmt

register = template.Library()


@register.filter
def datetime_zh(value) -> str:
    return fmt.datetime_zh(value) if value else ""
