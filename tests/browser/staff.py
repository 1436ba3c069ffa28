"""Staff log in to the admin in the browser as people do: the password, then the second
factor (core/admin_site.py). A member without a bound authenticator binds one on
「绑定两步验证」 from the secret the page shows (as an authenticator app would from its QR
code); one who has a device gives its current code."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from typing import Any

from django_otp.oath import totp


def _device_key(username: str) -> bytes:
    from django_otp.plugins.otp_totp.models import TOTPDevice

    return TOTPDevice.objects.get(user__username=username, confirmed=True).bin_key


def second_factor(tab: Any, username: str, orm: Callable[..., Any] | None = None) -> None:
    """On the second-factor page the password led to, give a current code."""
    tab.wait_for_url(lambda url: "/admin/login/" not in url)
    if "/admin/otp/setup/" in tab.url:
        secret = tab.locator("#otp-secret").inner_text().replace(" ", "")
        key = base64.b32decode(secret)
    elif "/admin/otp/" in tab.url:
        assert orm is not None, "a bound device's key is read from the database"
        key = orm(_device_key, username)
    else:
        return
    tab.fill("#id_code", f"{totp(key):06d}")
    tab.click("input[type=submit]")


def staff_login(
    tab: Any,
    username: str,
    password: str,
    next_url: str,
    orm: Callable[..., Any] | None = None,
    *,
    wait: bool = True,
) -> None:
    tab.goto(f"/admin/login/?next={next_url}")
    tab.fill("#id_username", username)
    tab.fill("#id_password", password)
    tab.click("input[type=submit]")
    second_factor(tab, username, orm)
    if wait:
        tab.wait_for_url(re.compile(re.escape(next_url) + "$"))
