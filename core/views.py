"""Site-wide small views."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponseRedirect
from django.templatetags.static import static
from django.views.decorators.http import require_GET

from core.templatetags.anju_icon import ICON


@require_GET
def favicon(request: HttpRequest) -> HttpResponseRedirect:
    """/favicon.ico, for clients that ask for it by themselves (the pages carry the icon
    inline): a redirect to the static file, whose hashed name is cached for a year. The
    redirect itself is cached for a day, so a new icon reaches everyone within one."""
    response = HttpResponseRedirect(static(ICON))
    response["Cache-Control"] = "public, max-age=86400"
    return response
