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

    purpose = models.CharField(max_length=20, choices=Purpose.choices, verbose_name="用途")
    subject = models.CharField(max_length=100, verbose_name="对象")
    phone = models.CharField(max_length=11, blank=True, db_index=True, verbose_name="手机号码")
    salt = models.CharField(max_length=32, verbose_name="盐值")
    code_hash = models.CharField(max_length=64, verbose_name="验证码哈希")
    created_at = models.DateTimeField(verbose_name="发送时间")
    expires_at = models.DateTimeField(verbose_name="过期时间")
    attempts = models.PositiveSmallIntegerField(default=0, verbose_name="尝试次数")
    used_at = models.DateTimeField(null=True, blank=True, verbose_name="使用时间")
    ip = models.CharField(max_length=64, blank=True, db_index=True, verbose_name="IP地址")
    message = models.OneToOneField(
        "SmsMessage",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="code",
        verbose_name="短信",
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

    phone = models.CharField(max_length=11, verbose_name="手机号码")  # never looked up: no index
    kind = models.CharField(max_length=40, verbose_name="类型")
    payload = models.TextField(
        blank=True, verbose_name="内容（加密）"
    )  # Fernet token of {"params": [...]}; "" once final
    status = models.CharField(
        max_length=10, choices=Status.choices, default=Status.QUEUED, verbose_name="状态"
    )
    attempts = models.PositiveSmallIntegerField(default=0, verbose_name="发送次数")
    next_attempt_at = models.DateTimeField(verbose_name="下次发送时间")
    claimed_at = models.DateTimeField(null=True, blank=True, verbose_name="领取时间")
    last_error = models.CharField(max_length=500, blank=True, verbose_name="最近错误")
    provider = models.CharField(max_length=20, blank=True, verbose_name="短信服务商")
    provider_message_id = models.CharField(
        max_length=100, blank=True, verbose_name="服务商消息编号"
    )
    created_at = models.DateTimeField(verbose_name="创建时间")
    sent_at = models.DateTimeField(null=True, blank=True, verbose_name="发送时间")
    expires_at = models.DateTimeField(null=True, blank=True, verbose_name="过期时间")

    class Meta:
        verbose_name = "短信"
        verbose_name_plural = "短信发送记录"
        indexes = [models.Index(fields=["status", "next_attempt_at"])]
        constraints = [
            models.CheckConstraint(
                condition=~Q(status="sent") | Q(sent_at__isnull=False), name="sms_sent_has_time"
            )
        ]

    def __str__(self) -> str:
        return f"短信 #{self.pk}"


class DevInboxMessage(models.Model):
    """What the console provider 'delivered', for the DEBUG-only /dev/sms/ page."""

    phone = models.CharField(max_length=11, verbose_name="手机号码")
    text = models.TextField(verbose_name="短信内容")
    created_at = models.DateTimeField(auto_now_add=True, verbose_name="时间")

    class Meta:
        ordering = ["-id"]
        verbose_name = "开发环境短信收件箱"
        verbose_name_plural = "开发环境短信收件箱"
