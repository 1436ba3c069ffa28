"""Remove a staff member's two-factor devices (a lost or replaced phone). At their next login
the admin asks them to bind a new one (core/admin_site.py)."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Remove a staff member's two-factor (TOTP) devices so they bind a new one at login."

    def add_arguments(self, parser):
        parser.add_argument("username")

    def handle(self, *args, username: str, **options):
        from django_otp.plugins.otp_totp.models import TOTPDevice

        user = get_user_model().objects.filter(username=username, is_staff=True).first()
        if user is None:
            raise CommandError(f"No staff member {username!r}.")
        from core.admin_site import AnjuAdminSite, second_factor_event

        removed, _ = TOTPDevice.objects.filter(user=user).delete()
        second_factor_event.send(sender=AnjuAdminSite, user=user, event="reset", ip="")
        self.stdout.write(f"Removed {removed} device(s) of {username}.")
