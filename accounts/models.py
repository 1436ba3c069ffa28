"""Families on the waiting list, their main applicants, staff users and device sessions."""

from __future__ import annotations

from django.contrib.auth.models import AbstractUser, Group
from django.contrib.sessions.base_session import AbstractBaseSession
from django.db import models
from django.db.models import Q
from simple_history.models import HistoricalRecords

from accounts.roles import ROLE_LABELS
from accounts.validators import mask_id_number, mask_mobile
from core.pii import EncryptedCharField, SearchField, search_hash_key


class User(AbstractUser):
    """A login. Staff log in to the admin with a password; applicants through an identity
    provider, so their users have no usable password."""

    class Meta:
        verbose_name = "用户"
        verbose_name_plural = "用户"


class Role(Group):
    """A staff role as the admin shows it: the group whose name is the role's code
    (accounts/roles.py), named in Chinese."""

    class Meta:
        proxy = True
        verbose_name = "角色"
        verbose_name_plural = "角色"

    def __str__(self) -> str:
        return ROLE_LABELS.get(self.name, self.name)


class Layout(models.TextChoices):
    STUDIO = "studio", "单间"
    ONE_BED = "1b1l", "一房一厅"
    TWO_BED = "2b1l", "两房一厅"
    THREE_BED = "3b1l", "三房一厅"


class Applicant(models.Model):
    """The main applicant (主申请人) of a family: the one person who logs in and signs."""

    user = models.OneToOneField(
        User,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="applicant",
        verbose_name="登录账号",
    )
    real_name = models.CharField("姓名", max_length=50)
    # Stored encrypted (core/pii.py, AES-256-GCM under the configured keys) and found by a
    # keyed hash: `id_number` is the hash column (`filter(id_number=...)` hashes the value),
    # reading or setting `applicant.id_number` reads or sets the plaintext through the
    # encrypted field declared first. Shown masked everywhere.
    id_number_encrypted = EncryptedCharField("身份证号码", max_length=18, default="")
    id_number = SearchField(
        hash_key=search_hash_key,
        encrypted_field_name="id_number_encrypted",
        unique=True,
        verbose_name="身份证号码（检索哈希）",
    )
    mobile = models.CharField("登记手机号码", max_length=11)
    # The newest 《个人信息保护政策》 version (ConsentText kind "privacy") the applicant has
    # acknowledged; 0: none yet. Pages and the API ask again while a newer one exists
    # (accounts/privacy.py); each acknowledgement is also a PrivacyAcknowledgement row.
    privacy_version = models.PositiveIntegerField(default=0, verbose_name="已确认的隐私政策版本")
    created_at = models.DateTimeField(auto_now_add=True, verbose_name="创建时间")

    history = HistoricalRecords(verbose_name="申请人变更记录", verbose_name_plural="申请人变更记录")

    class Meta:
        verbose_name = "主申请人"
        verbose_name_plural = "主申请人"
        constraints = [
            models.CheckConstraint(
                condition=Q(mobile__regex=r"^1[3-9][0-9]{9}$"), name="applicant_mobile_format"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.real_name}（{self.id_number_masked}）"

    @property
    def id_number_masked(self) -> str:
        return mask_id_number(self.id_number)

    @property
    def mobile_masked(self) -> str:
        return mask_mobile(self.mobile)


class PrivacyAcknowledgement(models.Model):
    """An applicant acknowledged one version of 《个人信息保护政策》: which text (its SHA-256),
    when and from where. Append-only."""

    applicant = models.ForeignKey(
        Applicant, on_delete=models.CASCADE, related_name="privacy_acks", verbose_name="申请人"
    )
    version = models.PositiveIntegerField(verbose_name="版本")
    text_sha256 = models.CharField(max_length=64, verbose_name="正文哈希")
    at = models.DateTimeField(verbose_name="确认时间")
    ip = models.CharField(max_length=64, blank=True, verbose_name="IP地址")
    user_agent = models.CharField(max_length=400, blank=True, verbose_name="浏览器标识")

    class Meta:
        verbose_name = "隐私政策确认记录"
        verbose_name_plural = "隐私政策确认记录"
        constraints = [
            models.UniqueConstraint(fields=["applicant", "version"], name="privacy_ack_once")
        ]


class Family(models.Model):
    """A household on the waiting list (选房家庭)."""

    rank = models.PositiveIntegerField("排位号", unique=True)
    household_size = models.PositiveSmallIntegerField("家庭人数")
    eligible_layouts = models.JSONField("可选户型", default=list)
    main_applicant = models.OneToOneField(
        Applicant, on_delete=models.PROTECT, related_name="family", verbose_name="主申请人"
    )
    created_at = models.DateTimeField(auto_now_add=True, verbose_name="创建时间")

    history = HistoricalRecords(verbose_name="家庭变更记录", verbose_name_plural="家庭变更记录")

    class Meta:
        verbose_name = "选房家庭"
        verbose_name_plural = "选房家庭"
        ordering = ["rank"]
        constraints = [
            models.CheckConstraint(condition=Q(household_size__gte=1), name="family_size_positive")
        ]

    def __str__(self) -> str:
        return f"排位 {self.rank} · {self.main_applicant.real_name}"

    @property
    def eligible_layout_labels(self) -> list[str]:
        return [Layout(code).label for code in self.eligible_layouts if code in Layout.values]

    def may_choose(self, layout: str) -> bool:
        """Whether the household may choose a unit of this layout (its 可选户型): the rule the
        cart, staff allocation and the unit list's 「我家可选」 all apply."""
        return layout in self.eligible_layouts


class DeviceSession(models.Model):
    """One row per applicant login. At most one is active per user: logging in elsewhere
    ends the previous one with a reason the old device is told on its next request."""

    class EndReason(models.TextChoices):
        LOGOUT = "logout", "已退出"
        REPLACED = "replaced", "已在其他设备登录"

    user = models.ForeignKey(
        User, on_delete=models.CASCADE, related_name="device_sessions", verbose_name="用户"
    )
    session_key = models.CharField(max_length=64, unique=True, verbose_name="会话标识")
    ip = models.CharField(max_length=64, blank=True, verbose_name="IP地址")
    user_agent = models.CharField(max_length=400, blank=True, verbose_name="浏览器标识")
    provider = models.CharField(max_length=20, verbose_name="登录方式")
    created_at = models.DateTimeField(verbose_name="登录时间")
    ended_at = models.DateTimeField(null=True, blank=True, verbose_name="结束时间")
    end_reason = models.CharField(
        max_length=20, choices=EndReason.choices, blank=True, verbose_name="结束原因"
    )

    class Meta:
        verbose_name = "登录设备"
        verbose_name_plural = "登录设备"
        constraints = [
            models.UniqueConstraint(
                fields=["user"], condition=Q(ended_at__isnull=True), name="one_active_device"
            ),
            models.CheckConstraint(
                condition=Q(ended_at__isnull=True, end_reason="")
                | (Q(ended_at__isnull=False) & ~Q(end_reason="")),
                name="device_end_reason_with_end",
            ),
        ]

    def __str__(self) -> str:
        return f"登录设备 #{self.pk}"


class AuditEntry(models.Model):
    """Append-only record of what staff (and the system on their behalf) did."""

    actor = models.ForeignKey(
        User, on_delete=models.PROTECT, null=True, related_name="+", verbose_name="操作人"
    )
    action = models.CharField(max_length=60, verbose_name="操作")
    target = models.CharField(max_length=200, blank=True, verbose_name="对象")
    detail = models.JSONField(default=dict, verbose_name="详情")
    ip = models.CharField(max_length=64, blank=True, verbose_name="IP地址")
    at = models.DateTimeField(db_index=True, verbose_name="时间")

    class Meta:
        verbose_name = "操作日志"
        verbose_name_plural = "操作日志"
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"操作日志 #{self.pk}"


class LoginSession(AbstractBaseSession):
    """Django's own session row (the `django_session` table, created and owned by
    django.contrib.sessions; this model is unmanaged and adds no column) seen together with the
    applicant login it belongs to: `device` joins the device session of the same key, so that
    one query loads session → device session → user → applicant → family
    (accounts/sessions.py; docs/DECISIONS.md "One query for the login")."""

    device = models.ForeignObject(
        DeviceSession,
        on_delete=models.DO_NOTHING,
        from_fields=["session_key"],
        to_fields=["session_key"],
        null=True,
        related_name="+",
        verbose_name="登录设备",
    )

    class Meta:
        managed = False
        db_table = "django_session"
        verbose_name = "会话"
        verbose_name_plural = "会话"

    @classmethod
    def get_session_store_class(cls):
        from accounts.sessions import SessionStore

        return SessionStore
