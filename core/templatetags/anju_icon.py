"""`{% favicon_link %}`: the site's icon (core/static/anju/favicon.svg) written into the page as
a data: URI, for the applicants' pages and the staff admin alike.

Inline, the icon costs no request: a browser asks for a page's icon on every cold load, and
on a slow 4G line that is one more round trip per page (issue 16's request count). The
Content-Security-Policy allows data: images (config/settings.py). Clients that look for
/favicon.ico by themselves are redirected to the same file (core/views.py).
"""

from __future__ import annotations

from functools import cache
from urllib.parse import quote

from django import template
from django.contrib.staticfiles import finders
from django.utils.html import format_html

register = template.Library()

ICON = "anju/favicon.svg"


@cache
def _data_uri() -> str:
    path = finders.find(ICON)
    assert isinstance(path, str), f"{ICON} is not among the static files"
    with open(path, encoding="utf-8") as source:
        svg = " ".join(source.read().split())
    return "data:image/svg+xml," + quote(svg, safe=" /:=")


@register.simple_tag
def favicon_link() -> str:
    return format_html('<link rel="icon" type="image/svg+xml" href="{}">', _data_uri())
