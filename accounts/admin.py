"""Staff admin for families and accounts, with every staff change written to the audit trail."""

from __future__ import annotations

import json
import re

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.forms import AdminPasswordChangeForm, SetUnusablePasswordMixin
from django.contrib.auth.models import Group, Permission
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.dispatch import receiver
from django.utils.html import format_html

from accounts.identity import provider_label
from accounts.models import Applicant, AuditEntry, DeviceSession, Family, Layout, Role, User
from accounts.roles import ROLE_LABELS
from accounts.services import audit_record
from core.admin import AuditedModelAdmin, HistoryAdmin, ReadOnlyAdmin, as_text, code_filter
from core.admin_ops import STAFF_OPS_FORM, StaffOpsMixin
from core.admin_site import second_factor_event


def permission_denied(request, exception=None):
    """handler403: inside the admin a staff member refused by their role sees a Chinese page
    in the admin's look; elsewhere Django's default answer stands."""
    from django.template.response import TemplateResponse
    from django.views.defaults import permission_denied as default_permission_denied

    user = getattr(request, "user", None)
    if request.path.startswith("/admin/") and user is not None and user.is_staff:
        groups = set(user.groups.values_list("name", flat=True))
        role_label = "、".join(label for role, label in ROLE_LABELS.items() if role in groups)
        response = TemplateResponse(
            request,
            "admin/forbidden.html",
            {
                **admin.site.each_context(request),
                "title": "无权访问此页面",
                "role_label": role_label,
            },
            status=403,
        )
        return response.render()
    return default_permission_denied(request, exception)


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


@receiver(second_factor_event, dispatch_uid="anju.audit_second_factor")
def _audit_second_factor(sender, user, event, ip="", **kwargs):
    """The staff admin's second factor and idle timeout (core/admin_site.py)."""
    if event == "bound":
        audit_record(actor=user, action="staff.otp_bound", ip=ip)
    elif event == "failed":
        audit_record(actor=user, action="staff.otp_failed", ip=ip)
    elif event == "idle_logout":
        audit_record(actor=user, action="staff.idle_logout", ip=ip)
    elif event == "reset":
        audit_record(actor=None, action="staff.otp_reset", target=user.username, ip=ip)


def role_label(name: str) -> str:
    """A staff role group by its Chinese name (the group's name is the role's code)."""
    return ROLE_LABELS.get(name, name)


# The apps whose permissions a staff member can be given one by one (the others' are the
# framework's: sessions, content types, authenticator devices).
STAFF_PERMISSION_APPS = ("accounts", "selection", "signing", "sms", "events")


_PERMISSION_VERBS = {"add": "新增", "change": "修改", "delete": "删除", "view": "查看"}


def permission_label(permission: Permission) -> str:
    """A permission as staff read it: Django stores "Can add <model>" in English."""
    model = permission.content_type.model_class()
    verb, _, model_name = permission.codename.partition("_")
    if model is not None and verb in _PERMISSION_VERBS and model_name == model._meta.model_name:
        app = model._meta.app_config.verbose_name
        return f"{app} · {_PERMISSION_VERBS[verb]}{model._meta.verbose_name}"
    return permission.name


class RolesAndPermissionsInChinese:
    """The user page's pickers list roles and permissions by their Chinese names."""

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        field = super().formfield_for_manytomany(db_field, request, **kwargs)
        if db_field.name == "groups":
            field.label_from_instance = lambda group: role_label(group.name)
        elif db_field.name == "user_permissions":
            field.queryset = field.queryset.filter(
                content_type__app_label__in=STAFF_PERMISSION_APPS
            ).select_related("content_type")
            field.label_from_instance = permission_label
        return field


class ChinesePasswordChangeForm(AdminPasswordChangeForm):
    # Django appends this warning to the help text untranslated (a literal, not a message).
    usable_password_help_text = SetUnusablePasswordMixin.usable_password_help_text + (
        '<ul id="id_unusable_warning" class="messagelist"><li class="warning">'
        "如果禁用，该用户现有的密码将被清除。</li></ul>"
    )


@admin.register(User)
class UserAdmin(RolesAndPermissionsInChinese, AuditedModelAdmin, BaseUserAdmin):
    list_display = ("username", "is_staff", "is_active", "last_login")
    list_filter = ("is_staff", "is_active", code_filter("groups__name", "角色", role_label))
    change_password_form = ChinesePasswordChangeForm


admin.site.unregister(Group)


@admin.register(Role)
class RoleAdmin(ReadOnlyAdmin):
    """The staff roles. Each role's permissions are set from accounts/roles.py after every
    migrate, so they are shown here, not edited: an edit would be undone at the next deploy,
    and deleting a role would take it from its staff until then. Staff are given a role on
    their user page."""

    list_display = ("__str__", "permission_count")
    fields = ("permission_list",)
    readonly_fields = fields

    @admin.display(description="权限数")
    def permission_count(self, role):
        return role.permissions.count()

    @admin.display(description="权限")
    def permission_list(self, role):
        permissions = role.permissions.select_related("content_type")
        return "；".join(sorted(permission_label(p) for p in permissions)) or "-"


class IdNumberSearchMixin:
    """Admin search by a whole ID number: the term, if it is one, is matched through the
    encrypted field's keyed hash (an exact lookup), besides the other search fields."""

    id_number_path = ""

    def get_search_results(self, request, queryset, search_term):
        from accounts.validators import id_number_clean
        from core.errors import ValidationFailed

        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        try:
            number = id_number_clean(search_term)
        except ValidationFailed:
            return results, may_have_duplicates
        return results | queryset.filter(**{self.id_number_path: number}), may_have_duplicates


@admin.register(Applicant)
class ApplicantAdmin(IdNumberSearchMixin, StaffOpsMixin, HistoryAdmin):
    change_form_template = STAFF_OPS_FORM
    list_display = ("real_name", "id_number_shown", "mobile_shown", "created_at")
    # The ID number is searched through its keyed hash (IdNumberSearchMixin), never as text.
    search_fields = ("real_name", "=mobile")
    id_number_path = "id_number"
    # The ID number keys the family import; the mobile changes only through the SMS-proved
    # flow or the staff operation (audited, both numbers told). Never a plain form field.
    # Shown masked, like everywhere; the encrypted column is never a form field.
    readonly_fields = ("id_number_shown", "mobile", "user_shown", "created_at")
    exclude = ("id_number_encrypted", "id_number", "user")
    user_shown = as_text("user", "登录账号")

    def has_add_permission(self, request):
        return False  # applicants come with their family from the import tool

    @admin.display(description="身份证号码")
    def id_number_shown(self, applicant):
        return applicant.id_number_masked

    @admin.display(description="登记手机号码")
    def mobile_shown(self, applicant):
        return applicant.mobile_masked


@admin.register(Family)
class FamilyAdmin(IdNumberSearchMixin, StaffOpsMixin, HistoryAdmin):
    change_form_template = STAFF_OPS_FORM
    history_value_labels = {"eligible_layouts": dict(Layout.choices)}
    list_display = ("rank", "applicant_name", "household_size", "layouts")
    search_fields = ("=rank", "main_applicant__real_name")
    id_number_path = "main_applicant__id_number"
    list_select_related = ("main_applicant",)
    # Rank and layouts belong to the importer and the staff operation that refuses them once
    # a family is seated; the main applicant is fixed by the import.
    fields = ("rank", "household_size", "layouts", "main_applicant", "created_at")
    readonly_fields = ("rank", "layouts", "main_applicant", "created_at")

    def has_add_permission(self, request):
        return False  # families come from the import tool on the round page

    @admin.display(description="主申请人", ordering="main_applicant__real_name")
    def applicant_name(self, family):
        return family.main_applicant.real_name

    @admin.display(description="可选户型")
    def layouts(self, family):
        return "、".join(family.eligible_layout_labels)


@admin.register(DeviceSession)
class DeviceSessionAdmin(ReadOnlyAdmin):
    list_display = ("user", "provider_label", "ip", "created_at", "ended_at", "end_reason")
    list_filter = (code_filter("provider", "登录方式", provider_label), "end_reason")
    fields = (
        "user_shown",
        "provider_label",
        "ip",
        "user_agent",
        "created_at",
        "ended_at",
        "end_reason",
    )
    readonly_fields = ("user_shown", "provider_label")
    user_shown = as_text("user", "用户")

    @admin.display(description="登录方式", ordering="provider")
    def provider_label(self, device):
        return provider_label(device.provider)


# Audit action codes as staff read them. A code missing here is shown as the code itself
# (admin.<model>.<add|change|delete> codes are composed from the model's Chinese name).
AUDIT_ACTION_LABELS = {
    "staff.login": "工作人员登录",
    "staff.login_failed": "工作人员登录失败",
    "staff.otp_bound": "绑定两步验证",
    "staff.otp_failed": "两步验证码错误",
    "staff.otp_reset": "重置工作人员两步验证",
    "staff.idle_logout": "超时未操作自动退出",
    "applicant.mobile_changed": "申请人更换手机号码",
    "applicant.mobile_changed_by_staff": "工作人员更换申请人手机号码",
    "applicant.personal_data_downloaded": "申请人下载本人个人信息",
    "accounts.family_rank_change": "修改家庭排位号",
    "accounts.family_layouts_change": "修改家庭可选户型",
    "selection.unit_withdraw": "撤回房源",
    "selection.unit_restore": "恢复房源",
    "selection.session_reschedule": "场次改期",
    "selection.allocation_by_staff": "工作人员分配房源",
    "selection.units_import": "导入房源",
    "selection.families_import": "导入家庭名单",
    "selection.sessions_schedule": "安排正选场次",
    "selection.supplementary_schedule": "安排补选场次",
    "selection.results_export": "导出选房结果",
    "selection.session_live_view": "查看场次实时监控",
    "signing.template_revised": "发布协议模板新版本",
    "signing.agreements_create": "批量创建协议",
    "signing.document_view": "查看/下载协议PDF",
    "signing.evidence_package_download": "下载签约证据包",
    "signing.card_photo_view": "查看银行卡照片",
    "signing.agreement_approve": "审核通过并盖章",
    "signing.agreement_reject": "退回重签",
    "signing.agreement_abandon_on_behalf": "代申请人提交放弃签约声明",
}
_ADMIN_VERBS = {"add": "新增", "change": "修改", "delete": "删除"}


def audit_action_label(code: str) -> str:
    if code in AUDIT_ACTION_LABELS:
        return AUDIT_ACTION_LABELS[code]
    parts = code.split(".")
    if len(parts) == 3 and parts[0] == "admin" and parts[2] in _ADMIN_VERBS:
        from django.apps import apps

        for model in apps.get_models():
            if model._meta.model_name == parts[1]:
                return f"后台{_ADMIN_VERBS[parts[2]]}{model._meta.verbose_name}"
    return code


def audit_target_label(target: str) -> str:
    """The object of an entry as staff read it. Stored as `<app>.<Model>:<pk> <name>` (or
    `applicant:<pk>`), a reference to search by; shown with the model's Chinese name."""
    from django.apps import apps

    match = re.fullmatch(r"(?:(\w+)\.(\w+)|(applicant)):(\d+)(?: (.*))?", target, re.S)
    if match is None:
        return target
    app, model_name, applicant, pk, name = match.groups()
    try:
        model = (
            apps.get_model("accounts", "Applicant")
            if applicant
            else apps.get_model(app, model_name)
        )
    except LookupError:
        return target
    return f"{model._meta.verbose_name} #{pk}" + (f" {name}" if name else "")


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    list_display = ("at", "actor", "action_label", "target_label", "ip")
    list_filter = (code_filter("action", "操作", audit_action_label),)
    search_fields = ("target", "actor__username")
    date_hierarchy = "at"
    fields = ("at", "actor_shown", "action_label", "target_label", "detail_shown", "ip")
    readonly_fields = ("actor_shown", "action_label", "target_label", "detail_shown")
    actor_shown = as_text("actor", "操作人")

    @admin.display(description="操作", ordering="action")
    def action_label(self, entry):
        return audit_action_label(entry.action)

    @admin.display(description="对象", ordering="target")
    def target_label(self, entry):
        return audit_target_label(entry.target)

    @admin.display(description="详情")
    def detail_shown(self, entry):
        """As recorded (field names, reasons, counts), set as code."""
        if not entry.detail:
            return "-"
        return format_html("<code>{}</code>", json.dumps(entry.detail, ensure_ascii=False))
