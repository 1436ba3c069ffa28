"""Staff admin for families and accounts, with every staff change written to the audit trail."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.dispatch import receiver

from accounts.models import Applicant, AuditEntry, DeviceSession, Family, User
from accounts.services import audit_record


class AuditedModelAdmin(admin.ModelAdmin):
    """Every add, change and delete through the admin also lands in AuditEntry, with the
    staff member, the object and the changed fields."""

    def _audit(self, request, obj, action: str, detail: dict) -> None:
        audit_record(
            actor=request.user,
            action=f"admin.{obj._meta.model_name}.{action}",
            target=f"{obj._meta.label}:{obj.pk} {obj}",
            detail=detail,
            ip=request.META.get("REMOTE_ADDR", ""),
        )

    def log_addition(self, request, obj, message):
        self._audit(request, obj, "add", {"message": message})
        return super().log_addition(request, obj, message)

    def log_change(self, request, obj, message):
        self._audit(request, obj, "change", {"message": message})
        return super().log_change(request, obj, message)

    def log_deletions(self, request, queryset):
        for obj in queryset:
            self._audit(request, obj, "delete", {})
        return super().log_deletions(request, queryset)


def permission_denied(request, exception=None):
    """handler403: inside the admin a staff member refused by their role sees a Chinese page
    in the admin's look; elsewhere Django's default answer stands."""
    from django.template.response import TemplateResponse
    from django.views.defaults import permission_denied as default_permission_denied

    user = getattr(request, "user", None)
    if request.path.startswith("/admin/") and user is not None and user.is_staff:
        from accounts.roles import ROLE_LABELS

        groups = set(user.groups.values_list("name", flat=True))
        role_label = "、".join(label for role, label in ROLE_LABELS.items() if role in groups)
        response = TemplateResponse(
            request,
            "admin/forbidden.html",
            {
                **admin.site.each_context(request),
                "title": "无权访问",
                "role_label": role_label,
            },
            status=403,
        )
        return response.render()
    return default_permission_denied(request, exception)


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@receiver(user_logged_in, dispatch_uid="anju.audit_staff_login")
def _audit_staff_login(sender, request, user, **kwargs):
    if user.is_staff:
        audit_record(actor=user, action="staff.login", ip=request.META.get("REMOTE_ADDR", ""))


@receiver(user_login_failed, dispatch_uid="anju.audit_staff_login_failed")
def _audit_staff_login_failed(sender, credentials, request=None, **kwargs):
    audit_record(
        actor=None,
        action="staff.login_failed",
        target=str(credentials.get("username", ""))[:150],
        ip=request.META.get("REMOTE_ADDR", "") if request else "",
    )


@admin.register(User)
class UserAdmin(AuditedModelAdmin, BaseUserAdmin):
    list_display = ("username", "is_staff", "is_active", "last_login")
    list_filter = ("is_staff", "is_active", "groups")


@admin.register(Applicant)
class ApplicantAdmin(AuditedModelAdmin):
    list_display = ("real_name", "id_number_masked", "mobile_masked", "created_at")
    search_fields = ("real_name", "=id_number", "=mobile")
    readonly_fields = ("user", "created_at")


@admin.register(Family)
class FamilyAdmin(AuditedModelAdmin):
    list_display = ("rank", "applicant_name", "household_size", "layouts")
    search_fields = ("=rank", "main_applicant__real_name", "=main_applicant__id_number")
    list_select_related = ("main_applicant",)
    raw_id_fields = ("main_applicant",)

    @admin.display(description="主申请人", ordering="main_applicant__real_name")
    def applicant_name(self, family):
        return family.main_applicant.real_name

    @admin.display(description="可选户型")
    def layouts(self, family):
        return "、".join(family.eligible_layout_labels)


@admin.register(DeviceSession)
class DeviceSessionAdmin(ReadOnlyAdmin):
    list_display = ("user", "provider", "ip", "created_at", "ended_at", "end_reason")
    list_filter = ("provider", "end_reason")
    exclude = ("session_key",)


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    list_display = ("at", "actor", "action", "target", "ip")
    list_filter = ("action",)
    search_fields = ("target", "actor__username")
    date_hierarchy = "at"
