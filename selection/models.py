"""Selection rounds, their sessions and units.

The foundation holds what the demo data needs; carts, allocations, the ledger and the
supplementary flow come with the selection issue.
"""

from __future__ import annotations

from django.db import models
from django.db.models import F, Q

from accounts.models import Family, Layout


class Orientation(models.TextChoices):
    SOUTH = "S", "南"
    NORTH = "N", "北"
    EAST = "E", "东"
    WEST = "W", "西"
    SOUTH_EAST = "SE", "东南"
    SOUTH_WEST = "SW", "西南"
    NORTH_EAST = "NE", "东北"
    NORTH_WEST = "NW", "西北"


class Round(models.Model):
    """A selection round (选房批次) with its pool of units."""

    name = models.CharField("批次名称", max_length=100, unique=True)
    preselect_starts_at = models.DateTimeField("预选开始时间")
    cart_limit = models.PositiveSmallIntegerField("购物车上限", default=5)
    window_seconds = models.PositiveIntegerField("正选时长（秒）", default=120)
    deposit_months = models.PositiveSmallIntegerField("押金（月租金倍数）", default=2)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "选房批次"
        verbose_name_plural = "选房批次"
        constraints = [
            models.CheckConstraint(
                condition=Q(cart_limit__gte=1), name="round_cart_limit_positive"
            ),
            models.CheckConstraint(
                condition=Q(window_seconds__gte=10), name="round_window_at_least_10s"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Session(models.Model):
    """A session (场次): families of a rank block select inside [starts_at, ends_at)."""

    class Kind(models.TextChoices):
        FORMAL = "formal", "正选场次"
        SUPPLEMENTARY = "supplementary", "补选场次"

    class Status(models.TextChoices):
        SCHEDULED = "scheduled", "未开始"
        OPEN = "open", "进行中"
        CLOSED = "closed", "已结束"

    round = models.ForeignKey(Round, on_delete=models.PROTECT, related_name="sessions")
    order = models.PositiveIntegerField("场次序号")
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.FORMAL)
    starts_at = models.DateTimeField("开始时间")
    ends_at = models.DateTimeField("结束时间")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.SCHEDULED)
    families = models.ManyToManyField(Family, through="SessionFamily", related_name="sessions")

    class Meta:
        verbose_name = "选房场次"
        verbose_name_plural = "选房场次"
        ordering = ["round", "order"]
        constraints = [
            models.UniqueConstraint(fields=["round", "order"], name="session_order_unique"),
            models.CheckConstraint(
                condition=Q(ends_at__gt=F("starts_at")), name="session_ends_after_start"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.round.name} 第{self.order}场"


class SessionFamily(models.Model):
    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="seats")
    family = models.ForeignKey(Family, on_delete=models.PROTECT, related_name="session_seats")

    class Meta:
        verbose_name = "场次家庭"
        verbose_name_plural = "场次家庭"
        constraints = [
            models.UniqueConstraint(fields=["session", "family"], name="session_family_unique")
        ]


class Unit(models.Model):
    """A unit (房源) in a round's pool."""

    class Status(models.TextChoices):
        AVAILABLE = "available", "可选"
        TAKEN = "taken", "已选"
        WITHDRAWN = "withdrawn", "已撤回"

    round = models.ForeignKey(Round, on_delete=models.PROTECT, related_name="units")
    building = models.CharField("楼栋", max_length=20)
    number = models.CharField("房号", max_length=20)
    floor = models.SmallIntegerField("楼层")
    layout = models.CharField("户型", max_length=10, choices=Layout.choices)
    orientation = models.CharField("朝向", max_length=2, choices=Orientation.choices)
    area = models.DecimalField("建筑面积（㎡）", max_digits=7, decimal_places=2)
    monthly_rent = models.DecimalField("月租金（元）", max_digits=9, decimal_places=2)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.AVAILABLE)

    class Meta:
        verbose_name = "房源"
        verbose_name_plural = "房源"
        ordering = ["round", "building", "number"]
        constraints = [
            models.UniqueConstraint(fields=["round", "building", "number"], name="unit_unique"),
            models.CheckConstraint(condition=Q(area__gt=0), name="unit_area_positive"),
            models.CheckConstraint(condition=Q(monthly_rent__gte=0), name="unit_rent_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.building}栋{self.number}"
