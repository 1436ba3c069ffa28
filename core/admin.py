"""Admin base classes every app's admin builds on. They import no domain app: a staff change
made through the admin is announced with the `admin_change` signal, and the accounts app
(which owns the audit trail) writes the audit entry for it.

- ReadOnlyAdmin: a list and view pages, no add, change or delete.
- AuditedModelAdmin: every add, change and delete goes to the audit trail.
- HistoryAdmin: an audited admin whose 「历史」 page lists every saved change field by field
  (django-simple-history), read-only.
- code_filter: a list filter over a field that stores codes (an SMS's kind, an audit action),
  offering the codes present by their Chinese labels.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.dispatch import Signal
from django.utils import timezone
from simple_history.admin import SimpleHistoryAdmin
from simple_history.models import DeletedObject
from simple_history.template_utils import HistoricalRecordContextHelper

# Sent for every admin add / change / delete with request, obj, action ("add", "change",
# "delete") and detail (a dict). accounts.signals writes it to the audit trail.
admin_change = Signal()


def code_filter(field: str, title: str, label: Callable[[str], str]) -> type:
    """A list filter on `field` whose choices are the codes present, shown as `label(code)`
    and sorted by it (Django's own filter on a field without choices shows the codes)."""

    class CodeFilter(admin.SimpleListFilter):
        parameter_name = field

        def lookups(self, request, model_admin):
            codes = model_admin.model.objects.order_by().values_list(field, flat=True).distinct()
            return sorted(((code, label(code)) for code in codes if code), key=lambda x: x[1])

        def queryset(self, request, queryset):
            return queryset.filter(**{field: self.value()}) if self.value() else queryset

    CodeFilter.title = title
    return CodeFilter


def as_text(field: str, description: str) -> Callable[[Any, Any], str]:
    """A read-only foreign key shown as text, for a change form's `fields`. Django links a
    read-only foreign key to the related object's page whatever the viewer may open, so a
    role without the rights (the 账号 pages are a superuser's) was offered a link that
    answered 403 (tests/core/test_admin_crawl.py checks every offered link)."""

    @admin.display(description=description)
    def shown(self, obj) -> str:
        related = getattr(obj, field)
        return str(related) if related is not None else "—"

    return shown


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class AuditedModelAdmin(admin.ModelAdmin):
    """Every add, change and delete through the admin also lands in the audit trail, with the
    staff member, the object and the changed fields."""

    def _announce(self, request, obj, action: str, detail: dict) -> None:
        admin_change.send(sender=type(self), request=request, obj=obj, action=action, detail=detail)

    def log_addition(self, request, obj, message):
        self._announce(request, obj, "add", {"message": message})
        return super().log_addition(request, obj, message)

    def log_change(self, request, obj, message):
        self._announce(request, obj, "change", {"message": message})
        return super().log_change(request, obj, message)

    def log_deletions(self, request, queryset):
        for obj in queryset:
            self._announce(request, obj, "delete", {})
        return super().log_deletions(request, queryset)


class ChineseHistoryHelper(HistoricalRecordContextHelper):
    """History values as staff read them: choice labels (已选, not taken), list values through
    the admin's `history_value_labels`, times in Beijing time, an empty link as the admin's
    "-" (django-simple-history names an empty or a deleted link "Deleted <model> (pk=…)",
    untranslated)."""

    def __init__(self, model, record, value_labels: dict[str, dict[str, str]]):
        super().__init__(model, record)
        self.value_labels = value_labels

    def prepare_delta_change_value(self, change, value):
        if isinstance(value, DeletedObject):
            if value.pk is None:
                return "-"
            return f"已删除的{value.model._meta.verbose_name}（编号 {value.pk}）"
        if value is None:
            return "-"
        field = self.model._meta.get_field(change.field)
        labels = self.value_labels.get(change.field)
        if labels is not None and isinstance(value, list):
            return "、".join(labels.get(code, code) for code in value)
        if field.choices and not isinstance(value, list):
            return dict(field.flatchoices).get(value, value)
        if hasattr(value, "tzinfo") and value.tzinfo is not None:
            return timezone.localtime(value).strftime("%Y-%m-%d %H:%M:%S")
        return super().prepare_delta_change_value(change, value)


class HistoryAdmin(AuditedModelAdmin, SimpleHistoryAdmin):
    """An audited admin whose 「历史记录」 page lists every saved change of the object field by
    field (django-simple-history), with who made it and why. Read-only: reverting is off
    (SIMPLE_HISTORY_REVERT_DISABLED) because service-owned fields change only through the
    services."""

    object_history_list_template = "admin/field_history.html"
    # field name -> {stored code: label} for list-valued fields (e.g. a family's layouts)
    history_value_labels: ClassVar[dict[str, dict[str, str]]] = {}

    def get_historical_record_context_helper(self, request, historical_record: Any):
        return ChineseHistoryHelper(self.model, historical_record, self.history_value_labels)

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        raise PermissionDenied  # the per-version form is a revert page: not offered
