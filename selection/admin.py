"""Staff admin for selection. The round page carries the staff tools (import units and
families, schedule sessions, supplementary sessions, export results) and the session page a
live view; the pages themselves live in selection.admin_views."""

from django.contrib import admin
from django.db.models.functions import Length
from django.urls import path, reverse
from django.utils.html import format_html

from core.admin import HistoryAdmin, ReadOnlyAdmin
from core.admin_ops import STAFF_OPS_FORM, StaffOpsMixin
from selection import (
    admin_ops,  # noqa: F401  (registers the staff operations)
    admin_views,
)
from selection.models import Allocation, Round, Seat, Session, SupplementaryApplication, Unit


class SeatInline(admin.TabularInline):
    """Seats are made by the scheduling service and settled by the close: shown, never
    edited here."""

    model = Seat
    fields = ("family", "entered_at", "result")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("family__main_applicant", "session")

    @admin.display(description="结果")
    def result(self, seat: Seat) -> str:
        return seat.outcome_label

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Round)
class RoundAdmin(HistoryAdmin):
    list_display = ("name", "preselect_starts_at", "cart_limit", "window_seconds")
    readonly_fields = ("preselect_announced_at", "created_at")

    def get_urls(self):
        wrap = self.admin_site.admin_view

        def tool(route: str, view, name: str, **kwargs):
            def page(request, object_id):
                return view(self, request, object_id, **kwargs)

            return path(f"<path:object_id>/{route}/", wrap(page), name=f"selection_round_{name}")

        return [
            tool("import-units", admin_views.import_view, "import_units", kind="units"),
            tool("import-families", admin_views.import_view, "import_families", kind="families"),
            tool("schedule", admin_views.schedule_view, "schedule"),
            tool("supplementary", admin_views.supplementary_view, "supplementary"),
            tool("export", admin_views.export_view, "export"),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {**(extra_context or {}), "round_tools": admin_views.round_tools(request)}
        return super().change_view(request, object_id, form_url, extra_context)


@admin.register(Session)
class SessionAdmin(StaffOpsMixin, HistoryAdmin):
    # (admin/selection/session/change_form.html: the live view link and the operations)
    list_display = ("__str__", "kind", "starts_at", "ends_at", "status", "live_link")
    list_filter = ("round", "kind", "status")
    inlines = [SeatInline]
    # Times and status belong to the scheduling services and the session clock: a session is
    # made by the round's scheduling tools and changed only through them.
    readonly_fields = (
        "round",
        "order",
        "kind",
        "starts_at",
        "ends_at",
        "status",
        "opened_at",
        "last_call_at",
        "closed_at",
    )

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False  # nothing on a session is edited here: a view page, no save button

    def get_urls(self):
        def live(request, object_id):
            return admin_views.session_live_view(self, request, object_id)

        return [
            path(
                "<path:object_id>/live/",
                self.admin_site.admin_view(live),
                name="selection_session_live",
            ),
            *super().get_urls(),
        ]

    @admin.display(description="实时监控")
    def live_link(self, session):
        url = reverse("admin:selection_session_live", args=[session.pk])
        return format_html('<a href="{}">实时监控</a>', url)


@admin.register(Unit)
class UnitAdmin(StaffOpsMixin, HistoryAdmin):
    change_form_template = STAFF_OPS_FORM
    list_display = ("__str__", "floor", "layout", "orientation", "area", "monthly_rent", "status")
    list_filter = ("round", "building", "layout", "orientation", "status")
    search_fields = ("building", "number")
    # As a family reads a building: 2栋 before 10栋, 201 before 1001 (the columns are text).
    ordering = ("round", Length("building"), "building", "floor", Length("number"), "number")

    def has_add_permission(self, request):
        return False  # units come from the import tool on the round page

    def has_change_permission(self, request, obj=None):
        # A view page: 可选/已选/已撤回 follows the allocations and the withdraw/restore
        # operations; the rest comes from the import (rent and area are in agreements).
        return False


@admin.register(Allocation)
class AllocationAdmin(ReadOnlyAdmin):
    """选房结果: written only by the selection services, with its ledger entry."""

    list_display = ("ledger_entry", "round", "family", "unit", "session", "how_label", "at")
    list_filter = ("round", "how")
    # How it was decided in its session's word (家庭确认补选 in a 补选 session), not the stored
    # choice's label, which names 正选 for both.
    exclude = ("how",)
    readonly_fields = ("how_label",)
    search_fields = ("=family__rank", "unit__building", "unit__number")
    list_select_related = (
        "ledger_entry",
        "round",
        "family__main_applicant",
        "unit",
        "session__round",
    )

    @admin.display(description="确定方式", ordering="how")
    def how_label(self, allocation: Allocation) -> str:
        return allocation.how_label


@admin.register(SupplementaryApplication)
class SupplementaryApplicationAdmin(ReadOnlyAdmin):
    list_display = ("round", "family", "applied_at", "session")
    list_filter = ("round",)
    search_fields = ("=family__rank",)
    list_select_related = ("round", "family__main_applicant", "session__round")
