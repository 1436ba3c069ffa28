"""The deposit receipt (押金收据): one A5 landscape page, set in the CJK font the agreement PDF
uses (signing/pdf.py registers it once per process, embedded as a searchable subset).

    pdf = deposit_receipt_pdf(receipt_no=..., payer_name=..., amount_fen=360000, ...)

Pure: reads no rows and no clock. The PDF is deterministic (reportlab's invariant mode: fixed
dates and document id), so the same payment always gives the same bytes and the receipt's
hash can be recorded as evidence. `amount_capital` writes an amount in Chinese capital
numerals (大写) as the payment-settlement rules for bills ask.
"""

from __future__ import annotations

import io
import re
from datetime import datetime
from zoneinfo import ZoneInfo

from reportlab.lib.pagesizes import A5, landscape
from reportlab.pdfgen import canvas

from core.fmt import datetime_zh
from signing.pdf import FONT, _font, _width, _wrap

__all__ = ["amount_capital", "amount_yuan", "deposit_receipt_pdf"]

SHANGHAI = ZoneInfo("Asia/Shanghai")
PAGE_W, PAGE_H = landscape(A5)
MARGIN = 36.0
TITLE_SIZE, BODY_SIZE, SMALL_SIZE = 20.0, 10.5, 8.5
ROW_PAD, LINE_GAP = 5.0, 14.0  # padding above/below a row's text; leading inside a row
LABEL_W = 118.0  # the label column
CHANNEL = "微信支付"

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


def deposit_receipt_pdf(
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
) -> bytes:
    """Render the deposit receipt: 「押金收据」, the receipt number and verification code, then
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
    note = "本收据由系统根据微信支付到账记录生成，可凭收据编号与验证码向收款单位核验真伪。"
    c.drawString(MARGIN, bottom - 16, note)
    c.setFillGray(0)
    c.showPage()
    c.save()
    return out.getvalue()
