from django.contrib import admin

from core.admin import ReadOnlyAdmin, code_filter
from sms.models import SmsMessage
from sms.providers import provider_label
from sms.texts import kind_label


@admin.register(SmsMessage)
class SmsMessageAdmin(ReadOnlyAdmin):
    """Delivery records only: the text (which may hold a code) is encrypted and never shown."""

    list_display = ("created_at", "phone_masked", "kind_label", "status", "attempts", "last_error")
    list_filter = (
        "status",
        code_filter("kind", "类型", kind_label),
        code_filter("provider", "短信服务商", provider_label),
    )
    fields = (
        "created_at",
        "phone_masked",
        "kind_label",
        "status",
        "attempts",
        "next_attempt_at",
        "claimed_at",
        "sent_at",
        "expires_at",
        "provider_label",
        "provider_message_id",
        "last_error",
    )
    readonly_fields = ("phone_masked", "kind_label", "provider_label")

    @admin.display(description="手机号码")
    def phone_masked(self, message):
        return f"{message.phone[:3]}****{message.phone[-4:]}"

    @admin.display(description="类型", ordering="kind")
    def kind_label(self, message):
        return kind_label(message.kind)

    @admin.display(description="短信服务商")
    def provider_label(self, message):
        return provider_label(message.provider) or "-"
