"""The deposit receipt PDF (signing/lease/receipt.py): capital amounts, the text a reader sees
(poppler's pdftotext), one A5 page, identical bytes for identical inputs. No database."""

from __future__ import annotations

import io
import re
import subprocess
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from pyhanko.pdf_utils.reader import PdfFileReader

from signing.lease.receipt import amount_capital, amount_yuan, deposit_receipt_pdf

RECEIPT = {
    "receipt_no": "YJ2025030500000042",
    "payer_name": "李娜",
    "id_number_masked": "440***********1234",
    "unit_label": "福田区 安居苑 3栋 1204 室",
    "amount_fen": 360_000,
    "paid_at": datetime(2025, 3, 5, 6, 3, 22, tzinfo=UTC),  # 14:03:22 in Shenzhen
    "transaction_id": "4200002345202503051234567890",
    "out_trade_no": "AJ20250305140301A1B2C3D4E5F6",
    "org_name": "深圳市住房保障机构（演示）",
    "verification_code": "AJ7K2M9Q4X",
}


@pytest.mark.parametrize(
    ("fen", "capital"),
    [
        (1, "人民币壹分"),
        (1050, "人民币壹拾元伍角整"),
        (360_000, "人民币叁仟陆佰元整"),
        (10_000_000, "人民币壹拾万元整"),
        (123_456_789, "人民币壹佰贰拾叁万肆仟伍佰陆拾柒元捌角玖分"),
        (0, "人民币零元整"),
        (50, "人民币伍角整"),
        (100, "人民币壹元整"),
        (32_504, "人民币叁佰贰拾伍元零肆分"),  # 角 zero, 分 not: 零 after 元
        (140_950, "人民币壹仟肆佰零玖元伍角整"),
        (600_714, "人民币陆仟零柒元壹角肆分"),
        (10_100_000, "人民币壹拾万壹仟元整"),
        (100_010_000, "人民币壹佰万零壹佰元整"),
        (20_000_100_000, "人民币贰亿零壹仟元整"),  # not 贰亿壹仟 (2.1 亿)
        (10_000_000_100, "人民币壹亿零壹元整"),
    ],
)
def test_amount_in_capitals(fen, capital):
    assert amount_capital(fen) == capital


@pytest.mark.parametrize("bad", [-1, 1.5, True, 10**18])
def test_amount_in_capitals_refuses_nonsense(bad):
    with pytest.raises(ValueError):
        amount_capital(bad)


def test_amount_in_yuan():
    assert amount_yuan(1) == "0.01"
    assert amount_yuan(1050) == "10.50"
    assert amount_yuan(360_000) == "3,600.00"
    assert amount_yuan(123_456_789) == "1,234,567.89"


def test_same_inputs_same_bytes():
    first = deposit_receipt_pdf(**RECEIPT)
    assert first.startswith(b"%PDF-")
    assert deposit_receipt_pdf(**RECEIPT) == first
    assert deposit_receipt_pdf(**{**RECEIPT, "amount_fen": 360_001}) != first


def test_one_a5_page():
    reader = PdfFileReader(io.BytesIO(deposit_receipt_pdf(**RECEIPT)))
    assert reader.root["/Pages"]["/Count"] == 1
    page = reader.root["/Pages"]["/Kids"][0]
    box = [float(v) for v in page["/MediaBox"]]
    assert sorted([round(box[2]), round(box[3])]) == [420, 595]  # A5 (landscape)


def test_naive_time_and_unmasked_id_refused():
    with pytest.raises(ValueError):
        deposit_receipt_pdf(**{**RECEIPT, "paid_at": datetime(2025, 3, 5, 14, 3, 22)})
    with pytest.raises(ValueError):
        deposit_receipt_pdf(**{**RECEIPT, "id_number_masked": "440305199001011234"})


def pdf_text(pdf: bytes, tmp_path) -> str:
    path = tmp_path / "receipt.pdf"
    path.write_bytes(pdf)
    result = subprocess.run(
        ["pdftotext", "-enc", "UTF-8", str(path), "-"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return re.sub(r"\s+", "", result.stdout)


@pytest.mark.pdftools
def test_receipt_text_as_a_reader_extracts_it(tmp_path):
    text = pdf_text(deposit_receipt_pdf(**RECEIPT), tmp_path)
    for expected in (
        "押金收据",
        "收据编号：YJ2025030500000042",
        "李娜",
        "440***********1234",
        "福田区安居苑3栋1204室",
        "¥3,600.00",
        "人民币叁仟陆佰元整",
        "2025年3月5日14:03:22（北京时间）",  # core/fmt.py's one format
        "微信支付",
        "4200002345202503051234567890",
        "AJ20250305140301A1B2C3D4E5F6",
        "深圳市住房保障机构（演示）",
        "验证码：AJ7K2M9Q4X",
    ):
        assert expected in text, expected


@pytest.mark.pdftools
def test_payment_time_is_shanghai_time_whatever_the_input_zone(tmp_path):
    new_york = datetime(2025, 3, 5, 1, 3, 22, tzinfo=ZoneInfo("America/New_York"))  # EST
    text = pdf_text(deposit_receipt_pdf(**{**RECEIPT, "paid_at": new_york}), tmp_path)
    assert "2025年3月5日14:03:22" in text


@pytest.mark.pdftools
def test_long_unit_label_wraps_inside_the_table(tmp_path):
    unit = "福田区福中路安居苑保障性租赁住房项目二期 A座 3单元 第十二层 1204号 朝南两房一厅户型"
    text = pdf_text(deposit_receipt_pdf(**{**RECEIPT, "unit_label": unit}), tmp_path)
    assert re.sub(r"\s+", "", unit) in text
