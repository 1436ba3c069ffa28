"""Read models of the applicant's pages: an agreement and a lease as the API shows them.

Each selector returns frozen dataclasses (the API's output serializers in mobile_api/ turn
them into JSON and into the OpenAPI schema) and has one query plan that does not grow with
the number of rows: the agreement list is one query whatever the number of agreements.
Policy that used to live in the views (what an unverified phone may see, which stage a lease
is at, when the materials can be downloaded) is decided here."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import OuterRef, Subquery

from accounts.validators import mask_name
from signing.agreements.consult import ConsultHelp, consult_help
from signing.agreements.documents import document_latest
from signing.lease.services import lease_window_end
from signing.models import (
    Agreement,
    CardPhoto,
    DepositPayment,
    Lease,
    LeaseStage,
    SignatureCharacter,
    lease_stage,
    lease_submitted_at,
)

LEASE_STAGES = (
    LeaseStage.INFO,
    LeaseStage.FACE,
    LeaseStage.CONTRACT,
    LeaseStage.DEPOSIT,
    LeaseStage.REVIEW,
)


@dataclass(frozen=True)
class AgreementSummary:
    id: int
    title: str
    status: str
    status_label: str
    step: int
    step_label: str
    next_step: int | None  # None once the agreement is no longer pending
    attempt: int
    window_starts_at: datetime
    window_ends_at: datetime
    signer_boxes: int
    reject_reason: str
    verification_code: str
    signed_at: datetime | None
    sealed_at: datetime | None
    lease: int | None  # the lease built on this agreement, if any
    help: ConsultHelp  # 咨询电话 and hours, wherever a page says 请拨打咨询电话


@dataclass(frozen=True)
class AgreementText:
    """The text and what is signed; shown to a login or a phone that passed the face check."""

    text: str
    text_sha256: str
    signer_name: str
    characters_drawn: list[int]


@dataclass(frozen=True)
class AgreementDetail:
    """The phone flow's view: the summary, the signer's (masked) details and, once the
    signer is verified, the text (`content` None until then)."""

    summary: AgreementSummary
    real_name: str
    id_number_masked: str
    mobile_masked: str
    content: AgreementText | None


def _summary(agreement: Agreement, lease_id: int | None) -> AgreementSummary:
    pending = agreement.status == Agreement.Status.PENDING
    return AgreementSummary(
        id=agreement.pk,
        title=agreement.title,
        status=agreement.status,
        status_label=agreement.get_status_display(),
        step=agreement.step,
        step_label=agreement.get_step_display(),
        next_step=agreement.step + 1 if pending else None,
        attempt=agreement.attempt,
        window_starts_at=agreement.window_starts_at,
        window_ends_at=agreement.window_ends_at,
        signer_boxes=len(agreement.signer_name),
        reject_reason=agreement.reject_reason,
        verification_code=agreement.verification_code,
        signed_at=agreement.signed_at,
        sealed_at=agreement.sealed_at,
        lease=lease_id,
        help=consult_help(agreement.template),
    )


def _lease_id_subquery() -> Subquery:
    return Subquery(Lease.objects.filter(agreement=OuterRef("pk")).values("pk")[:1])


def agreement_list(*, applicant) -> list[AgreementSummary]:
    """The family's agreements, newest first: one query (template joined, lease id
    annotated), whatever their number."""
    agreements = (
        Agreement.objects.filter(family__main_applicant=applicant)
        .select_related("template")
        .annotate(lease_pk=_lease_id_subquery())
        .order_by("-created_at")
    )
    return [_summary(a, a.lease_pk) for a in agreements]


def agreement_summary(*, agreement: Agreement) -> AgreementSummary:
    """One agreement already loaded (a service's result): its lease id and template in one
    query."""
    row = (
        Agreement.objects.filter(pk=agreement.pk)
        .select_related("template")
        .annotate(lease_pk=_lease_id_subquery())
        .get()
    )
    # The service's instance is the truth for its own fields (it may have just changed them).
    agreement.template = row.template
    return _summary(agreement, row.lease_pk)


def agreement_detail(*, agreement: Agreement, verified: bool) -> AgreementDetail:
    """The phone flow's view of `agreement`. `verified`: the applicant's own login or a phone
    that passed this attempt's face check; otherwise the name is masked and no text shown."""
    applicant = agreement.family.main_applicant
    content = None
    if verified:
        drawn = SignatureCharacter.objects.filter(
            agreement=agreement, attempt=agreement.attempt
        ).values_list("index", flat=True)
        content = AgreementText(
            text=agreement.rendered_text,
            text_sha256=agreement.text_hash,
            signer_name=agreement.signer_name,
            characters_drawn=sorted(drawn),
        )
    return AgreementDetail(
        summary=agreement_summary(agreement=agreement),
        real_name=applicant.real_name if verified else mask_name(applicant.real_name),
        id_number_masked=applicant.id_number_masked,
        mobile_masked=applicant.mobile_masked,
        content=content,
    )


@dataclass(frozen=True)
class LeaseUnit:
    label: str
    round: str
    building: str
    number: str
    floor: int
    layout: str
    orientation: str
    area: str


@dataclass(frozen=True)
class LeaseBank:
    bank: str
    bank_label: str
    account_masked: str
    account_holder: str
    confirmed: bool


@dataclass(frozen=True)
class LeasePhoto:
    sha256: str
    uploaded_at: datetime


@dataclass(frozen=True)
class LeasePayment:
    status: str
    status_label: str
    out_trade_no: str
    paid_at: datetime | None
    receipt_no: str


@dataclass(frozen=True)
class LeaseDetails:
    """What only the applicant's login or a verified phone sees: the unit, the amounts, the
    bank details, the photos, the payment."""

    unit: LeaseUnit
    monthly_rent: str
    deposit: str  # yuan, two decimals
    deposit_fen: int
    lease_years: int
    name: str
    mobile_masked: str
    bank: LeaseBank
    photos: dict[str, LeasePhoto | None]  # by side: front, back
    payment: LeasePayment | None
    submitted_at: datetime | None
    materials: dict[str, bool]  # contract, receipt: downloadable once approved


@dataclass(frozen=True)
class LeaseView:
    id: int
    stage: str
    stage_label: str
    agreement: AgreementSummary
    help: ConsultHelp
    details: LeaseDetails | None  # None: an unverified phone sees where the lease stands only


def fen_text(value: int) -> str:
    return f"{value // 100}.{value % 100:02d}"


def _lease_queryset():
    return Lease.objects.select_related(
        "agreement__family__main_applicant",
        "agreement__template",
        "allocation__unit",
        "allocation__round",
    )


def _photos_by_lease(lease_ids: list[int]) -> dict[int, dict[str, LeasePhoto]]:
    """The current photo of each side of each lease, in one query (no image bytes)."""
    current: dict[int, dict[str, LeasePhoto]] = {}
    rows = (
        CardPhoto.objects.filter(lease_id__in=lease_ids)
        .order_by("lease_id", "side", "-uploaded_at", "-id")
        .values_list("lease_id", "side", "sha256", "uploaded_at")
    )
    for lease_id, side, sha256, uploaded_at in rows:
        current.setdefault(lease_id, {}).setdefault(
            side, LeasePhoto(sha256=sha256, uploaded_at=uploaded_at)
        )
    return current


def _lease_view(
    lease: Lease,
    *,
    verified: bool,
    photos: dict[str, LeasePhoto],
    payment: DepositPayment | None,
) -> LeaseView:
    agreement = lease.agreement
    stage = lease_stage(lease, agreement)
    summary = _summary(agreement, lease.pk)
    if not verified:
        return LeaseView(
            id=lease.pk,
            stage=stage,
            stage_label=LeaseStage(stage).label,
            agreement=summary,
            help=summary.help,
            details=None,
        )
    applicant = agreement.family.main_applicant
    unit = lease.allocation.unit
    approved = stage == LeaseStage.APPROVED
    details = LeaseDetails(
        unit=LeaseUnit(
            label=lease.unit_label,
            round=lease.allocation.round.name,
            building=unit.building,
            number=unit.number,
            floor=unit.floor,
            layout=unit.get_layout_display(),
            orientation=unit.get_orientation_display(),
            area=str(unit.area),
        ),
        monthly_rent=str(lease.monthly_rent),
        deposit=fen_text(lease.deposit_fen),
        deposit_fen=lease.deposit_fen,
        lease_years=lease.allocation.round.lease_years,
        name=applicant.real_name,
        mobile_masked=applicant.mobile_masked,
        bank=LeaseBank(
            bank=lease.bank,
            bank_label=lease.get_bank_display() if lease.bank else "",
            account_masked=lease.account_masked,
            account_holder=lease.account_holder,
            confirmed=lease.bank_attempt == agreement.attempt,
        ),
        photos={side.value: photos.get(side.value) for side in CardPhoto.Side},
        payment=LeasePayment(
            status=payment.status,
            status_label=payment.get_status_display(),
            out_trade_no=payment.out_trade_no,
            paid_at=payment.paid_at,
            receipt_no=payment.receipt_no,
        )
        if payment
        else None,
        submitted_at=lease_submitted_at(lease, agreement),
        materials={
            "contract": approved and document_latest(agreement=agreement) is not None,
            "receipt": approved and payment is not None,
        },
    )
    return LeaseView(
        id=lease.pk,
        stage=stage,
        stage_label=LeaseStage(stage).label,
        agreement=summary,
        help=summary.help,
        details=details,
    )


def lease_view(*, lease_id: int, verified: bool = True) -> LeaseView:
    """One lease for its pages (the caller has checked who asks). `verified`: False for a
    phone's signing session that has not passed this attempt's face check."""
    lease = _lease_queryset().get(pk=lease_id)
    if not verified:
        return _lease_view(lease, verified=False, photos={}, payment=None)
    payment = DepositPayment.objects.filter(lease_id=lease.pk).first()
    photos = _photos_by_lease([lease.pk]).get(lease.pk, {})
    return _lease_view(lease, verified=True, photos=photos, payment=payment)


def lease_views(*, applicant) -> list[LeaseView]:
    """网上签约记录: the family's leases, newest first, in a fixed number of queries."""
    leases = list(
        _lease_queryset()
        .filter(agreement__family__main_applicant=applicant)
        .order_by("-created_at")
    )
    ids = [lease.pk for lease in leases]
    payments = {p.lease_id: p for p in DepositPayment.objects.filter(lease_id__in=ids)}
    photos = _photos_by_lease(ids)
    return [
        _lease_view(
            lease, verified=True, photos=photos.get(lease.pk, {}), payment=payments.get(lease.pk)
        )
        for lease in leases
    ]


SIGNING_STATUSES = ("todo", "submitted", "approved", "closed")  # AllocationSigning.status


@dataclass(frozen=True)
class AllocationSigning:
    """Where the signing of an allocation's lease stands, for the result page's sentence:
    "todo" (with the deadline: the lease's, or the one `lease_start` will give it),
    "submitted" (under review), "approved", "closed" (void or abandoned)."""

    status: str
    deadline: datetime | None


def allocation_signing(*, allocation) -> AllocationSigning:
    lease = Lease.objects.select_related("agreement").filter(allocation=allocation).first()
    if lease is None:
        return AllocationSigning("todo", lease_window_end(allocation))
    stage = lease_stage(lease, lease.agreement)
    if stage == LeaseStage.REVIEW:
        return AllocationSigning("submitted", None)
    if stage == LeaseStage.APPROVED:
        return AllocationSigning("approved", None)
    if stage == LeaseStage.CLOSED:
        return AllocationSigning("closed", None)
    return AllocationSigning("todo", lease.agreement.window_ends_at)
