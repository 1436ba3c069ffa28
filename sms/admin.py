from django.contrib import admin

from core.admin import ReadOnlyAdmin
from sms.models import SmsMessage


@admin.register(SmsMessage)
class SmsMessageAdmin(ReadOnlyAdmin):
    """Delivery records only: the text (which may hold a code) is encrypted and never shown."""

    list_display = ("created_at", "phone_masked", "kind", "status", "attempts", "last_error")
    list_filter = ("status", "kind", "provider")
    exclude = ("payload", "phone")
    readonly_fields = ("phone_masked",)

    @admin.display(description="手机号码")
    def phone_masked(self, message):
        return f"{message.phone[:3]}****{message.phone[-4:]}"
