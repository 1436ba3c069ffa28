from django.apps import AppConfig
from django.db.models.signals import post_migrate


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "家庭与账号"

    def ready(self) -> None:
        from accounts.roles import roles_sync
        from accounts.signals import audit_admin_change
        from core.admin import admin_change

        post_migrate.connect(roles_sync, sender=self, dispatch_uid="anju.roles_sync")
        admin_change.connect(audit_admin_change, dispatch_uid="anju.audit_admin_change")
