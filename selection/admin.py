from django.contrib import admin

from accounts.admin import AuditedModelAdmin
from selection.models import Round, Seat, Session, Unit


class SeatInline(admin.TabularInline):
    model = Seat
    raw_id_fields = ("family",)
    extra = 0


@admin.register(Round)
class RoundAdmin(AuditedModelAdmin):
    list_display = ("name", "preselect_starts_at", "cart_limit", "window_seconds")


@admin.register(Session)
class SessionAdmin(AuditedModelAdmin):
    list_display = ("__str__", "kind", "starts_at", "ends_at", "status")
    list_filter = ("round", "kind", "status")
    inlines = [SeatInline]


@admin.register(Unit)
class UnitAdmin(AuditedModelAdmin):
    list_display = ("__str__", "floor", "layout", "orientation", "area", "monthly_rent", "status")
    list_filter = ("round", "building", "layout", "orientation", "status")
    search_fields = ("building", "number")
