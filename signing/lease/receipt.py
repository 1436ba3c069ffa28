"""The deposit receipt (押金收据): one A5 landscape page, set in the CJK font the agreement PDF
uses (signing/agreements/pdf.py registers it once per process, embedded as a searchable subset), sealed
by the issuing organisation.

    pdf = deposit_receipt_issue(now=now, receipt_no=..., payer_name=..., amount_fen=360000, ...)
    report = receipt_validate(pdf=pdf)                       # signing.agreements.pdf_verify

`deposit_receipt_pdf` renders the page: pure, reads no rows and no clock, deterministic
(reportlab's invariant mode: fixed dates and document id), so the same payment always gives
the same page. `deposit_receipt_issue` renders it and adds the organisation's seal as a PAdES
signature (the same seal certificate and time-stamp machinery as an agreement's seal,
signing/agreements/pdf.py) whose appearance is the seal image over the issuer's row. `amount_capital` writes an amount in
Chinese capital numerals (大写) as the payment-settlement rules for bills ask.
"""

from __future__ import annotations

import io
import re
from datetime import datetime
from zoneinfo import ZoneInfo

from reportlab.lib.pagesizes import A5, landscape
from reportlab.pdfgen import canvas

from core.fmt import datetime_zh
from signing.agreements.pdf import FONT, _font, _width, _wrap

__all__ = [
    "amount_capital",
    "amount_yuan",
    "deposit_receipt_issue",
    "deposit_receipt_pdf",
    "deposit_receipt_seal",
    "receipt_validate",
]

SHANGHAI = ZoneInfo("Asia/Shanghai")
PAGE_W, PAGE_H = landscape(A5)
MARGIN = 36.0
TITLE_SIZE, BODY_SIZE, SMALL_SIZE = 20.0, 10.5, 8.5
ROW_PAD, LINE_GAP = 5.0, 14.0  # padding above/below a row's text; leading inside a row
LABEL_W = 118.0  # the label column
CHANNEL = "微信支付"
# The seal (a square of this side, in points) is stamped at the right of the table's last
# rows, centred on the issuer (收款单位) row, as a paper receipt is stamped.
RECEIPT_SEAL_SIZE = 100.0
SEAL_RIGHT = PAGE_W - MARGIN - 30
NOTE_W = PAGE_W - 2 * MARGIN - RECEIPT_SEAL_SIZE - 40  # the note stays clear of the seal

Box = tuple[float, float, float, float]


def _seal_box(table_bottom: float) -> Box:
    centre_y = table_bottom + 12
    half = RECEIPT_SEAL_SIZE / 2
    return (SEAL_RIGHT - RECEIPT_SEAL_SIZE, centre_y - half, SEAL_RIGHT, centre_y + half)


DIGITS = "零壹贰叁肆伍陆柒捌玖"
PLACES = ("", "拾", "佰", "仟")
SECTIONS = ("", "万", "亿", "万亿")
MAX_FEN = 10**18 - 1  # below 一万万亿元: four sections of four digits


def _section_capital(number: int) -> str:
    """1..9999 in capitals: 壹仟零肆, 壹仟零肆拾, 壹拾 (the 壹 before 拾 is always written on
    bills); one 零 stands for a run of zeros between non-zero digits."""
    out, zero = "", False
    for place in range(3, -1, -1):
        digit = number // 10**place % 10
        if digit == 0:
            zero = zero or bool(out)
            continue
        if zero:
            out += "零"
            zero = False
        out += DIGITS[digit] + PLACES[place]
    return out


def amount_capital(amount_fen: int) -> str:
    """An amount in fen as Chinese capital numerals, prefixed 人民币: 人民币叁仟陆佰元整,
    人民币壹拾元伍角整, 人民币壹分, 人民币叁佰贰拾伍元零肆分, 人民币壹亿零壹元整.

    Follows 《支付结算办法》's rules for capital amounts: 整 after 元 or 角, none after 分;
    a 零 where the 角 is zero but the 分 is not; one 零 for a run of zeros inside the yuan
    part (none before 元 when only the units are zero: 壹拾万元整).
    Raises ValueError for a negative amount, a non-integer or more than MAX_FEN."""
    if isinstance(amount_fen, bool) or not isinstance(amount_fen, int):
        raise ValueError("amount_fen must be an int")
    if not 0 <= amount_fen <= MAX_FEN:
        raise ValueError("amount_fen out of range")
    yuan, jiao, fen = amount_fen // 100, amount_fen // 10 % 10, amount_fen % 10
    if amount_fen == 0:
        return "人民币零元整"
    out = ""
    if yuan:
        sections = []
        rest = yuan
        while rest:
            sections.append(rest % 10000)
            rest //= 10000
        gap = False
        for index in range(len(sections) - 1, -1, -1):
            section = sections[index]
            if not section:
                gap = gap or bool(out)
                continue
            # Zeros before this section's first digit: 壹拾万零伍佰, 贰亿零壹仟 (not 贰亿壹仟,
            # which reads as 2.1 亿).
            if out and (gap or section < 1000):
                out += "零"
            gap = False
            out += _section_capital(section) + SECTIONS[index]
        out += "元"
    if jiao:
        out += DIGITS[jiao] + "角"
    elif fen and yuan:
        out += "零"
    if fen:
        out += DIGITS[fen] + "分"
    else:
        out += "整"
    return "人民币" + out


def amount_yuan(amount_fen: int) -> str:
    """An amount in fen as yuan with two decimals and thousands separators: 3,600.00.
    Raises ValueError for a negative amount or a non-integer."""
    if isinstance(amount_fen, bool) or not isinstance(amount_fen, int) or amount_fen < 0:
        raise ValueError("amount_fen must not be negative")
    return f"{amount_fen // 100:,}.{amount_fen % 100:02d}"


def _rows(
    *,
    payer_name: str,
    id_number_masked: str,
    unit_label: str,
    amount_fen: int,
    paid_at: datetime,
    transaction_id: str,
    out_trade_no: str,
    org_name: str,
) -> list[tuple[str, str]]:
    return [
        ("交款人（主申请人）", payer_name),
        ("证件号码", id_number_masked),
        ("房源", unit_label),
        ("款项", "住房租赁押金"),
        ("金额（小写）", f"¥{amount_yuan(amount_fen)}"),
        ("金额（大写）", amount_capital(amount_fen)),
        ("支付时间", f"{datetime_zh(paid_at, seconds=True, tz=SHANGHAI)}（北京时间）"),
        ("支付渠道", CHANNEL),
        ("微信支付交易单号", transaction_id),
        ("商户订单号", out_trade_no),
        ("收款单位", org_name),
    ]


def deposit_receipt_pdf(**fields) -> bytes:
    """The rendered, unsealed receipt (see `_receipt_render` for the fields and checks)."""
    return _receipt_render(**fields)[0]


def deposit_receipt_issue(*, now: datetime, **fields) -> bytes:
    """The receipt as issued: rendered, then sealed by its issuer `fields["org_name"]` at
    `now` with the seal over the issuer row. Raises what `_receipt_render` and
    `deposit_receipt_seal` raise."""
    pdf, box = _receipt_render(**fields)
    return deposit_receipt_seal(
        pdf=pdf, org_name=fields["org_name"], receipt_no=fields["receipt_no"], box=box, now=now
    )


def _receipt_render(
    *,
    receipt_no: str,
    payer_name: str,
    id_number_masked: str,
    unit_label: str,
    amount_fen: int,
    paid_at: datetime,
    transaction_id: str,
    out_trade_no: str,
    org_name: str,
    verification_code: str,
) -> tuple[bytes, Box]:
    """Render the deposit receipt, and where its seal goes: 「押金收据」, the receipt number and verification code, then
    a ruled table of the payer (主申请人) and masked ID number, the unit, the amount in yuan
    and in capitals, the payment time in Asia/Shanghai, the channel (微信支付), the provider's
    transaction id, our order number and the issuer. The same inputs give the same bytes.

    Checked (a caller's bug, so ValueError rather than a domain error code): `paid_at` is
    timezone-aware; `amount_fen` is a non-negative int (see `amount_capital`);
    `id_number_masked` does not look like a full ID number (8 or more digits in a row); the
    table fits the page."""
    if paid_at.tzinfo is None or paid_at.utcoffset() is None:
        raise ValueError("paid_at must be timezone-aware")
    if re.search(r"\d{8}", id_number_masked):
        raise ValueError("id_number_masked looks like an unmasked ID number")
    rows = _rows(
        payer_name=payer_name,
        id_number_masked=id_number_masked,
        unit_label=unit_label,
        amount_fen=amount_fen,
        paid_at=paid_at,
        transaction_id=transaction_id,
        out_trade_no=out_trade_no,
        org_name=org_name,
    )
    _font()
    value_x = MARGIN + LABEL_W + 10
    value_w = PAGE_W - MARGIN - 8 - value_x
    wrapped = [(label, _wrap(value, width=value_w, size=BODY_SIZE)) for label, value in rows]

    out = io.BytesIO()
    c = canvas.Canvas(
        out,
        pagesize=(PAGE_W, PAGE_H),
        pageCompression=1,
        invariant=1,
        initialFontName=FONT,
        initialFontSize=BODY_SIZE,
    )
    c.setTitle(f"押金收据 {receipt_no}")
    c.setAuthor(org_name)
    c.setSubject(f"验证码 {verification_code}")
    c.setCreator("安居 Anju")

    y = PAGE_H - MARGIN - TITLE_SIZE
    c.setFont(FONT, TITLE_SIZE)
    c.drawCentredString(PAGE_W / 2, y, "押金收据")
    y -= 26
    c.setFont(FONT, BODY_SIZE)
    c.drawString(MARGIN, y, f"收据编号：{receipt_no}")
    code = f"验证码：{verification_code}"
    c.drawString(PAGE_W - MARGIN - _width(code, BODY_SIZE), y, code)
    y -= 10

    top = y
    heights = [2 * ROW_PAD + BODY_SIZE + LINE_GAP * (len(lines) - 1) for _, lines in wrapped]
    bottom = top - sum(heights)
    if bottom < MARGIN + 2 * SMALL_SIZE + 10:
        raise ValueError("the receipt does not fit one page")
    c.setLineWidth(0.8)
    c.rect(MARGIN, bottom, PAGE_W - 2 * MARGIN, top - bottom, stroke=1, fill=0)
    c.setLineWidth(0.4)
    c.line(MARGIN + LABEL_W, bottom, MARGIN + LABEL_W, top)
    for (label, lines), height in zip(wrapped, heights, strict=True):
        baseline = y - ROW_PAD - BODY_SIZE * 0.85
        c.setFillGray(0.3)
        c.drawString(MARGIN + 8, baseline, label)
        c.setFillGray(0)
        for k, line in enumerate(lines):
            c.drawString(value_x, baseline - LINE_GAP * k, line)
        y -= height
        if y > bottom + 0.1:
            c.line(MARGIN, y, PAGE_W - MARGIN, y)

    c.setFont(FONT, SMALL_SIZE)
    c.setFillGray(0.4)
    note = (
        "本收据由系统根据微信支付到账记录生成，加盖收款单位电子印章（以数字签名为准），"
        "可凭收据编号与验证码向收款单位核验真伪。"
    )
    for k, line in enumerate(_wrap(note, width=NOTE_W, size=SMALL_SIZE)):
        c.drawString(MARGIN, bottom - 16 - 11 * k, line)
    c.setFillGray(0)
    c.showPage()
    c.save()
    return out.getvalue(), _seal_box(bottom)


def deposit_receipt_seal(
    *, pdf: bytes, org_name: str, receipt_no: str, box: Box, now: datetime
) -> bytes:
    """Seal a rendered receipt with `org_name`'s seal (the issuing organisation, 甲方 of the
    lease): a PAdES B-T signature time-stamped at `now`, the seal image at `box` on its page.
    Raises Conflict `seal_missing` when the organisation has no seal (signing/agreements/ca.py)."""
    from signing.agreements.pdf import pdf_seal_document

    return pdf_seal_document(
        pdf=pdf,
        org_name=org_name,
        box=box,
        reason=f"{org_name} 押金收据 {receipt_no}",
        now=now,
    )


def receipt_validate(*, pdf: bytes, authority=None):
    """Validate a sealed receipt: exactly one signature, the organisation's seal, intact,
    trusted, time-stamped and covering the whole file (signing.agreements.pdf_verify)."""
    from signing.agreements.pdf_verify import document_seal_validate

    return document_seal_validate(pdf=pdf, authority=authority)
