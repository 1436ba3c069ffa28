"""The privacy notice that accounts' login gate asks for (accounts/privacy.py) is the consent
text of kind "privacy": its newest version, loaded here and registered when the app starts;
saving a consent text reloads it in this process at once."""

from __future__ import annotations

import hashlib

from django.db.models.signals import post_delete, post_save

from accounts.privacy import (
    Notice,
    privacy_forget,
    privacy_notice_source,
    privacy_reload,
)
from signing.models import ConsentKind, ConsentText


def privacy_notice_load() -> Notice | None:
    text = ConsentText.objects.filter(kind=ConsentKind.PRIVACY).order_by("-version").first()
    if text is None:
        return None
    return Notice(
        version=text.version,
        title=text.title,
        body=text.body,
        sha256=hashlib.sha256(text.body.encode()).hexdigest(),
    )


def connect() -> None:
    privacy_notice_source(privacy_notice_load)
    post_save.connect(privacy_reload, sender=ConsentText, dispatch_uid="privacy_reload_save")
    post_delete.connect(privacy_forget, sender=ConsentText, dispatch_uid="privacy_forget_delete")
