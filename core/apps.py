from django.apps import AppConfig
from django.contrib.admin.apps import AdminConfig


class CoreConfig(AppConfig):
    """The shared pieces as an app only for what Django finds through apps: the production
    guard's system checks (core/checks.py) and the staff admin's own templates (core/templates)."""

    name = "core"
    label = "anju_core"
    verbose_name = "安居"

    def ready(self) -> None:
        from core import checks  # noqa: F401 (registers the deploy checks)


class AnjuAdminConfig(AdminConfig):
    """Django's admin app with the staff site of core/admin_site.py (second factor, the two
    pages that give it). django-otp's own TOTP device admin is taken out: it is in English and
    shows the keys; a lost phone is reset with `manage.py staff_otp_reset`."""

    default_site = "core.admin_site.AnjuAdminSite"

    def ready(self) -> None:
        super().ready()
        from django.contrib import admin
        from django_otp.plugins.otp_totp.models import TOTPDevice

        if admin.site.is_registered(TOTPDevice):
            admin.site.unregister(TOTPDevice)
