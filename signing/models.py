"""E-signing: templates and consent texts (versioned), agreements, their QR tickets and
scans, the per-character signature, and the per-agreement evidence chain.

Statuses (explicit transitions in signing/agreements/transitions.py): 待签字 pending → 已签字 signed →
已盖章 sealed; a staff rejection sends signed back to pending; 作废 void when the window
ends unsigned; 已放弃 abandoned by the abandonment declaration 《放弃签约声明书》.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from django.db import models
from django.db.models import F, Q

from accounts.models import Family, User
from core.pii import EncryptedBinaryField, EncryptedCharField


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
    # SHA-256 of `body`, fixed when the version is created (signing/agreements/services.py
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
    kind = models.CharField(max_length=20, choices=ConsentKind.choices, verbose_name="类型")
    version = models.PositiveIntegerField(verbose_name="版本")
    title = models.CharField(max_length=100, verbose_name="标题")
    body = models.TextField(verbose_name="正文")
    created_at = models.DateTimeField(auto_now_add=True, verbose_name="创建时间")

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

    family = models.ForeignKey(
        Family, on_delete=models.PROTECT, related_name="agreements", verbose_name="家庭"
    )
    template = models.ForeignKey(
        AgreementTemplate, on_delete=models.PROTECT, verbose_name="协议模板"
    )
    template_sha256 = models.CharField(
        max_length=64, blank=True, verbose_name="模板哈希"
    )  # the version's body_sha256
    title = models.CharField(max_length=100, verbose_name="协议名称")
    rendered_text = models.TextField(verbose_name="协议正文")
    text_hash = models.CharField(max_length=64, verbose_name="正文哈希")  # sha256 of rendered_text
    signer_name = models.CharField(
        max_length=50, verbose_name="签署人姓名"
    )  # the characters to sign, one box each
    window_starts_at = models.DateTimeField("签约开始时间")
    window_ends_at = models.DateTimeField("签约截止时间")
    status = models.CharField(
        max_length=20, choices=Status.choices, default=Status.PENDING, verbose_name="状态"
    )
    step = models.PositiveSmallIntegerField(
        choices=Step.choices, default=Step.NONE, verbose_name="签署步骤"
    )
    attempt = models.PositiveSmallIntegerField(
        default=1, verbose_name="签署次数"
    )  # +1 after each staff rejection
    reject_reason = models.CharField(max_length=300, blank=True, verbose_name="退回原因")
    verification_code = models.CharField(max_length=16, unique=True, verbose_name="验证码")
    created_by = models.ForeignKey(
        User, on_delete=models.PROTECT, null=True, related_name="+", verbose_name="创建人"
    )
    created_at = models.DateTimeField(verbose_name="创建时间")
    pushed_at = models.DateTimeField(null=True, blank=True, verbose_name="推送时间")
    signed_at = models.DateTimeField(null=True, blank=True, verbose_name="签字时间")
    sealed_at = models.DateTimeField(null=True, blank=True, verbose_name="盖章时间")
    closed_at = models.DateTimeField(
        null=True, blank=True, verbose_name="作废/放弃时间"
    )  # void or abandoned
    context = models.JSONField(
        default=dict, verbose_name="正文变量"
    )  # the variables the text was rendered with

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

    agreement = models.ForeignKey(
        Agreement, on_delete=models.CASCADE, related_name="qr_tickets", verbose_name="协议"
    )
    purpose = models.CharField(
        max_length=10, choices=Purpose.choices, default=Purpose.SIGN, verbose_name="用途"
    )
    token = models.CharField(max_length=64, unique=True, verbose_name="令牌")
    short_code = models.CharField(max_length=12, unique=True, verbose_name="短码")
    created_at = models.DateTimeField(verbose_name="创建时间")
    expires_at = models.DateTimeField(verbose_name="过期时间")
    created_session_hash = models.CharField(
        max_length=64, blank=True, verbose_name="创建会话哈希"
    )  # the desktop's session

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

    ticket = models.ForeignKey(
        QrTicket, on_delete=models.CASCADE, related_name="sessions", verbose_name="二维码"
    )
    agreement = models.ForeignKey(
        Agreement, on_delete=models.CASCADE, related_name="signing_sessions", verbose_name="协议"
    )
    purpose = models.CharField(max_length=10, choices=QrTicket.Purpose.choices, verbose_name="用途")
    secret_hash = models.CharField(max_length=64, unique=True, verbose_name="密钥哈希")
    device_hash = models.CharField(max_length=64, verbose_name="设备哈希")
    ip = models.CharField(max_length=64, blank=True, verbose_name="IP地址")
    user_agent = models.CharField(max_length=400, blank=True, verbose_name="浏览器标识")
    created_at = models.DateTimeField(verbose_name="创建时间")
    expires_at = models.DateTimeField(verbose_name="过期时间")
    ended_at = models.DateTimeField(null=True, blank=True, verbose_name="结束时间")
    end_reason = models.CharField(
        max_length=20, choices=EndReason.choices, blank=True, verbose_name="结束原因"
    )

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
    ticket = models.ForeignKey(
        QrTicket, on_delete=models.CASCADE, related_name="scans", verbose_name="二维码"
    )
    session = models.ForeignKey(
        SigningSession,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name="签署会话",
    )
    at = models.DateTimeField(verbose_name="扫码时间")
    user = models.ForeignKey(
        User, on_delete=models.SET_NULL, null=True, blank=True, verbose_name="用户"
    )
    accepted = models.BooleanField(verbose_name="是否接受")
    reason = models.CharField(max_length=40, blank=True, verbose_name="原因")
    ip = models.CharField(max_length=64, blank=True, verbose_name="IP地址")
    user_agent = models.CharField(max_length=400, blank=True, verbose_name="浏览器标识")

    class Meta:
        verbose_name = "扫码记录"
        verbose_name_plural = "扫码记录"


class SignatureCharacter(models.Model):
    """One handwritten character, as strokes (the evidence) and the PNG the server rendered
    from them (never a client image)."""

    agreement = models.ForeignKey(
        Agreement, on_delete=models.CASCADE, related_name="characters", verbose_name="协议"
    )
    attempt = models.PositiveSmallIntegerField(verbose_name="签署次数")
    index = models.PositiveSmallIntegerField(verbose_name="字序")  # position in signer_name
    expected = models.CharField(max_length=1, verbose_name="应写的字")
    strokes = models.JSONField(verbose_name="笔画")
    box_width = models.PositiveSmallIntegerField(verbose_name="签字框宽")
    box_height = models.PositiveSmallIntegerField(verbose_name="签字框高")
    png = models.BinaryField(verbose_name="图像")
    png_sha256 = models.CharField(max_length=64, verbose_name="图像哈希")
    strokes_sha256 = models.CharField(max_length=64, verbose_name="笔画哈希")
    drawn_at = models.DateTimeField(verbose_name="书写时间")

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

    agreement = models.ForeignKey(
        Agreement, on_delete=models.PROTECT, related_name="evidence", verbose_name="协议"
    )
    seq = models.PositiveIntegerField(verbose_name="序号")
    kind = models.CharField(max_length=40, verbose_name="类型")
    actor = models.ForeignKey(
        User, on_delete=models.PROTECT, null=True, related_name="+", verbose_name="操作人"
    )
    at = models.DateTimeField(verbose_name="时间")
    ip = models.CharField(max_length=64, blank=True, verbose_name="IP地址")
    user_agent = models.CharField(max_length=400, blank=True, verbose_name="浏览器标识")
    data = models.JSONField(verbose_name="内容")
    prev_hash = models.CharField(max_length=64, verbose_name="前一条哈希")
    hash = models.CharField(max_length=64, verbose_name="哈希")

    class Meta:
        verbose_name = "签约证据"
        verbose_name_plural = "签约证据"
        ordering = ["agreement", "seq"]
        constraints = [models.UniqueConstraint(fields=["agreement", "seq"], name="evidence_seq")]

    def __str__(self) -> str:
        return f"第{self.seq}条"


class EvidenceHead(models.Model):
    """The signed head of one agreement's evidence chain (docs/TRANSPARENCY.md, 「Evidence
    packages」): how many rows it has and the last row's hash, signed with the log key
    (core/logkey.py, never in this database) in the same transaction as each append. A cut
    tail no longer matches the count; a row rewritten with every later hash recomputed no
    longer ends at the signed hash; and the head cannot be re-signed from the database."""

    agreement = models.OneToOneField(
        Agreement,
        on_delete=models.PROTECT,
        primary_key=True,
        related_name="evidence_head",
        verbose_name="协议",
    )
    count = models.PositiveIntegerField(verbose_name="条目数")
    last_hash = models.CharField(max_length=64, verbose_name="最后一条哈希")
    time = models.DateTimeField(verbose_name="签名时间")
    key_id = models.CharField(max_length=16, verbose_name="密钥标识")
    signature = models.CharField(max_length=120, verbose_name="签名")

    class Meta:
        verbose_name = "签约证据签名头"
        verbose_name_plural = "签约证据签名头"


class AgreementDocument(models.Model):
    """A PDF of the agreement: `signed` (applicant's signature) then `sealed` (incremental
    update with the organisation's seal)."""

    class Stage(models.TextChoices):
        SIGNED = "signed", "已签字"
        SEALED = "sealed", "已盖章"

    agreement = models.ForeignKey(
        Agreement, on_delete=models.CASCADE, related_name="documents", verbose_name="协议"
    )
    attempt = models.PositiveSmallIntegerField(verbose_name="签署次数")
    stage = models.CharField(max_length=10, choices=Stage.choices, verbose_name="阶段")
    pdf = models.BinaryField(verbose_name="PDF文件")
    sha256 = models.CharField(max_length=64, verbose_name="文件哈希")
    created_at = models.DateTimeField(verbose_name="生成时间")

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

    agreement = models.ForeignKey(
        Agreement, on_delete=models.CASCADE, related_name="face_checks", verbose_name="协议"
    )
    attempt = models.PositiveSmallIntegerField(verbose_name="签署次数")
    provider = models.CharField(max_length=20, verbose_name="服务商")
    order_id = models.CharField(max_length=64, unique=True, verbose_name="核验单号")
    # The phone's signing session that started it (None: a logged-in applicant's own page).
    signing_session = models.ForeignKey(
        "SigningSession",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name="签署会话",
    )
    # Started by a phone proving itself again after the flow's face step (a second phone, a
    # takeover; signing/agreements/phone.py `face_reverify_needed`), not as the flow's step.
    # Kept because once such a check passes, the phone counts as verified and nothing else
    # tells the two apart.
    reverify = models.BooleanField(default=False, verbose_name="再次核验")
    status = models.CharField(
        max_length=10, choices=Status.choices, default=Status.STARTED, verbose_name="状态"
    )
    score = models.FloatField(null=True, blank=True, verbose_name="比对分数")
    result_id = models.CharField(max_length=100, blank=True, verbose_name="结果编号")
    created_at = models.DateTimeField(verbose_name="创建时间")
    completed_at = models.DateTimeField(null=True, blank=True, verbose_name="完成时间")

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

    Its stage is derived (`lease_stage` below) from these facts and the agreement's
    status and step, never stored, so it cannot drift from them."""

    agreement = models.OneToOneField(
        Agreement, on_delete=models.PROTECT, related_name="lease", verbose_name="协议"
    )
    allocation = models.OneToOneField(
        "selection.Allocation",
        on_delete=models.PROTECT,
        related_name="lease",
        verbose_name="选房结果",
    )
    unit_label = models.CharField("房号", max_length=50)
    monthly_rent = models.DecimalField("月租金（元）", max_digits=9, decimal_places=2)
    deposit_fen = models.PositiveIntegerField("押金（分）")
    # 租金托收, confirmed for the agreement's attempt `bank_attempt` (0: never); a staff
    # rejection starts a new attempt, so the details are confirmed again.
    bank = models.CharField("托收银行", max_length=10, choices=Bank.choices, blank=True)
    # Encrypted at rest (core/pii.py); None until confirmed. Shown masked (`account_masked`).
    account_number = EncryptedCharField("银行账号", max_length=19, null=True, blank=True)
    account_holder = models.CharField("账户名", max_length=50, blank=True)
    bank_attempt = models.PositiveSmallIntegerField(default=0, verbose_name="银行卡提交次数")
    bank_confirmed_at = models.DateTimeField(null=True, blank=True, verbose_name="银行卡确认时间")
    deposit_paid_at = models.DateTimeField("押金缴纳时间", null=True, blank=True)
    created_at = models.DateTimeField(verbose_name="创建时间")

    class Meta:
        verbose_name = "租赁签约"
        verbose_name_plural = "租赁签约"
        constraints = [
            models.CheckConstraint(condition=Q(deposit_fen__gt=0), name="lease_deposit_positive"),
            models.CheckConstraint(
                condition=Q(bank_attempt=0) | (~Q(bank="") & Q(account_number__isnull=False)),
                name="lease_bank_complete",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.unit_label} 租赁签约"

    @property
    def account_masked(self) -> str:
        n = self.account_number
        return f"{n[:4]} **** **** {n[-4:]}" if n else ""


class LeaseStage(models.TextChoices):
    """Where a lease stands (its page's steps), derived by `lease_stage` from the facts."""

    INFO = "info", "完善承租信息"
    FACE = "face", "人脸识别"
    CONTRACT = "contract", "签订合同"
    DEPOSIT = "deposit", "押金缴纳"
    REVIEW = "review", "待审核"
    APPROVED = "approved", "审核通过"
    CLOSED = "closed", "已结束"


def lease_stage(lease: Lease, agreement: Agreement | None = None) -> str:
    """Where the lease stands, from the agreement's status and step and the lease's facts."""
    agreement = agreement or lease.agreement
    status = agreement.status
    if status == Agreement.Status.SEALED:
        return LeaseStage.APPROVED
    if status in (Agreement.Status.VOID, Agreement.Status.ABANDONED):
        return LeaseStage.CLOSED
    if status == Agreement.Status.SIGNED:
        return LeaseStage.REVIEW if lease.deposit_paid_at else LeaseStage.DEPOSIT
    if lease.bank_attempt != agreement.attempt:
        return LeaseStage.INFO
    return LeaseStage.FACE if agreement.step < Agreement.Step.FACE_VERIFIED else LeaseStage.CONTRACT


def lease_submitted_at(lease: Lease, agreement: Agreement | None = None) -> datetime | None:
    """When the family's signing application was last submitted (提交时间), from the facts, as
    the stage is: once the contract is signed with the deposit paid, the later of the two.
    The first attempt is submitted by the payment; an attempt signed again after a staff
    rejection, by its signature (the paid deposit is kept). None before it is submitted."""
    agreement = agreement or lease.agreement
    paid_at = lease.deposit_paid_at
    if paid_at is None or agreement.status not in (
        Agreement.Status.SIGNED,
        Agreement.Status.SEALED,
    ):
        return None
    return max(paid_at, agreement.signed_at) if agreement.signed_at else paid_at


def lease_stage_filter(stage: str) -> Q:
    """The leases at `stage`, as a filter on Lease: the same facts `lease_stage` reads, so
    staff can list the leases of a stage (the admin's 阶段 filter)."""
    status = Agreement.Status
    pending = Q(agreement__status=status.PENDING)
    info_done = Q(bank_attempt=F("agreement__attempt"))
    face_done = Q(agreement__step__gte=Agreement.Step.FACE_VERIFIED)
    filters: dict[str, Q] = {
        LeaseStage.APPROVED: Q(agreement__status=status.SEALED),
        LeaseStage.CLOSED: Q(agreement__status__in=[status.VOID, status.ABANDONED]),
        LeaseStage.REVIEW: Q(agreement__status=status.SIGNED, deposit_paid_at__isnull=False),
        LeaseStage.DEPOSIT: Q(agreement__status=status.SIGNED, deposit_paid_at__isnull=True),
        LeaseStage.INFO: pending & ~info_done,
        LeaseStage.FACE: pending & info_done & ~face_done,
        LeaseStage.CONTRACT: pending & info_done & face_done,
    }
    return filters[stage]


# The QR code the desktop shows at each stage a phone does (guide 000: face, contract, deposit).
LEASE_QR_PURPOSE: dict[str, str] = {
    LeaseStage.FACE: QrTicket.Purpose.FACE,
    LeaseStage.CONTRACT: QrTicket.Purpose.SIGN,
    LeaseStage.DEPOSIT: QrTicket.Purpose.DEPOSIT,
}


class CardPhoto(models.Model):
    """A photo of the bank card, as re-encoded by signing/lease/card_photos.py (never the upload itself:
    no EXIF, no trailing bytes). Kept in the database, outside any web root, and served only
    to the applicant and to staff. Every upload is kept; the newest of a side is current."""

    class Side(models.TextChoices):
        FRONT = "front", "银行卡正面"
        BACK = "back", "银行卡反面"

    lease = models.ForeignKey(
        Lease, on_delete=models.CASCADE, related_name="photos", verbose_name="租赁签约"
    )
    side = models.CharField(max_length=5, choices=Side.choices, verbose_name="正反面")
    image = EncryptedBinaryField(verbose_name="图像")  # AES-256-GCM, core/pii.py
    content_type = models.CharField(max_length=20, verbose_name="文件类型")
    width = models.PositiveIntegerField(verbose_name="宽度")
    height = models.PositiveIntegerField(verbose_name="高度")
    sha256 = models.CharField(max_length=64, verbose_name="文件哈希")
    source_sha256 = models.CharField(
        max_length=64, verbose_name="原始文件哈希"
    )  # the upload as received, as evidence
    source_format = models.CharField(max_length=10, verbose_name="原始格式")
    uploaded_at = models.DateTimeField(verbose_name="上传时间")

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

    class RefundStatus(models.TextChoices):
        NONE = "", "无退款"
        REQUESTED = "requested", "待提交退款"
        PROCESSING = "processing", "退款处理中"
        REFUNDED = "refunded", "已退款"
        FAILED = "failed", "退款异常"

    lease = models.OneToOneField(
        Lease, on_delete=models.PROTECT, related_name="payment", verbose_name="租赁签约"
    )
    provider = models.CharField(max_length=20, verbose_name="支付渠道")
    out_trade_no = models.CharField(max_length=32, unique=True, verbose_name="商户订单号")
    amount_fen = models.PositiveIntegerField(verbose_name="金额（分）")
    currency = models.CharField(max_length=3, default="CNY", verbose_name="币种")
    prepay_id = models.CharField(max_length=64, blank=True, verbose_name="预支付编号")
    status = models.CharField(
        max_length=10, choices=Status.choices, default=Status.CREATED, verbose_name="状态"
    )
    transaction_id = models.CharField(max_length=64, blank=True, verbose_name="支付流水号")
    receipt_no = models.CharField(max_length=32, blank=True, verbose_name="收据编号")
    created_at = models.DateTimeField(verbose_name="下单时间")
    paid_at = models.DateTimeField(null=True, blank=True, verbose_name="缴费时间")
    # The provider's order for `out_trade_no` (one per attempt: a closed order's number is
    # never reused, so a new attempt gets a new number after the old order is closed).
    attempt = models.PositiveSmallIntegerField(default=1, verbose_name="下单次数")
    closed_at = models.DateTimeField(null=True, blank=True, verbose_name="订单关闭时间")
    # The refund of a paid deposit when the lease is voided or abandoned (one per order).
    refund_status = models.CharField(
        max_length=12, choices=RefundStatus.choices, blank=True, verbose_name="退款状态"
    )
    out_refund_no = models.CharField(max_length=64, blank=True, verbose_name="商户退款单号")
    refund_id = models.CharField(max_length=64, blank=True, verbose_name="退款流水号")
    refund_requested_at = models.DateTimeField(null=True, blank=True, verbose_name="申请退款时间")
    refunded_at = models.DateTimeField(null=True, blank=True, verbose_name="退款到账时间")

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
            models.UniqueConstraint(
                fields=["out_refund_no"],
                condition=~Q(out_refund_no=""),
                name="payment_refund_no_once",
            ),
            models.CheckConstraint(
                condition=Q(refund_status="") | (Q(status="paid") & ~Q(out_refund_no="")),
                name="payment_refund_of_paid",
            ),
        ]


class PaymentNotification(models.Model):
    """Every payment notification received, believed or not: applied (once per order, which
    the database guarantees), a duplicate of the applied one, or refused with its code."""

    class Outcome(models.TextChoices):
        APPLIED = "applied", "已入账"
        DUPLICATE = "duplicate", "重复通知"
        REFUSED = "refused", "已拒绝"

    class Kind(models.TextChoices):
        PAYMENT = "payment", "支付"
        REFUND = "refund", "退款"

    provider = models.CharField(max_length=20, verbose_name="支付渠道")
    kind = models.CharField(
        max_length=10, choices=Kind.choices, default=Kind.PAYMENT, verbose_name="通知类型"
    )
    received_at = models.DateTimeField(verbose_name="接收时间")
    outcome = models.CharField(max_length=10, choices=Outcome.choices, verbose_name="处理结果")
    code = models.CharField(max_length=50, blank=True, verbose_name="错误码")
    out_trade_no = models.CharField(max_length=64, blank=True, verbose_name="商户订单号")
    transaction_id = models.CharField(max_length=64, blank=True, verbose_name="支付流水号")
    out_refund_no = models.CharField(max_length=64, blank=True, verbose_name="商户退款单号")
    amount_fen = models.BigIntegerField(null=True, blank=True, verbose_name="金额（分）")
    body_sha256 = models.CharField(max_length=64, verbose_name="报文哈希")
    ip = models.CharField(max_length=64, blank=True, verbose_name="IP地址")

    class Meta:
        verbose_name = "支付通知"
        verbose_name_plural = "支付通知"
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "out_trade_no"],
                condition=Q(outcome="applied", kind="payment"),
                name="payment_applied_once",
            ),
            models.UniqueConstraint(
                fields=["provider", "out_refund_no"],
                condition=Q(outcome="applied", kind="refund"),
                name="payment_refund_applied_once",
            ),
        ]

    def __str__(self) -> str:
        return f"支付通知 #{self.pk}"
