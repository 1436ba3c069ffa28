"""Selection: rounds, sessions and their seats, units, carts, declarations, allocations,
give-ups, supplementary applications and the append-only allocation ledger.

The database guards the invariants as well as the services: a unit has at most one
allocation, a family at most one per round (constraints), and a unit is 已选 exactly when it
has an allocation (PostgreSQL constraint triggers, migration 0005).

Rounds, sessions and units keep a field-level history of every change made by a save (the
staff operations, the admin): who, when, why, before and after (django-simple-history). The
applicants' and the clock's allocation writes are queryset updates recorded in the hash-chained
ledger instead.
"""

from __future__ import annotations

from django.db import models
from django.db.models import F, Q
from simple_history.models import HistoricalRecords

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
    supplementary_grace_seconds = models.PositiveIntegerField(
        "补选申请截止（当天最后一场正选结束后，秒）", default=180
    )
    preselect_announced_at = models.DateTimeField(
        null=True, blank=True, verbose_name="预选开始播报时间"
    )
    deposit_months = models.PositiveSmallIntegerField("押金（月租金倍数）", default=2)
    lease_years = models.PositiveSmallIntegerField("租期（年）", default=3)
    # The lease's signing window: from the allocation to 18:00 of the N-th day after it.
    lease_signing_days = models.PositiveSmallIntegerField("签约期限（天）", default=7)
    created_at = models.DateTimeField(auto_now_add=True, verbose_name="创建时间")

    history = HistoricalRecords(
        verbose_name="选房批次变更记录", verbose_name_plural="选房批次变更记录"
    )

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
    """A session (场次): its families select inside [starts_at, ends_at)."""

    class Kind(models.TextChoices):
        FORMAL = "formal", "正选场次"
        SUPPLEMENTARY = "supplementary", "补选场次"

    class Status(models.TextChoices):
        SCHEDULED = "scheduled", "未开始"
        OPEN = "open", "进行中"
        CLOSED = "closed", "已结束"

    round = models.ForeignKey(
        Round, on_delete=models.PROTECT, related_name="sessions", verbose_name="批次"
    )
    order = models.PositiveIntegerField("场次序号")
    kind = models.CharField("类型", max_length=20, choices=Kind.choices, default=Kind.FORMAL)
    starts_at = models.DateTimeField("开始时间")
    ends_at = models.DateTimeField("结束时间")
    status = models.CharField(
        "状态", max_length=20, choices=Status.choices, default=Status.SCHEDULED
    )
    opened_at = models.DateTimeField(null=True, blank=True, verbose_name="实际开始时间")
    last_call_at = models.DateTimeField(
        null=True, blank=True, verbose_name="最后30秒提醒时间"
    )  # the last-30-seconds notice
    closed_at = models.DateTimeField(null=True, blank=True, verbose_name="实际结束时间")
    families = models.ManyToManyField(
        Family, through="Seat", related_name="sessions", verbose_name="家庭"
    )

    history = HistoricalRecords(
        verbose_name="选房场次变更记录", verbose_name_plural="选房场次变更记录"
    )

    class Meta:
        verbose_name = "选房场次"
        verbose_name_plural = "选房场次"
        ordering = ["round", "order"]
        indexes = [models.Index(fields=["status", "ends_at"]), models.Index(fields=["starts_at"])]
        constraints = [
            models.UniqueConstraint(fields=["round", "order"], name="session_order_unique"),
            models.CheckConstraint(
                condition=Q(ends_at__gt=F("starts_at")), name="session_ends_after_start"
            ),
            models.CheckConstraint(
                condition=~Q(status="closed") | Q(closed_at__isnull=False),
                name="session_closed_has_time",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.round.name} 第{self.order}场（{self.get_kind_display()}）"

    @staticmethod
    def word_of(kind: str) -> str:
        """What a family's window in a session of `kind` is called: 正选, or 补选 in a
        supplementary session (a 补选 family is never told of its 正选时间)."""
        return "补选" if kind == Session.Kind.SUPPLEMENTARY else "正选"

    @property
    def word(self) -> str:
        return Session.word_of(self.kind)


class Seat(models.Model):
    """A family's place in a session, and how the session ended for it."""

    class Outcome(models.TextChoices):
        PENDING = "", "未结束"
        CONFIRMED = "confirmed", "已确认选房"
        AUTO_ASSIGNED = "auto", "系统自动选定"
        NO_UNIT = "no_unit", "意向房源均已被选"
        ABSENT = "absent", "未参加正选"
        GAVE_UP = "gave_up", "主动放弃"

    session = models.ForeignKey(
        Session, on_delete=models.CASCADE, related_name="seats", verbose_name="场次"
    )
    family = models.ForeignKey(
        Family, on_delete=models.PROTECT, related_name="seats", verbose_name="家庭"
    )
    # The family entered selection: acknowledged the declaration and opened the formal page
    # inside the window. Auto-assign covers entered families only.
    entered_at = models.DateTimeField(null=True, blank=True, verbose_name="进入正选时间")
    outcome = models.CharField(
        max_length=20, choices=Outcome.choices, blank=True, verbose_name="结果"
    )

    class Meta:
        verbose_name = "场次家庭"
        verbose_name_plural = "场次家庭"
        constraints = [
            models.UniqueConstraint(fields=["session", "family"], name="seat_unique"),
        ]

    def __str__(self) -> str:
        return str(self.family)

    @property
    def outcome_label(self) -> str:
        """The outcome as a family and staff read it, in its session's own word: a missed
        supplementary session is 「未参加补选」 (the choice's label names the formal one); a
        session not yet run is 「未开始」 or 「进行中」, not 「未结束」."""
        if self.outcome == self.Outcome.ABSENT:
            return f"未参加{self.session.word}"
        if self.outcome == self.Outcome.PENDING:
            if self.session.status == Session.Status.SCHEDULED:
                return "未开始"
            if self.session.status == Session.Status.OPEN:
                return "进行中"
        return self.get_outcome_display()


def unit_name(building: str, number: str) -> str:
    """A unit as a family reads it: 「2栋 201」 (Unit.name)."""
    return f"{building}栋 {number}"


class Unit(models.Model):
    """A unit (房源) in a round's pool."""

    class Status(models.TextChoices):
        AVAILABLE = "available", "可选"
        TAKEN = "taken", "已选"
        WITHDRAWN = "withdrawn", "已撤回"

    # No index of its own: unit_unique (round, building, number) leads with it. Nothing
    # indexes `status` either, so the confirm's status update is a HOT update that writes
    # no index entry (fillfactor 80, selection migration 0010; docs/BENCHMARKS.md).
    round = models.ForeignKey(
        Round, on_delete=models.PROTECT, related_name="units", verbose_name="批次", db_index=False
    )
    building = models.CharField("楼栋", max_length=20)
    number = models.CharField("房号", max_length=20)
    floor = models.SmallIntegerField("楼层")
    layout = models.CharField("户型", max_length=10, choices=Layout.choices)
    orientation = models.CharField("朝向", max_length=2, choices=Orientation.choices)
    area = models.DecimalField("建筑面积（㎡）", max_digits=7, decimal_places=2)
    monthly_rent = models.DecimalField("月租金（元）", max_digits=9, decimal_places=2)
    status = models.CharField(
        "状态", max_length=20, choices=Status.choices, default=Status.AVAILABLE
    )

    history = HistoricalRecords(verbose_name="房源变更记录", verbose_name_plural="房源变更记录")

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

    @property
    def label(self) -> str:
        """The staff's short form (楼栋-房号), in the log's entries, exports and the admin."""
        return f"{self.building}-{self.number}"

    @property
    def name(self) -> str:
        """What a family reads, on every page (h5 lib/selection.js `unitName`), in its SMS
        and in the answers it gets: 「2栋 201」."""
        return unit_name(self.building, self.number)


class Declaration(models.Model):
    """The applicant ticked 「上述条款，我已阅知」: which text, when, from where."""

    class Phase(models.TextChoices):
        PRE = "pre", "预选"
        FORMAL = "formal", "正选"

    family = models.ForeignKey(
        Family, on_delete=models.PROTECT, related_name="declarations", verbose_name="家庭"
    )
    round = models.ForeignKey(
        Round, on_delete=models.PROTECT, related_name="declarations", verbose_name="批次"
    )
    session = models.ForeignKey(
        Session, on_delete=models.PROTECT, null=True, blank=True, verbose_name="场次"
    )
    phase = models.CharField(max_length=10, choices=Phase.choices, verbose_name="阶段")
    text_version = models.CharField(
        max_length=64, verbose_name="声明版本"
    )  # sha256 of the declaration text shown
    at = models.DateTimeField(verbose_name="时间")
    ip = models.CharField(max_length=64, blank=True, verbose_name="IP地址")
    user_agent = models.CharField(max_length=400, blank=True, verbose_name="浏览器标识")

    class Meta:
        verbose_name = "声明确认"
        verbose_name_plural = "声明确认"
        indexes = [models.Index(fields=["family", "round", "phase"])]


class CartItem(models.Model):
    """One unit in a family's pre-selection or formal cart, at a 1-based position."""

    class Kind(models.TextChoices):
        PRE = "pre", "预选"
        FORMAL = "formal", "正选"

    family = models.ForeignKey(
        Family, on_delete=models.CASCADE, related_name="cart_items", verbose_name="家庭"
    )
    round = models.ForeignKey(
        Round, on_delete=models.CASCADE, related_name="cart_items", verbose_name="批次"
    )
    kind = models.CharField(max_length=10, choices=Kind.choices, verbose_name="类型")
    unit = models.ForeignKey(
        Unit, on_delete=models.PROTECT, related_name="cart_items", verbose_name="房源"
    )
    position = models.PositiveSmallIntegerField(verbose_name="顺序")
    added_at = models.DateTimeField(verbose_name="加入时间")

    class Meta:
        verbose_name = "购物车房源"
        verbose_name_plural = "购物车房源"
        ordering = ["family", "kind", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["family", "round", "kind", "unit"], name="cart_unit_once"
            ),
        ]


class Allocation(models.Model):
    """A unit allocated to a family. At most one per unit and one per family per round,
    enforced by the database; written only together with a ledger entry."""

    class How(models.TextChoices):
        CONFIRMED = "confirmed", "家庭确认正选"
        AUTO = "auto", "系统自动选定"
        STAFF = "staff", "工作人员分配"

    # Indexed by one_unit_per_family (round, family), which leads with it.
    round = models.ForeignKey(
        Round,
        on_delete=models.PROTECT,
        related_name="allocations",
        verbose_name="批次",
        db_index=False,
    )
    unit = models.OneToOneField(
        Unit, on_delete=models.PROTECT, related_name="allocation", verbose_name="房源"
    )
    family = models.ForeignKey(
        Family, on_delete=models.PROTECT, related_name="allocations", verbose_name="家庭"
    )
    session = models.ForeignKey(
        Session, on_delete=models.PROTECT, related_name="allocations", verbose_name="场次"
    )
    how = models.CharField(max_length=20, choices=How.choices, verbose_name="方式")
    at = models.DateTimeField(verbose_name="时间")
    # The log entry its transaction wrote (selection.translog): the receipt hangs off it.
    ledger_entry = models.OneToOneField(
        "LedgerEntry", on_delete=models.PROTECT, related_name="allocation", verbose_name="日志条目"
    )
    # A confirm's client-supplied key: a repeated click with the same key gets the same answer.
    idempotency_key = models.CharField(max_length=64, blank=True, verbose_name="幂等键")

    class Meta:
        verbose_name = "选房结果"
        verbose_name_plural = "选房结果"
        constraints = [
            models.UniqueConstraint(fields=["round", "family"], name="one_unit_per_family"),
        ]

    def __str__(self) -> str:
        return f"{self.unit} · {self.family}"

    @property
    def how_label(self) -> str:
        """How it was decided, in the words of its session: a confirmation in a supplementary
        session is 家庭确认补选."""
        if self.how == self.How.CONFIRMED and self.session.kind == Session.Kind.SUPPLEMENTARY:
            return "家庭确认补选"
        return self.get_how_display()


class GiveUp(models.Model):
    """主动放弃: explicit, asked twice, irreversible; bars supplementary selection."""

    family = models.ForeignKey(
        Family, on_delete=models.PROTECT, related_name="give_ups", verbose_name="家庭"
    )
    round = models.ForeignKey(
        Round, on_delete=models.PROTECT, related_name="give_ups", verbose_name="批次"
    )
    session = models.ForeignKey(
        Session, on_delete=models.PROTECT, null=True, blank=True, verbose_name="场次"
    )
    at = models.DateTimeField(verbose_name="时间")
    ip = models.CharField(max_length=64, blank=True, verbose_name="IP地址")
    user_agent = models.CharField(max_length=400, blank=True, verbose_name="浏览器标识")

    class Meta:
        verbose_name = "主动放弃"
        verbose_name_plural = "主动放弃"
        constraints = [
            models.UniqueConstraint(fields=["round", "family"], name="one_give_up_per_family"),
        ]


class SupplementaryApplication(models.Model):
    """补选申请, and the supplementary session staff scheduled for it."""

    family = models.ForeignKey(
        Family, on_delete=models.PROTECT, related_name="supplementary", verbose_name="家庭"
    )
    round = models.ForeignKey(
        Round, on_delete=models.PROTECT, related_name="supplementary", verbose_name="批次"
    )
    applied_at = models.DateTimeField(verbose_name="申请时间")
    session = models.ForeignKey(
        Session,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="applications",
        verbose_name="补选场次",
    )
    ip = models.CharField(max_length=64, blank=True, verbose_name="IP地址")
    user_agent = models.CharField(max_length=400, blank=True, verbose_name="浏览器标识")

    class Meta:
        verbose_name = "补选申请"
        verbose_name_plural = "补选申请"
        constraints = [
            models.UniqueConstraint(fields=["round", "family"], name="one_application_per_family"),
        ]

    def __str__(self) -> str:
        return f"补选申请 · {self.family}"


class LedgerEntry(models.Model):
    """One entry of a round's allocation log (selection.translog, docs/TRANSPARENCY.md).

    Written in the transaction it records, with its leaf hash and no index: nothing that
    every writer locks. The sequencer gives committed entries consecutive indexes in commit
    order, adds them to the round's Merkle tree and signs a tree head."""

    # Indexed by ledger_round_index and ledger_code, which lead with it.
    round = models.ForeignKey(
        Round, on_delete=models.PROTECT, related_name="ledger", verbose_name="批次", db_index=False
    )
    session = models.ForeignKey(
        Session, on_delete=models.PROTECT, null=True, blank=True, verbose_name="场次"
    )
    kind = models.CharField(max_length=40, verbose_name="类型")
    at = models.DateTimeField(verbose_name="时间")
    payload = models.JSONField(verbose_name="内容")
    leaf_hash = models.CharField(max_length=64, verbose_name="叶哈希")
    index = models.PositiveBigIntegerField(null=True, blank=True, verbose_name="日志序号")

    class Meta:
        verbose_name = "选房日志"
        verbose_name_plural = "选房日志"
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["round", "index"], name="ledger_round_index"),
        ]
        indexes = [
            models.Index(fields=["round"], name="ledger_pending", condition=Q(index__isnull=True)),
            # A result's verification code (核验码) is a prefix of its leaf hash, looked up
            # within the round (selection.translog): one index for that, where there were
            # three (round; leaf hash; leaf hash for LIKE) each written by every confirm.
            models.Index(
                fields=["round", "leaf_hash"],
                name="ledger_code",
                opclasses=["int8_ops", "varchar_pattern_ops"],  # PostgreSQL only; SQLite: plain
            ),
        ]

    def __str__(self) -> str:
        # Counted from 1, as the family's receipt and the public check show it (the index is
        # the log's 0-based leaf number).
        return "选房日志（待排序）" if self.index is None else f"选房日志第{self.index + 1}条"

    @property
    def code(self) -> str:
        """The short verification code printed in the result SMS (核验码)."""
        from selection.ledger import CODE_LENGTH

        return self.leaf_hash[:CODE_LENGTH]


class LedgerLog(models.Model):
    """A round's log: its size and root. Locked by the sequencer only (never by a writer), so
    two sequencers take turns and each index is given once."""

    round = models.OneToOneField(
        Round, on_delete=models.PROTECT, primary_key=True, verbose_name="批次"
    )
    size = models.PositiveBigIntegerField(default=0, verbose_name="条目数")
    root = models.CharField(max_length=64, default="", verbose_name="根哈希")

    class Meta:
        verbose_name = "选房日志树"
        verbose_name_plural = "选房日志树"


class LedgerNode(models.Model):
    """The hash of a complete subtree of a round's log: leaves [k·2^level, (k+1)·2^level).
    Proofs and roots are computed from O(log n) of these."""

    round = models.ForeignKey(Round, on_delete=models.PROTECT, verbose_name="批次")
    level = models.PositiveSmallIntegerField(verbose_name="层")
    k = models.PositiveBigIntegerField(verbose_name="位置")
    hash = models.CharField(max_length=64, verbose_name="哈希")

    class Meta:
        verbose_name = "选房日志树节点"
        verbose_name_plural = "选房日志树节点"
        constraints = [
            models.UniqueConstraint(fields=["round", "level", "k"], name="ledger_node_at"),
        ]


class TreeHead(models.Model):
    """A signed tree head: (log, size, root, time) signed with the log key, which lives in
    the configuration, never in this database."""

    round = models.ForeignKey(
        Round, on_delete=models.PROTECT, related_name="tree_heads", verbose_name="批次"
    )
    size = models.PositiveBigIntegerField(verbose_name="条目数")
    root = models.CharField(max_length=64, verbose_name="根哈希")
    time = models.DateTimeField(verbose_name="签名时间")
    key_id = models.CharField(max_length=16, verbose_name="密钥标识")
    signature = models.CharField(max_length=120, verbose_name="签名")

    class Meta:
        verbose_name = "选房日志签名树头"
        verbose_name_plural = "选房日志签名树头"
        ordering = ["size", "time"]
        indexes = [models.Index(fields=["round", "size"], name="tree_head_size")]
