"""E-signing: templates and consent texts (versioned), agreements, their QR tickets and
scans, the per-character signature, and the per-agreement evidence chain.

Statuses (explicit transitions in signing/transitions.py): 待签字 pending → 已签字 signed →
已盖章 sealed; a staff rejection sends signed back to pending; 作废 void when the window
ends unsigned; 已放弃 abandoned by the abandonment declaration 《放弃签约声明书》.
"""

from __future__ import annotations

import hashlib

from django.db import models
from django.db.models import F, Q

from accounts.models import Family, User


class TemplateKind(models.TextChoices):
    LEASE = "lease", "公共租赁住房租赁合同"
    RENT_SUBSIDY = "rent_subsidy", "租金补贴协议"


class AgreementTemplate(models.Model):
    """A versioned agreement body with `{{ variables }}` (Django template syntax, autoescape
    off: the output is plain text). A version is never edited once an agreement uses it."""

    kind = models.CharField("类型", max_length=20, choices=TemplateKind.choices)
    version = models.PositiveIntegerField("版本")
    title = models.CharField("标题", max_length=100)
    body = models.TextField("正文")
    # 甲方: one organisation everywhere the agreement names it (body, signature block, seal
    # image, seal certificate).
    organisation = models.CharField("甲方（出租人）名称", max_length=100, blank=True)
    # Where 请拨打咨询电话 is said (pages, abandonment, rejection SMS), as guide 001 gives it.
    consult_phones = models.CharField("咨询电话", max_length=100, blank=True)
    consult_hours = models.CharField("咨询时间", max_length=100, blank=True)
    # SHA-256 of `body`, fixed when the version is created (signing/services.py
    # `template_revise`); each agreement keeps a copy (`Agreement.template_sha256`).
    body_sha256 = models.CharField("正文SHA-256", max_length=64, blank=True)
    created_at = models.DateTimeField("创建时间", auto_now_add=True)

    class Meta:
        verbose_name = "协议模板"
        verbose_name_plural = "协议模板"
        constraints = [models.UniqueConstraint(fields=["kind", "version"], name="template_version")]

    def __str__(self) -> str:
        return f"{self.title} v{self.version}"

    def save(self, *args, **kwargs):
        """A version is written once: editing means a new version (`template_revise`)."""
        if not self._state.adding:
            raise ValueError("协议模板版本创建后不可修改：请通过 template_revise 创建新版本")
        if not self.body_sha256:
            self.body_sha256 = hashlib.sha256(self.body.encode()).hexdigest()
        super().save(*args, **kwargs)


class ConsentKind(models.TextChoices):
    ECERT_SERVICE = "ecert_service", "电子认证服务协议"
    PRIVACY = "privacy", "个人信息保护政策"
    BIOMETRIC = "biometric", "个人生物识别信息保护规则"


class ConsentText(models.Model):
    kind = models.CharField(max_length=20, choices=ConsentKind.choices)
    version = models.PositiveIntegerField()
    title = models.CharField(max_length=100)
    body = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "同意条款"
        verbose_name_plural = "同意条款"
        constraints = [models.UniqueConstraint(fields=["kind", "version"], name="consent_version")]

    def __str__(self) -> str:
        return f"{self.title} v{self.version}"


class Agreement(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "待签字"
        SIGNED = "signed", "已签字"
        SEALED = "sealed", "已盖章"
        VOID = "void", "作废"
        ABANDONED = "abandoned", "已放弃"

    class Step(models.IntegerChoices):
        """The phone flow of guide 001, in order. The server accepts only the next step."""

        NONE = 0, "未开始"
        CONTRACT_VIEWED = 1, "查看电子合同"
        ECERT_CONSENTED = 2, "同意电子认证服务协议与个人信息保护政策"
        IDENTITY_CONFIRMED = 3, "核对实名信息并同意生物识别规则"
        FACE_VERIFIED = 4, "人脸识别通过"
        AGREEMENT_READ = 5, "阅读并确认协议"
        SIGNATURE_DRAWN = 6, "手写签名"
        SUBMITTED = 7, "短信验证并提交"

    family = models.ForeignKey(Family, on_delete=models.PROTECT, related_name="agreements")
    template = models.ForeignKey(AgreementTemplate, on_delete=models.PROTECT)
    template_sha256 = models.CharField(max_length=64, blank=True)  # the version's body_sha256
    title = models.CharField(max_length=100)
    rendered_text = models.TextField()
    text_hash = models.CharField(max_length=64)  # sha256 of rendered_text
    signer_name = models.CharField(max_length=50)  # the characters to sign, one box each
    window_starts_at = models.DateTimeField("签约开始时间")
    window_ends_at = models.DateTimeField("签约截止时间")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    step = models.PositiveSmallIntegerField(choices=Step.choices, default=Step.NONE)
    attempt = models.PositiveSmallIntegerField(default=1)  # +1 after each staff rejection
    reject_reason = models.CharField(max_length=300, blank=True)
    verification_code = models.CharField(max_length=16, unique=True)
    created_by = models.ForeignKey(User, on_delete=models.PROTECT, null=True, related_name="+")
    created_at = models.DateTimeField()
    pushed_at = models.DateTimeField(null=True, blank=True)
    signed_at = models.DateTimeField(null=True, blank=True)
    sealed_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)  # void or abandoned
    context = models.JSONField(default=dict)  # the variables the text was rendered with

    class Meta:
        verbose_name = "协议"
        verbose_name_plural = "协议"
        permissions = [("review_agreement", "审核协议（盖章或退回）")]
        indexes = [models.Index(fields=["status", "window_ends_at"])]
        constraints = [
            models.CheckConstraint(
                condition=Q(window_ends_at__gt=F("window_starts_at")), name="agreement_window"
            ),
            models.CheckConstraint(
                condition=~Q(status="sealed") | Q(sealed_at__isnull=False, signed_at__isnull=False),
                name="agreement_sealed_after_signed",
            ),
            models.UniqueConstraint(
                fields=["family", "template"],
                condition=Q(status__in=["pending", "signed", "sealed"]),
                name="one_live_agreement_per_template",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.title}（{self.get_status_display()}）"


class QrTicket(models.Model):
    """What the desktop's QR code encodes: an opaque random token, never a session id. Valid
    until the agreement's window ends, so a screenshot scanned later still works; useful only
    to the agreement's main applicant (opening it needs that applicant's own login)."""

    class Purpose(models.TextChoices):
        SIGN = "sign", "签署协议"
        FACE = "face", "人脸识别"
        DEPOSIT = "deposit", "缴纳押金"

    agreement = models.ForeignKey(Agreement, on_delete=models.CASCADE, related_name="qr_tickets")
    purpose = models.CharField(max_length=10, choices=Purpose.choices, default=Purpose.SIGN)
    token = models.CharField(max_length=64, unique=True)
    short_code = models.CharField(max_length=12, unique=True)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    created_session_hash = models.CharField(max_length=64, blank=True)  # the desktop's session

    class Meta:
        verbose_name = "签约二维码"
        verbose_name_plural = "签约二维码"


class SigningSession(models.Model):
    """The phone's way in: opening a QR ticket on a phone starts a signing session scoped to
    that ticket's agreement and stage. It is not a login: it never starts, ends or replaces an
    account's device session, and it is useful only for that agreement's phone steps until the
    ticket expires. The phone holds a random secret in a cookie (only its hash is stored) and a
    device id (hashed here) that tells the same phone again in the next stage.

    At most one session per ticket is live: a second phone opening the same ticket takes over
    (the first is ended with `taken_over`, recorded in the evidence chain)."""

    class EndReason(models.TextChoices):
        TAKEN_OVER = "taken_over", "已在另一部手机上打开"
        SUPERSEDED = "superseded", "签约环节已变化"

    ticket = models.ForeignKey(QrTicket, on_delete=models.CASCADE, related_name="sessions")
    agreement = models.ForeignKey(
        Agreement, on_delete=models.CASCADE, related_name="signing_sessions"
    )
    purpose = models.CharField(max_length=10, choices=QrTicket.Purpose.choices)
    secret_hash = models.CharField(max_length=64, unique=True)
    device_hash = models.CharField(max_length=64)
    ip = models.CharField(max_length=64, blank=True)
    user_agent = models.CharField(max_length=400, blank=True)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.CharField(max_length=20, choices=EndReason.choices, blank=True)

    class Meta:
        verbose_name = "手机签约会话"
        verbose_name_plural = "手机签约会话"
        constraints = [
            models.UniqueConstraint(
                fields=["ticket"], condition=Q(ended_at__isnull=True), name="one_live_phone_session"
            ),
            models.CheckConstraint(
                condition=Q(ended_at__isnull=True, end_reason="")
                | (Q(ended_at__isnull=False) & ~Q(end_reason="")),
                name="phone_session_end_reason_with_end",
            ),
        ]


class QrScan(models.Model):
    ticket = models.ForeignKey(QrTicket, on_delete=models.CASCADE, related_name="scans")
    session = models.ForeignKey(
        SigningSession, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    at = models.DateTimeField()
    user = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True)
    accepted = models.BooleanField()
    reason = models.CharField(max_length=40, blank=True)
    ip = models.CharField(max_length=64, blank=True)
    user_agent = models.CharField(max_length=400, blank=True)

    class Meta:
        verbose_name = "扫码记录"
        verbose_name_plural = "扫码记录"


class SignatureCharacter(models.Model):
    """One handwritten character, as strokes (the evidence) and the PNG the server rendered
    from them (never a client image)."""

    agreement = models.ForeignKey(Agreement, on_delete=models.CASCADE, related_name="characters")
    attempt = models.PositiveSmallIntegerField()
    index = models.PositiveSmallIntegerField()  # position in signer_name
    expected = models.CharField(max_length=1)
    strokes = models.JSONField()
    box_width = models.PositiveSmallIntegerField()
    box_height = models.PositiveSmallIntegerField()
    png = models.BinaryField()
    png_sha256 = models.CharField(max_length=64)
    strokes_sha256 = models.CharField(max_length=64)
    drawn_at = models.DateTimeField()

    class Meta:
        verbose_name = "签名字"
        verbose_name_plural = "签名字"
        constraints = [
            models.UniqueConstraint(
                fields=["agreement", "attempt", "index"], name="one_char_per_box"
            )
        ]


class Evidence(models.Model):
    """Append-only, hash-chained per agreement: every step with who, when, from where, what
    text version was shown, and hashes. `signing_evidence_verify` names the first bad row."""

    agreement = models.ForeignKey(Agreement, on_delete=models.PROTECT, related_name="evidence")
    seq = models.PositiveIntegerField()
    kind = models.CharField(max_length=40)
    actor = models.ForeignKey(User, on_delete=models.PROTECT, null=True, related_name="+")
    at = models.DateTimeField()
    ip = models.CharField(max_length=64, blank=True)
    user_agent = models.CharField(max_length=400, blank=True)
    data = models.JSONField()
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    class Meta:
        verbose_name = "签约证据"
        verbose_name_plural = "签约证据"
        ordering = ["agreement", "seq"]
        constraints = [models.UniqueConstraint(fields=["agreement", "seq"], name="evidence_seq")]


class AgreementDocument(models.Model):
    """A PDF of the agreement: `signed` (applicant's signature) then `sealed` (incremental
    update with the organisation's seal)."""

    class Stage(models.TextChoices):
        SIGNED = "signed", "已签字"
        SEALED = "sealed", "已盖章"

    agreement = models.ForeignKey(Agreement, on_delete=models.CASCADE, related_name="documents")
    attempt = models.PositiveSmallIntegerField()
    stage = models.CharField(max_length=10, choices=Stage.choices)
    pdf = models.BinaryField()
    sha256 = models.CharField(max_length=64)
    created_at = models.DateTimeField()

    class Meta:
        verbose_name = "协议文件"
        verbose_name_plural = "协议文件"
        constraints = [
            models.UniqueConstraint(
                fields=["agreement", "attempt", "stage"], name="one_document_per_stage"
            )
        ]


class FaceCheck(models.Model):
    """One face-recognition order with the provider. We keep the provider's result id and
    score, never the face image. A callback is applied once (status moves from STARTED)."""

    class Status(models.TextChoices):
        STARTED = "started", "进行中"
        PASSED = "passed", "通过"
        FAILED = "failed", "未通过"

    agreement = models.ForeignKey(Agreement, on_delete=models.CASCADE, related_name="face_checks")
    attempt = models.PositiveSmallIntegerField()
    provider = models.CharField(max_length=20)
    order_id = models.CharField(max_length=64, unique=True)
    # The phone's signing session that started it (None: a logged-in applicant's own page).
    signing_session = models.ForeignKey(
        "SigningSession", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.STARTED)
    score = models.FloatField(null=True, blank=True)
    result_id = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField()
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "人脸识别"
        verbose_name_plural = "人脸识别"


class Bank(models.TextChoices):
    """Banks that take the rent direct-debit (租金托收) in Shenzhen: any savings card of these."""

    ICBC = "ICBC", "中国工商银行"
    ABC = "ABC", "中国农业银行"
    BOC = "BOC", "中国银行"
    CCB = "CCB", "中国建设银行"
    BOCOM = "BOCOM", "交通银行"
    CMB = "CMB", "招商银行"
    PSBC = "PSBC", "中国邮政储蓄银行"
    PAB = "PAB", "平安银行"
    CITIC = "CITIC", "中信银行"
    CIB = "CIB", "兴业银行"
    SPDB = "SPDB", "上海浦东发展银行"
    CEB = "CEB", "中国光大银行"
    CMBC = "CMBC", "中国民生银行"
    HXB = "HXB", "华夏银行"
    CGB = "CGB", "广发银行"
    SZRCB = "SZRCB", "深圳农村商业银行"


class Lease(models.Model):
    """Lease signing after selection (guide 000, section 三) around a LEASE agreement: the
    allocation it starts from, the rent and deposit fixed from the round's rules when it was
    created, the rent direct-debit details and the deposit.

    Its stage is derived (signing/lease.py `lease_stage`) from these facts and the agreement's
    status and step, never stored, so it cannot drift from them."""

    agreement = models.OneToOneField(Agreement, on_delete=models.PROTECT, related_name="lease")
    allocation = models.OneToOneField(
        "selection.Allocation", on_delete=models.PROTECT, related_name="lease"
    )
    unit_label = models.CharField("房号", max_length=50)
    monthly_rent = models.DecimalField("月租金（元）", max_digits=9, decimal_places=2)
    deposit_fen = models.PositiveIntegerField("押金（分）")
    # 租金托收, confirmed for the agreement's attempt `bank_attempt` (0: never); a staff
    # rejection starts a new attempt, so the details are confirmed again.
    bank = models.CharField("托收银行", max_length=10, choices=Bank.choices, blank=True)
    account_number = models.CharField("银行账号", max_length=19, blank=True)
    account_holder = models.CharField("账户名", max_length=50, blank=True)
    bank_attempt = models.PositiveSmallIntegerField(default=0)
    bank_confirmed_at = models.DateTimeField(null=True, blank=True)
    deposit_paid_at = models.DateTimeField("押金缴纳时间", null=True, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        verbose_name = "租赁签约"
        verbose_name_plural = "租赁签约"
        constraints = [
            models.CheckConstraint(condition=Q(deposit_fen__gt=0), name="lease_deposit_positive"),
            models.CheckConstraint(
                condition=Q(bank_attempt=0)
                | (~Q(bank="") & Q(account_number__regex=r"^[0-9]{16,19}$")),
                name="lease_bank_complete",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.unit_label} 租赁签约"

    @property
    def account_masked(self) -> str:
        n = self.account_number
        return f"{n[:4]} **** **** {n[-4:]}" if n else ""


class CardPhoto(models.Model):
    """A photo of the bank card, as re-encoded by signing/images.py (never the upload itself:
    no EXIF, no trailing bytes). Kept in the database, outside any web root, and served only
    to the applicant and to staff. Every upload is kept; the newest of a side is current."""

    class Side(models.TextChoices):
        FRONT = "front", "银行卡正面"
        BACK = "back", "银行卡反面"

    lease = models.ForeignKey(Lease, on_delete=models.CASCADE, related_name="photos")
    side = models.CharField(max_length=5, choices=Side.choices)
    image = models.BinaryField()
    content_type = models.CharField(max_length=20)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    source_sha256 = models.CharField(max_length=64)  # the upload as received, as evidence
    source_format = models.CharField(max_length=10)
    uploaded_at = models.DateTimeField()

    class Meta:
        verbose_name = "银行卡照片"
        verbose_name_plural = "银行卡照片"


class DepositPayment(models.Model):
    """The deposit's payment order with the payment provider (one per lease: paying again
    reuses it, so a family can never be charged twice). PAID is set once, by a verified
    notification or query answer, in the same transaction as its evidence."""

    class Status(models.TextChoices):
        CREATED = "created", "待支付"
        PAID = "paid", "已支付"

    lease = models.OneToOneField(Lease, on_delete=models.PROTECT, related_name="payment")
    provider = models.CharField(max_length=20)
    out_trade_no = models.CharField(max_length=32, unique=True)
    amount_fen = models.PositiveIntegerField()
    currency = models.CharField(max_length=3, default="CNY")
    prepay_id = models.CharField(max_length=64, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.CREATED)
    transaction_id = models.CharField(max_length=64, blank=True)
    receipt_no = models.CharField(max_length=32, blank=True)
    created_at = models.DateTimeField()
    paid_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "押金支付"
        verbose_name_plural = "押金支付"
        constraints = [
            models.CheckConstraint(
                condition=~Q(status="paid")
                | (Q(paid_at__isnull=False) & ~Q(transaction_id="") & ~Q(receipt_no="")),
                name="payment_paid_complete",
            ),
            models.UniqueConstraint(
                fields=["provider", "transaction_id"],
                condition=~Q(transaction_id=""),
                name="payment_transaction_once",
            ),
        ]


class PaymentNotification(models.Model):
    """Every payment notification received, believed or not: applied (once per order, which
    the database guarantees), a duplicate of the applied one, or refused with its code."""

    class Outcome(models.TextChoices):
        APPLIED = "applied", "已入账"
        DUPLICATE = "duplicate", "重复通知"
        REFUSED = "refused", "已拒绝"

    provider = models.CharField(max_length=20)
    received_at = models.DateTimeField()
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    code = models.CharField(max_length=50, blank=True)
    out_trade_no = models.CharField(max_length=64, blank=True)
    transaction_id = models.CharField(max_length=64, blank=True)
    amount_fen = models.BigIntegerField(null=True, blank=True)
    body_sha256 = models.CharField(max_length=64)
    ip = models.CharField(max_length=64, blank=True)

    class Meta:
        verbose_name = "支付通知"
        verbose_name_plural = "支付通知"
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "out_trade_no"],
                condition=Q(outcome="applied"),
                name="payment_applied_once",
            )
        ]
