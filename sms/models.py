"""SMS verification codes and the outbox of messages to send."""

from __future__ import annotations

from django.db import models
from django.db.models import Q


class Purpose(models.TextChoices):
    LOGIN = "login", "登录"
    PHONE_CHANGE = "phone_change", "更换手机号码"
    SIGN = "sign", "签约确认"


class SmsCode(models.Model):
    """A 6-digit code, stored as a keyed hash, bound to a purpose, a subject and a phone.

    `subject` is what the requester names (for login a keyed hash of the ID number, for a
    phone change the new number); only the newest code of a (purpose, subject) is live.
    `phone` is empty when the subject is unknown: nothing is sent and nothing can verify,
    but every rule runs the same, so the API never tells whether an ID number is registered.
    """

    purpose = models.CharField(max_length=20, choices=Purpose.choices)
    subject = models.CharField(max_length=100)
    phone = models.CharField(max_length=11, blank=True, db_index=True)
    salt = models.CharField(max_length=32)
    code_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    attempts = models.PositiveSmallIntegerField(default=0)
    used_at = models.DateTimeField(null=True, blank=True)
    ip = models.CharField(max_length=64, blank=True, db_index=True)
    message = models.OneToOneField(
        "SmsMessage", on_delete=models.SET_NULL, null=True, blank=True, related_name="code"
    )

    class Meta:
        verbose_name = "短信验证码"
        verbose_name_plural = "短信验证码"
        indexes = [models.Index(fields=["purpose", "subject", "-created_at"])]
        constraints = [
            models.CheckConstraint(
                condition=Q(expires_at__gt=models.F("created_at")), name="sms_code_expiry_after"
            )
        ]


class SmsMessage(models.Model):
    """Outbox row. Written in the transaction that decides to send, delivered after commit,
    retried with backoff until sent, dead, or expired. The text is kept encrypted only until
    it is sent (it may hold a verification code), then wiped."""

    class Status(models.TextChoices):
        QUEUED = "queued", "待发送"
        SENDING = "sending", "发送中"
        RETRY = "retry", "待重试"
        SENT = "sent", "已发送"
        DEAD = "dead", "发送失败"
        EXPIRED = "expired", "已过期未发送"

    phone = models.CharField(max_length=11, db_index=True)
    kind = models.CharField(max_length=40)
    payload = models.TextField(blank=True)  # Fernet token of {"params": [...]}; "" once final
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    claimed_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    provider = models.CharField(max_length=20, blank=True)
    provider_message_id = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "短信"
        verbose_name_plural = "短信发送记录"
        indexes = [models.Index(fields=["status", "next_attempt_at"])]
        constraints = [
            models.CheckConstraint(
                condition=~Q(status="sent") | Q(sent_at__isnull=False), name="sms_sent_has_time"
            )
        ]


class DevInboxMessage(models.Model):
    """What the console provider 'delivered', for the DEBUG-only /dev/sms/ page."""

    phone = models.CharField(max_length=11)
    text = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
