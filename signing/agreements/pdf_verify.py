"""Validation of agreement PDFs (signing/agreements/pdf.py): every signature checked with pyHanko
against the organisation's CA as the only trust root.

A signature passes when its bytes are intact, its CMS signature is valid, its certificate
chains to the CA and was valid *when the signature was time-stamped* (the per-agreement
certificate lives one day; the organisation's TSA token says when it was used), the
time-stamp token itself is intact and trusted, and it covers what it should: the last
signature the whole file, an earlier one its whole revision, with later revisions doing no
more than fill signature fields (pyHanko's difference analysis). The expected shape is the
applicant's signature, then optionally the seal, nothing else.

`pdf_validate` reads no rows and calls no network (fetching of revocation data is off);
`pdf_record_get` looks the verification code up in the database.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field
from datetime import datetime

from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives import serialization
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.diff_analysis import ModificationLevel
from pyhanko.sign.general import find_unique_cms_attribute
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko.sign.validation.status import SignatureCoverageLevel
from pyhanko_certvalidator import ValidationContext

from signing.agreements.ca import Authority, authority_load
from signing.models import Agreement, AgreementDocument

APPLICANT_FIELD, SEAL_FIELD = "applicant", "seal"
SEAL_UNIT = "电子印章"


@dataclass(frozen=True)
class SignatureCheck:
    field: str
    signer: str  # the certificate's CN: the applicant's name or the organisation's
    unit: str  # OU: 电子印章 for the seal certificate, empty for an applicant
    serial_number: str  # subject serialNumber: the verification code on applicant certs
    signed_at: datetime | None  # the time-stamp authority's time
    intact: bool = False
    valid: bool = False
    trusted: bool = False
    timestamp_ok: bool = False
    coverage: str = ""
    modification: str = ""
    problems: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass(frozen=True)
class PdfReport:
    sha256: str
    signatures: tuple[SignatureCheck, ...] = ()
    verification_code: str = ""
    problems: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return bool(self.signatures) and not self.problems and all(s.ok for s in self.signatures)

    @property
    def sealed(self) -> bool:
        return self.ok and [s.field for s in self.signatures] == [APPLICANT_FIELD, SEAL_FIELD]


def _timestamp_time(signer_info) -> datetime | None:
    """The gen time of the signature's time-stamp token, read before validation so the
    signer's certificate is judged at that moment; pyHanko then verifies the token itself and
    the check below insists that its verified time is the one used."""
    try:
        token = find_unique_cms_attribute(
            signer_info["unsigned_attrs"], "signature_time_stamp_token"
        )
    except (KeyError, ValueError):
        return None
    return token["content"]["encap_content_info"]["content"].parsed["gen_time"].native


def _subject(embedded) -> dict:
    try:
        return embedded.signer_cert.subject.native
    except Exception:  # a mangled certificate: report it as unknown, not as a crash
        return {}


def _problems(status, *, is_last: bool, moment: datetime | None) -> list[str]:
    problems = []
    # pyHanko judges validity and trust only for intact bytes: report the first failure.
    if not status.intact:
        problems.append("签名后文件内容已被改动（摘要不符）")
    elif not status.valid:
        problems.append("签名值无效")
    elif not status.trusted:
        problems.append("证书不受信任（非本机构 CA 签发，或签署时不在有效期内）")
    ts = status.timestamp_validity
    if ts is None:
        problems.append("缺少签名时间戳")
    elif not (ts.intact and ts.valid and ts.trusted):
        problems.append("签名时间戳无效或不受信任")
    elif moment is None or abs((ts.timestamp - moment).total_seconds()) > 1:
        problems.append("签名时间戳与验证时间不一致")
    if is_last and status.coverage != SignatureCoverageLevel.ENTIRE_FILE:
        problems.append("最后一个签名之后有未签名的追加内容")
    if not is_last and status.coverage < SignatureCoverageLevel.ENTIRE_REVISION:
        problems.append("签名未覆盖其修订版本")
    level = status.modification_level
    if level is not None and level > ModificationLevel.FORM_FILLING:
        problems.append("签名之后的增量更新超出了填写签名域的范围")
    if status.docmdp_ok is False:
        problems.append("签名之后的修改违反了文档修改权限")
    if not problems and not status.bottom_line:
        problems.append("签名验证未通过")
    return problems


def _check(embedded, *, root: asn1_x509.Certificate, is_last: bool) -> SignatureCheck:
    subject = _subject(embedded)
    base = {
        "field": str(embedded.field_name),
        "signer": subject.get("common_name", ""),
        "unit": subject.get("organizational_unit_name", ""),
        "serial_number": subject.get("serial_number", ""),
    }
    try:
        moment = _timestamp_time(embedded.signer_info)
        status = validate_pdf_signature(
            embedded,
            signer_validation_context=ValidationContext(
                trust_roots=[root], moment=moment, allow_fetching=False
            ),
            ts_validation_context=ValidationContext(trust_roots=[root], allow_fetching=False),
        )
    except Exception as exc:  # any failure to validate is a failed signature, not a 500
        return SignatureCheck(**base, signed_at=None, problems=(f"无法验证该签名：{exc}",))
    ts = status.timestamp_validity
    return SignatureCheck(
        **base,
        signed_at=ts.timestamp if ts is not None else None,
        intact=bool(status.intact),
        valid=bool(status.valid),
        trusted=bool(status.trusted),
        timestamp_ok=bool(ts and ts.intact and ts.valid and ts.trusted),
        coverage=status.coverage.name.lower() if status.coverage else "",
        modification=status.modification_level.name.lower() if status.modification_level else "",
        problems=tuple(_problems(status, is_last=is_last, moment=moment)),
    )


def pdf_validate(*, pdf: bytes, authority: Authority | None = None) -> PdfReport:
    """Validate every signature of an agreement PDF against the CA in `SIGNING["CA_DIR"]`
    (or `authority`) and return a PdfReport: `ok` when each signature passes and the
    signatures are the applicant's, then at most the seal. Never raises on a bad PDF: an
    unreadable or tampered file is a report with problems."""
    authority = authority or authority_load()
    root = asn1_x509.Certificate.load(authority.root_cert.public_bytes(serialization.Encoding.DER))
    sha256 = hashlib.sha256(pdf).hexdigest()
    try:
        embedded = list(PdfFileReader(io.BytesIO(pdf)).embedded_regular_signatures)
    except Exception as exc:  # not a PDF, or damaged beyond reading
        return PdfReport(sha256=sha256, problems=(f"无法读取 PDF：{exc}",))
    checks = tuple(
        _check(sig, root=root, is_last=i == len(embedded) - 1) for i, sig in enumerate(embedded)
    )
    problems = []
    names = [c.field for c in checks]
    if not checks:
        problems.append("文件中没有数字签名")
    elif names not in ([APPLICANT_FIELD], [APPLICANT_FIELD, SEAL_FIELD]):
        problems.append(f"签名结构不符：{names}（应为乙方签字，然后甲方盖章）")
    code = checks[0].serial_number if checks and checks[0].field == APPLICANT_FIELD else ""
    if checks and not code:
        problems.append("乙方证书中没有验证码")
    for check in checks:
        if check.field == SEAL_FIELD and check.unit != SEAL_UNIT:
            problems.append("盖章签名使用的不是本机构的电子印章证书")
        if check.field == APPLICANT_FIELD and check.unit == SEAL_UNIT:
            problems.append("乙方签字使用了电子印章证书")
    return PdfReport(
        sha256=sha256, signatures=checks, verification_code=code, problems=tuple(problems)
    )


def document_seal_validate(*, pdf: bytes, authority: Authority | None = None) -> PdfReport:
    """Validate a document the organisation issues alone (the deposit receipt): exactly one
    signature, in the `seal` field, made with a seal certificate (OU 电子印章) of the CA,
    intact, time-stamped and covering the whole file. Never raises on a bad PDF."""
    authority = authority or authority_load()
    root = asn1_x509.Certificate.load(authority.root_cert.public_bytes(serialization.Encoding.DER))
    sha256 = hashlib.sha256(pdf).hexdigest()
    try:
        embedded = list(PdfFileReader(io.BytesIO(pdf)).embedded_regular_signatures)
    except Exception as exc:  # not a PDF, or damaged beyond reading
        return PdfReport(sha256=sha256, problems=(f"无法读取 PDF：{exc}",))
    checks = tuple(
        _check(sig, root=root, is_last=i == len(embedded) - 1) for i, sig in enumerate(embedded)
    )
    problems = []
    if [c.field for c in checks] != [SEAL_FIELD]:
        problems.append(f"签名结构不符：{[c.field for c in checks]}（应为收款单位电子印章）")
    if any(c.unit != SEAL_UNIT for c in checks):
        problems.append("签名使用的不是本机构的电子印章证书")
    return PdfReport(sha256=sha256, signatures=checks, problems=tuple(problems))


@dataclass(frozen=True)
class PdfRecord:
    """What the system holds for a validated PDF's verification code."""

    known: bool  # an agreement has this verification code
    agreement_title: str = ""
    agreement_status: str = ""  # the display label: 已签字, 已盖章, 作废 …
    stored_stage: str = ""  # the stage label of the stored document with these exact bytes

    @property
    def ok(self) -> bool:
        return self.known and bool(self.stored_stage)


def pdf_record_get(*, report: PdfReport) -> PdfRecord:
    """Look the report's verification code up: the agreement and whether this exact file
    (by SHA-256) is one the system stored. A validly signed file the system did not store
    is not the agreement's document. Reads two rows; no locks."""
    if not report.verification_code:
        return PdfRecord(known=False)
    agreement = Agreement.objects.filter(verification_code=report.verification_code).first()
    if agreement is None:
        return PdfRecord(known=False)
    document = AgreementDocument.objects.filter(agreement=agreement, sha256=report.sha256).first()
    return PdfRecord(
        known=True,
        agreement_title=agreement.title,
        agreement_status=agreement.get_status_display(),
        stored_stage=document.get_stage_display() if document else "",
    )
