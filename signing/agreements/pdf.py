"""The agreement PDF: rendered, signed on the applicant's behalf (已签字), sealed (已盖章).

    pdf = agreement_pdf_render(agreement=a, characters=chars)   # text + handwritten characters
    pdf = pdf_sign_applicant(pdf=pdf, agreement=a, now=now)     # PAdES B-T, per-agreement cert
    pdf = pdf_seal(pdf=pdf, agreement=a, now=now)               # incremental update + seal stamp
    report = pdf_validate(pdf=pdf)                              # signing.agreements.pdf_verify

The text is set in the CJK TrueType font of `SIGNING["FONT_PATH"]`, embedded as a subset with
a ToUnicode map, so it shows everywhere and can be copied and searched. Both signatures are
PAdES (ETSI.CAdES.detached) with a signature time-stamp from the organisation's in-process
TSA (signing/agreements/ca.py): nothing here calls the network.

The applicant's revision also adds the empty 「seal」 field at the seal box of the signature
block, so the seal's position is fixed by what the applicant signed, and sealing only fills a
field: pyHanko's difference analysis then rates the seal's update as form filling, and the
applicant's signature stays valid. The signing calls run their own event loop (pyHanko's
sync API uses asyncio.run): call them from synchronous code.
"""

from __future__ import annotations

import asyncio
import io
import re
from collections.abc import Sequence
from datetime import datetime
from functools import lru_cache

from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from django.conf import settings
from PIL import Image
from pyhanko.pdf_utils.images import PdfImage
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.layout import AxisAlignment, Margins, SimpleBoxLayoutRule
from pyhanko.sign import fields, signers
from pyhanko.sign.signers.pdf_cms import PdfCMSSignedAttributes
from pyhanko.stamp import StaticStampStyle
from pyhanko_certvalidator.registry import SimpleCertificateStore
from reportlab.lib.pagesizes import A4
from reportlab.lib.utils import ImageReader
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen import canvas

from core.errors import Conflict, ValidationFailed
from core.fmt import date_zh
from core.urls import absolute_url
from signing.agreements.ca import Authority, applicant_certificate_issue, authority_load, seal_for
from signing.agreements.pdf_verify import APPLICANT_FIELD, SEAL_FIELD, PdfReport, pdf_validate
from signing.agreements.services import agreement_organisation
from signing.agreements.tsa import LocalTimeStamper
from signing.models import Agreement, SignatureCharacter

__all__ = [
    "APPLICANT_FIELD",
    "SEAL_FIELD",
    "PdfReport",
    "agreement_pdf_render",
    "pdf_seal",
    "pdf_seal_document",
    "pdf_sign_applicant",
    "pdf_validate",
]

FONT = "AnjuCJK"
PAGE_W, PAGE_H = A4
MARGIN_X, MARGIN_TOP, MARGIN_BOTTOM = 60.0, 64.0, 64.0
TEXT_W = PAGE_W - 2 * MARGIN_X
BODY_SIZE, LEADING, TITLE_SIZE = 11.0, 19.0, 18.0
FOOTER_Y = 32.0
# The signature block sits at the bottom of the last page; its top edge:
BLOCK_TOP = MARGIN_BOTTOM + 250.0
SEAL_BOX = (84, int(MARGIN_BOTTOM) + 86, 204, int(MARGIN_BOTTOM) + 206)  # x1, y1, x2, y2 (points)
CHAR_ROW = (312.0, MARGIN_BOTTOM + 122.0, PAGE_W - MARGIN_X)  # x1, y of the boxes' foot, x2
CHAR_BOX_MAX, CHAR_GAP = 52.0, 6.0
SIGNATURE_RESERVED = 8192  # bytes for each CMS signature container

NO_LINE_START = set("，。、；：？！）》」』】〕”’…—%,.;:?!)]}")
NO_LINE_END = set("（《「『【〔“‘([{")
_TOKEN = re.compile(r"[A-Za-z0-9@#&/_=+.:\-]+|\s|.", re.S)


@lru_cache(maxsize=1)
def _font() -> str:
    # Parsing the 5 MB collection costs ~0.5 s: once per process.
    pdfmetrics.registerFont(TTFont(FONT, settings.SIGNING["FONT_PATH"], subfontIndex=0))
    return FONT


@lru_cache(maxsize=8192)
def _char_width(ch: str) -> float:
    return pdfmetrics.stringWidth(ch, FONT, 1.0)


def _width(text: str, size: float) -> float:
    return sum(_char_width(ch) for ch in text) * size


def _wrap(paragraph: str, *, width: float, size: float) -> list[str]:
    """Break one paragraph into lines no wider than `width`: CJK may break between any two
    characters, Latin words and numbers stay whole unless wider than a line, closing
    punctuation never starts a line (it hangs into the margin) and opening punctuation never
    ends one."""

    def overflows(text: str, text_width: float) -> bool:
        if text_width <= width:
            return False
        return not (text[-1] in NO_LINE_START and text_width - _width(text[-1], size) <= width)

    lines: list[str] = []
    line, line_width = "", 0.0
    for token in _TOKEN.findall(paragraph):
        token_width = _width(token, size)
        if not line or token in NO_LINE_START or line_width + token_width <= width:
            line, line_width = line + token, line_width + token_width
        else:
            carry = ""
            while len(line) > 1 and line[-1] in NO_LINE_END:
                carry, line = line[-1] + carry, line[:-1]
            lines.append(line.rstrip())
            line = carry + token.lstrip()
            line_width = _width(line, size)
        while len(line) > 1 and overflows(line, line_width):  # a word wider than a line
            cut = max(
                k
                for k in range(1, len(line))
                if k == 1 or not overflows(line[:k], _width(line[:k], size))
            )
            lines.append(line[:cut])
            line = line[cut:]
            line_width = _width(line, size)
    lines.append(line.rstrip())
    return lines


def _local_date(at: datetime) -> str:
    return date_zh(at)  # the one date format of SMS texts, PDFs and pages


def _layout_pages(agreement: Agreement) -> list[list[tuple[float, float, str, float]]]:
    """Place the title and body: pages of (x, y, text, size). The last page keeps room for
    the signature block below BLOCK_TOP."""
    pages: list[list[tuple[float, float, str, float]]] = [[]]
    title_w = _width(agreement.title, TITLE_SIZE)
    y = PAGE_H - MARGIN_TOP
    pages[0].append(((PAGE_W - title_w) / 2, y, agreement.title, TITLE_SIZE))
    y -= TITLE_SIZE * 2
    for paragraph in agreement.rendered_text.replace("\r\n", "\n").split("\n"):
        for line in _wrap(paragraph, width=TEXT_W, size=BODY_SIZE):
            if y < MARGIN_BOTTOM + 20:
                pages.append([])
                y = PAGE_H - MARGIN_TOP
            if line:
                pages[-1].append((MARGIN_X, y, line, BODY_SIZE))
            y -= LEADING
    if y < BLOCK_TOP + 10:
        pages.append([])
    return pages


def verification_line(code: str, *, noun: str) -> str:
    """How a reader checks a document: the public verification page, never a command."""
    return f"验证方式：访问 {absolute_url(f'/verify/{code}')} 核验本{noun}"


def _signature_block(c: canvas.Canvas, agreement: Agreement, chars: Sequence[SignatureCharacter]):
    org = agreement_organisation(agreement)
    c.setLineWidth(0.6)
    c.line(MARGIN_X, BLOCK_TOP, PAGE_W - MARGIN_X, BLOCK_TOP)
    c.setFont(FONT, BODY_SIZE)
    c.drawString(MARGIN_X, BLOCK_TOP - 22, "甲方（盖章）：")
    for k, line in enumerate(_wrap(org, width=CHAR_ROW[0] - MARGIN_X - 16, size=BODY_SIZE)[:2]):
        c.drawString(MARGIN_X, BLOCK_TOP - 38 - 15 * k, line)
    c.drawString(CHAR_ROW[0], BLOCK_TOP - 22, "乙方（签字）：")
    c.setFont(FONT, 8.5)
    c.setFillGray(0.45)
    c.drawString(MARGIN_X, SEAL_BOX[1] - 14, "（电子印章，以数字签名为准）")
    c.drawString(MARGIN_X, SEAL_BOX[1] - 26, "盖章日期：以电子印章的签名时间为准")
    c.setFillGray(0)

    n = len(chars)
    x1, foot, x2 = CHAR_ROW
    box = min(CHAR_BOX_MAX, (x2 - x1 - CHAR_GAP * (n - 1)) / max(n, 1))
    c.setStrokeGray(0.55)
    c.setDash(2, 2)
    for i, ch in enumerate(chars):
        x = x1 + i * (box + CHAR_GAP)
        c.rect(x, foot, box, box, stroke=1, fill=0)
        image = ImageReader(io.BytesIO(bytes(ch.png)))
        pad = box * 0.06
        c.drawImage(
            image,
            x + pad,
            foot + pad,
            box - 2 * pad,
            box - 2 * pad,
            mask="auto",
            preserveAspectRatio=True,
        )
    c.setDash()
    c.setStrokeGray(0)
    signed_at = agreement.signed_at or max((ch.drawn_at for ch in chars), default=None)
    c.setFont(FONT, BODY_SIZE)
    if signed_at is not None:
        c.drawString(x1, foot - 24, f"签字日期：{_local_date(signed_at)}")

    code = agreement.verification_code
    c.setFont(FONT, 9.5)
    c.drawString(MARGIN_X, MARGIN_BOTTOM + 34, f"验证码：{code}")
    noun = "合同" if agreement.title.endswith("合同") else "协议"
    for k, line in enumerate(_wrap(verification_line(code, noun=noun), width=TEXT_W, size=9.5)):
        c.drawString(MARGIN_X, MARGIN_BOTTOM + 18 - 13 * k, line)


def agreement_pdf_render(
    *, agreement: Agreement, characters: Sequence[SignatureCharacter]
) -> bytes:
    """Render the agreement as an unsigned A4 PDF: title, `rendered_text` wrapped over as many
    pages as it needs, and on the last page the signature block (the organisation's seal box,
    one box per handwritten character in signer order, the date, the verification code and
    how to verify). Pure: reads no rows, writes nothing. Raises ValidationFailed
    (`signature_incomplete`) unless `characters` spell `agreement.signer_name` in order."""
    chars = sorted(characters, key=lambda ch: ch.index)
    if "".join(ch.expected for ch in chars) != agreement.signer_name or [
        ch.index for ch in chars
    ] != list(range(len(agreement.signer_name))):
        raise ValidationFailed("signature_incomplete", "签名字数与签署人姓名不符")
    _font()
    pages = _layout_pages(agreement)
    out = io.BytesIO()
    c = canvas.Canvas(
        out, pagesize=A4, pageCompression=1, initialFontName=FONT, initialFontSize=BODY_SIZE
    )
    c.setTitle(agreement.title)
    c.setAuthor(agreement_organisation(agreement))
    c.setSubject(f"验证码 {agreement.verification_code}")
    c.setCreator("安居 Anju")
    for number, page in enumerate(pages, start=1):
        for x, y, text, size in page:
            c.setFont(FONT, size)
            c.drawString(x, y, text)
        if number == len(pages):
            _signature_block(c, agreement, chars)
        c.setFont(FONT, 8.5)
        c.setFillGray(0.4)
        footer = f"第 {number} 页 / 共 {len(pages)} 页    验证码：{agreement.verification_code}"
        c.drawCentredString(PAGE_W / 2, FOOTER_Y, footer)
        c.setFillGray(0)
        c.showPage()
    c.save()
    return out.getvalue()


def _asn1_cert(cert: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


def _asn1_key(key) -> asn1_keys.PrivateKeyInfo:
    der = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return asn1_keys.PrivateKeyInfo.load(der)


def _time_stamper(authority: Authority, now: datetime) -> LocalTimeStamper:
    return LocalTimeStamper(
        cert=_asn1_cert(authority.tsa_cert),
        key=authority.tsa_key,
        chain=[_asn1_cert(authority.root_cert)],
        at=now,
    )


def _sign(
    *,
    writer: IncrementalPdfFileWriter,
    signer: signers.SimpleSigner,
    authority: Authority,
    now: datetime,
    field: str,
    reason: str,
    new_field: bool,
    stamp: StaticStampStyle | None = None,
) -> bytes:
    meta = signers.PdfSignatureMetadata(
        field_name=field,
        md_algorithm="sha256",
        subfilter=fields.SigSeedSubFilter.PADES,
        reason=reason,
        location="深圳",
    )
    pdf_signer = signers.PdfSigner(
        meta,
        signer,
        timestamper=_time_stamper(authority, now),
        stamp_style=stamp,
        new_field_spec=fields.SigFieldSpec(sig_field_name=field) if new_field else None,
    )
    return asyncio.run(_sign_at(pdf_signer, writer, now=now, new_field=new_field))


async def _sign_at(
    pdf_signer: signers.PdfSigner,
    writer: IncrementalPdfFileWriter,
    *,
    now: datetime,
    new_field: bool,
) -> bytes:
    """PdfSigner.async_sign_pdf, step by step, with the session's clock set to `now`: the
    signature dictionary's /M then agrees with the time-stamp and the certificate's validity
    (pyHanko otherwise reads the wall clock). A fixed reservation skips pyHanko's dry-run
    signature and dry-run time-stamp that estimate the size (the CMS is about 3 KB)."""
    session = pdf_signer.init_signing_session(writer, existing_fields_only=not new_field)
    session.system_time = now
    validation_info = await session.perform_presign_validation(writer)
    tbs = session.prepare_tbs_document(
        validation_info=validation_info, bytes_reserved=SIGNATURE_RESERVED
    )
    prepared, output = tbs.digest_tbs_document()
    signed = await tbs.perform_signature(
        document_digest=prepared.document_digest,
        pdf_cms_signed_attrs=PdfCMSSignedAttributes(signing_time=now),
    )
    await signed.post_signature_processing(output)
    assert isinstance(output, io.BytesIO)  # digest_tbs_document writes to a fresh BytesIO
    return output.getvalue()


def pdf_sign_applicant(*, pdf: bytes, agreement: Agreement, now: datetime) -> bytes:
    """Sign the rendered PDF on the applicant's behalf (已签字): issue the per-agreement
    certificate (signing/agreements/ca.py), sign once with its fresh key, drop the key. The same
    revision adds the empty seal field over the seal box. Returns the new PDF bytes.

    Order: the caller (signing.agreements.flow's submit step) calls this only after the face check passed
    and the SMS code was accepted. As a second line this refuses (Conflict
    `signature_not_ready`) an agreement that has not reached the handwritten-signature step,
    which the flow reaches only through 人脸识别通过 (a passed FaceCheck of this attempt).
    Reads no rows, locks nothing, publishes nothing."""
    if agreement.step < Agreement.Step.SIGNATURE_DRAWN:
        raise Conflict("signature_not_ready", "尚未完成人脸识别和手写签名，不能签署")
    authority = authority_load()
    issued = applicant_certificate_issue(agreement=agreement, now=now, authority=authority)
    signer = signers.SimpleSigner(
        signing_cert=_asn1_cert(issued.cert),
        signing_key=_asn1_key(issued.key),
        cert_registry=SimpleCertificateStore.from_certs([_asn1_cert(authority.root_cert)]),
    )
    del issued  # the key's only other reference is the signer's, gone when this returns
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    fields.append_signature_field(
        writer, fields.SigFieldSpec(sig_field_name=SEAL_FIELD, on_page=-1, box=SEAL_BOX)
    )
    return _sign(
        writer=writer,
        signer=signer,
        authority=authority,
        now=now,
        field=APPLICANT_FIELD,
        reason=f"乙方签署《{agreement.title}》 验证码 {agreement.verification_code}",
        new_field=True,
    )


def _seal_stamp(png: bytes) -> StaticStampStyle:
    image = Image.open(io.BytesIO(png))
    image.load()
    return StaticStampStyle(
        background=PdfImage(image),
        background_opacity=1.0,
        border_width=0,
        background_layout=SimpleBoxLayoutRule(
            x_align=AxisAlignment.ALIGN_MID,
            y_align=AxisAlignment.ALIGN_MID,
            margins=Margins.uniform(0),
        ),
    )


def pdf_seal(*, pdf: bytes, agreement: Agreement, now: datetime) -> bytes:
    """Seal a signed agreement PDF (已盖章): an incremental update that fills the seal field
    with the organisation's seal signature (seal certificate, PAdES B-T) and the seal image as
    its visible appearance. The bytes the applicant signed are kept as they are, so the first
    signature stays valid. Refuses (Conflict `pdf_invalid`) a PDF that does not validate or
    that is not this agreement's signed stage. Locks nothing, publishes nothing."""
    report = pdf_validate(pdf=pdf)
    if not report.ok or [s.field for s in report.signatures] != [APPLICANT_FIELD]:
        raise Conflict("pdf_invalid", "协议文件未通过签名验证，不能盖章")
    if report.verification_code != agreement.verification_code:
        raise Conflict("pdf_invalid", "协议文件与本协议不符，不能盖章")
    return _seal_sign(
        writer=IncrementalPdfFileWriter(io.BytesIO(pdf)),
        org_name=agreement_organisation(agreement),
        reason=f"甲方盖章 验证码 {agreement.verification_code}",
        now=now,
    )


def _seal_sign(
    *, writer: IncrementalPdfFileWriter, org_name: str, reason: str, now: datetime
) -> bytes:
    """Fill the existing seal field with `org_name`'s seal signature and seal image."""
    authority = authority_load()
    seal = seal_for(org_name=org_name, now=now, authority=authority)
    signer = signers.SimpleSigner(
        signing_cert=_asn1_cert(seal.cert),
        signing_key=_asn1_key(seal.key),
        cert_registry=SimpleCertificateStore.from_certs([_asn1_cert(authority.root_cert)]),
    )
    return _sign(
        writer=writer,
        signer=signer,
        authority=authority,
        now=now,
        field=SEAL_FIELD,
        reason=reason,
        new_field=False,
        stamp=_seal_stamp(seal.png),
    )


def pdf_seal_document(
    *, pdf: bytes, org_name: str, box: tuple[float, float, float, float], reason: str, now: datetime
) -> bytes:
    """Seal a document the organisation issues alone (the deposit receipt): add the seal field
    at `box` on the last page and fill it with `org_name`'s seal signature (PAdES B-T, seal
    image as its appearance), in one incremental update. Locks nothing, reads no rows."""
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    fields.append_signature_field(
        writer,
        fields.SigFieldSpec(
            sig_field_name=SEAL_FIELD,
            on_page=-1,
            box=(int(box[0]), int(box[1]), int(box[2]), int(box[3])),
        ),
    )
    return _seal_sign(writer=writer, org_name=org_name, reason=reason, now=now)
