"""The staff admin's site: a second factor (django-otp's TOTP) and an idle timeout.

Two-factor login. Reviewers and supervisors (and superusers) seal agreements, read personal
data and allocate units, so a password alone does not let them in: after the password the
admin asks for the 6-digit code of an authenticator app (TOTP, RFC 6238, through
django-otp's TOTPDevice, which also throttles wrong codes). Whoever has no confirmed device
yet is sent to 「绑定两步验证」 first, which shows the QR code to scan and takes one code to
confirm it. Operators may bind one (the same page, from 「两步验证」 in the user links); once
bound it is asked for at their every login too. Until the code is given, `has_permission`
is false, so no admin page — the review page among them — answers: every one sends the
member back to the login, which sends them on to the code.

A bound device is replaced only by a member who has given its code in this session (or by
`manage.py staff_otp_reset <username>` for a lost phone): a password alone cannot bind a new
phone over an old one.

Idle timeout. A staff session that made no admin request for ADMIN_IDLE_TIMEOUT_SECONDS
(30 minutes by default) is logged out at its next request, which then goes to the login
with 「已超过 30 分钟未操作……」. The session cookie's own age (SESSION_COOKIE_AGE) still bounds
a busy session.

`AdminSecurityMiddleware` does both for /admin/ requests only: django-otp's middleware
(request.user.is_verified) and the idle clock; every other request passes untouched.
"""

from __future__ import annotations

import base64
import io
import time
from urllib.parse import urlencode

from asgiref.sync import sync_to_async
from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth import logout
from django.contrib.auth.views import redirect_to_login
from django.dispatch import Signal
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.decorators import method_decorator
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django_otp import login as otp_login
from django_otp.middleware import OTPMiddleware

# Roles (accounts/roles.py) whose members must give a second factor.
SECOND_FACTOR_ROLES = ("reviewer", "supervisor")
OK, VERIFY, SETUP = "ok", "verify", "setup"
# Session key: when this staff session last made an admin request (a Unix time).
SEEN_KEY = "anju_admin_seen"
ADMIN_PREFIX = "/admin/"
DEVICE_NAME = "管理后台"
# Sent with user, event ("bound", "failed", "idle_logout", "reset") and ip for the audit trail,
# which accounts owns (accounts/admin.py writes the entry; core imports no domain app).
second_factor_event = Signal()


def _announce(request, user, event: str) -> None:
    second_factor_event.send(
        sender=AnjuAdminSite, user=user, event=event, ip=request.META.get("REMOTE_ADDR", "")
    )


def second_factor_required(user) -> bool:
    if user.is_superuser:
        return True
    return user.groups.filter(name__in=SECOND_FACTOR_ROLES).exists()


def _confirmed_device(user):
    from django_otp.plugins.otp_totp.models import TOTPDevice

    return TOTPDevice.objects.filter(user=user, confirmed=True).order_by("-id").first()


def second_factor_state(request) -> str:
    """OK: may use the admin; VERIFY: must give the code of their bound device; SETUP: must
    bind a device first. Computed once per request."""
    cached = getattr(request, "_anju_second_factor", None)
    if cached is not None:
        return cached
    user = request.user
    if not (user.is_active and user.is_staff):
        state = OK  # the admin's own permission check refuses them
    elif getattr(user, "is_verified", lambda: False)():
        state = OK
    elif _confirmed_device(user) is not None:
        state = VERIFY
    elif second_factor_required(user):
        state = SETUP
    else:
        state = OK
    request._anju_second_factor = state
    return state


def _next_url(request) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return reverse("admin:index")


class CodeForm(forms.Form):
    code = forms.CharField(
        label="验证码",
        min_length=6,
        max_length=6,
        error_messages={
            "required": "请输入验证器显示的 6 位验证码。",
            "min_length": "验证码为 6 位数字。",
            "max_length": "验证码为 6 位数字。",
        },
        widget=forms.TextInput(
            attrs={
                "autocomplete": "one-time-code",
                "inputmode": "numeric",
                "pattern": "[0-9]{6}",
                "autofocus": True,
                "class": "anju-otp__code",
            }
        ),
    )

    def clean_code(self) -> str:
        code = self.cleaned_data["code"].strip()
        if not code.isdigit():
            raise forms.ValidationError("验证码为 6 位数字。")
        return code


def _check_code(request, form: CodeForm, device) -> bool:
    """The device's verdict on the form's code (django-otp throttles repeated failures);
    the form carries the Chinese error when it is no."""
    allowed, _ = device.verify_is_allowed()
    if not allowed:
        form.add_error("code", "错误次数过多，请稍候再试。")
        return False
    if not device.verify_token(form.cleaned_data["code"]):
        form.add_error("code", "验证码不正确或已过期，请重新输入。")
        _announce(request, request.user, "failed")
        return False
    return True


def _qr_data_uri(text: str) -> str:
    import qrcode

    image = qrcode.make(text, box_size=6, border=2)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


class AnjuAdminSite(admin.AdminSite):
    """Django's admin site with the second factor in `has_permission` and the two pages that
    give it."""

    def has_permission(self, request) -> bool:
        return super().has_permission(request) and second_factor_state(request) == OK

    def _second_factor_redirect(self, request, next_url: str) -> HttpResponseRedirect | None:
        user = request.user
        if not (user.is_authenticated and user.is_active and user.is_staff):
            return None
        state = second_factor_state(request)
        if state == OK:
            return None
        name = "admin:otp_verify" if state == VERIFY else "admin:otp_setup"
        return HttpResponseRedirect(f"{reverse(name)}?{urlencode({'next': next_url})}")

    @method_decorator(never_cache)
    def login(self, request, extra_context=None):
        # A staff member whose password is accepted but whose second factor is not yet given
        # comes back here from every admin page: send them on to the code.
        redirect = self._second_factor_redirect(request, _next_url(request))
        if redirect is not None:
            return redirect
        if request.user.is_authenticated and not request.user.is_staff:
            # An applicant's login: Django's note names the account by its username, which is
            # internal (applicant-<pk>); say what it is instead.
            extra_context = {**(extra_context or {}), "username": "申请人账号"}
        return super().login(request, extra_context)

    def get_urls(self):
        return [
            path("otp/", self.otp_verify_view, name="otp_verify"),
            path("otp/setup/", self.otp_setup_view, name="otp_setup"),
            # Django wraps logout in admin_view, which sends a member without permission back
            # to the index: one waiting for the second factor could never log out.
            path("logout/", self.logout),
            *super().get_urls(),
        ]

    def _staff_or_login(self, request) -> HttpResponseRedirect | None:
        user = request.user
        if user.is_authenticated and user.is_active and user.is_staff:
            return None
        return redirect_to_login(request.get_full_path(), reverse("admin:login"))

    def _page(self, request, template: str, context: dict) -> TemplateResponse:
        return TemplateResponse(
            request,
            template,
            {
                **self.each_context(request),
                # No app list before the second factor: it names what the member may open.
                "available_apps": [],
                "is_nav_sidebar_enabled": False,
                "next": _next_url(request),
                **context,
            },
        )

    @method_decorator(never_cache)
    @method_decorator(csrf_protect)
    def otp_verify_view(self, request):
        """「两步验证」: the code of the member's bound device, once per login."""
        refused = self._staff_or_login(request)
        if refused is not None:
            return refused
        if second_factor_state(request) == OK:
            return HttpResponseRedirect(_next_url(request))
        device = _confirmed_device(request.user)
        if device is None:
            return HttpResponseRedirect(
                f"{reverse('admin:otp_setup')}?{urlencode({'next': _next_url(request)})}"
            )
        form = CodeForm(request.POST if request.method == "POST" else None)
        if form.is_valid() and _check_code(request, form, device):
            request.session.cycle_key()  # a new session id for the raised privilege
            otp_login(request, device)
            return HttpResponseRedirect(_next_url(request))
        return self._page(request, "admin/otp_verify.html", {"title": "两步验证", "form": form})

    @method_decorator(never_cache)
    @method_decorator(csrf_protect)
    def otp_setup_view(self, request):
        """「绑定两步验证」: scan the QR code with an authenticator app, give one code."""
        from django_otp.plugins.otp_totp.models import TOTPDevice

        refused = self._staff_or_login(request)
        if refused is not None:
            return refused
        user = request.user
        bound = _confirmed_device(user)
        if bound is not None and not user.is_verified():
            # Replacing a bound phone takes that phone's code first.
            return HttpResponseRedirect(
                f"{reverse('admin:otp_verify')}?{urlencode({'next': request.get_full_path()})}"
            )
        device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by(
            "-id"
        ).first() or TOTPDevice.objects.create(user=user, name=DEVICE_NAME, confirmed=False)
        form = CodeForm(request.POST if request.method == "POST" else None)
        if form.is_valid() and _check_code(request, form, device):
            device.confirmed = True
            device.save(update_fields=["confirmed"])
            TOTPDevice.objects.filter(user=user).exclude(pk=device.pk).delete()
            request.session.cycle_key()
            otp_login(request, device)
            _announce(request, user, "bound")
            messages.success(
                request, "两步验证已绑定。以后每次登录，输入密码后还需输入验证器中的验证码。"
            )
            return HttpResponseRedirect(_next_url(request))
        secret = base64.b32encode(device.bin_key).decode()
        return self._page(
            request,
            "admin/otp_setup.html",
            {
                "title": "绑定两步验证",
                "form": form,
                "qr": _qr_data_uri(device.config_url),
                "secret": " ".join(secret[i : i + 4] for i in range(0, len(secret), 4)),
                "required": second_factor_required(user),
                "replacing": bound is not None,
            },
        )


class AdminSecurityMiddleware(OTPMiddleware):
    """For /admin/ requests only: django-otp's `request.user.is_verified()` and the idle
    timeout. Installed after the session, authentication and messages middleware."""

    def __call__(self, request):
        if self._is_async:
            return self.__acall__(request)
        if not request.path.startswith(ADMIN_PREFIX):
            return self.get_response(request)
        self._install_lazy_accessors(request)
        return self._idle_check(request) or self.get_response(request)

    async def __acall__(self, request):
        if not request.path.startswith(ADMIN_PREFIX):
            return await self.get_response(request)
        self._install_lazy_accessors(request)
        timed_out = await sync_to_async(self._idle_check)(request)
        return timed_out or await self.get_response(request)

    @staticmethod
    def _idle_check(request):
        user = request.user
        if not (user.is_authenticated and user.is_staff):
            return None
        now = time.time()
        seen = request.session.get(SEEN_KEY)
        timeout = settings.ADMIN_IDLE_TIMEOUT_SECONDS
        if seen is not None and now - seen > timeout:
            _announce(request, user, "idle_logout")
            logout(request)
            messages.warning(
                request, f"已超过 {timeout // 60} 分钟未操作，为保护数据已自动退出，请重新登录。"
            )
            return redirect_to_login(request.get_full_path(), reverse("admin:login"))
        request.session[SEEN_KEY] = now
        return None
