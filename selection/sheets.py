"""Reading staff's uploaded sheets: a CSV or XLSX file into one dict per data row, the
header recognised among the first rows, and the report an import hands back (every bad row
with its spreadsheet row number and a Chinese reason).

Files are read with openpyxl (XLSX) and the standard csv module: row numbers must be the
ones staff see in their spreadsheet, blank lines included, and a ragged row must become a
reported bad row rather than abort the whole file.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from core.errors import ValidationFailed

MAX_FILE_BYTES = 5 * 1024 * 1024
MAX_ROWS = 20_000
ROW_KEY = "_row"  # the spreadsheet row number a parsed row came from
OVERFLOW_KEY = "_overflow"  # cells beyond the last header

# ---------------------------------------------------------------------------- reading files

UNIT_COLUMNS: dict[str, tuple[str, ...]] = {
    "building": ("楼栋", "楼栋号", "楼号", "building"),
    "number": ("房号", "房间号", "number", "unit_number"),
    "floor": ("楼层", "floor"),
    "layout": ("户型", "layout"),
    "orientation": ("朝向", "orientation"),
    "area": ("面积", "建筑面积", "area"),
    "monthly_rent": ("月租金", "租金", "monthly_rent", "rent"),
}
FAMILY_COLUMNS: dict[str, tuple[str, ...]] = {
    "rank": ("排位号", "排位", "轮候排位号", "rank"),
    "household_size": ("家庭人数", "人数", "household_size"),
    "eligible_layouts": ("可选户型", "eligible_layouts"),
    "real_name": ("姓名", "主申请人", "主申请人姓名", "real_name", "name"),
    "id_number": ("身份证号码", "身份证号", "主申请人身份证号码", "id_number"),
    "mobile": ("手机号码", "手机号", "登记手机号码", "联系电话", "mobile"),
}
COLUMN_LABELS = {
    **{name: aliases[0] for name, aliases in UNIT_COLUMNS.items()},
    **{name: aliases[0] for name, aliases in FAMILY_COLUMNS.items()},
}
_KNOWN_HEADERS = {
    alias.lower()
    for columns in (UNIT_COLUMNS, FAMILY_COLUMNS)
    for a in columns.values()
    for alias in a
}


def _bad_file(message: str) -> ValidationFailed:
    return ValidationFailed("invalid_file", message, fields={"file": [message]})


def _header_key(value: Any) -> str:
    """'面积（㎡）' -> '面积', ' Monthly_Rent ' -> 'monthly_rent'."""
    text = _text(value)
    text = re.sub(r"[（(].*?[）)]", "", text)
    return re.sub(r"\s+", "", text).lower()


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    return str(value).replace("\u3000", " ").strip()


def _non_blank(rows: Iterable[Iterable[Any]]) -> list[tuple[int, list[Any]]]:
    """(row number, cells) for rows with any content; stops just past MAX_ROWS so that a
    huge sheet is refused without being read to its end."""
    found = []
    for number, values in enumerate(rows, start=1):
        cells = list(values)
        if any(_text(v) for v in cells):
            found.append((number, cells))
            if len(found) > MAX_ROWS + 10:
                break
    return found


def _csv_rows(content: bytes) -> list[tuple[int, list[Any]]]:
    for encoding in ("utf-8-sig", "gb18030"):  # Excel in China saves CSV as GBK by default
        try:
            text = content.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise _bad_file("无法识别 CSV 文件的编码，请另存为 UTF-8 或 GBK 编码")
    first_line = text.split("\n", 1)[0]
    delimiter = "\t" if "\t" in first_line and "," not in first_line else ","
    try:
        return _non_blank(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    except csv.Error as exc:
        raise _bad_file(f"CSV 文件格式不正确：{exc}") from None


def _xlsx_rows(content: bytes) -> list[tuple[int, list[Any]]]:
    import openpyxl

    try:
        book = openpyxl.load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except Exception:  # a zip, XML or openpyxl error: all mean "not a readable workbook"
        raise _bad_file("无法读取该 XLSX 文件，请确认文件完好且为 Excel 2007 及以上格式") from None
    try:
        return _non_blank(book.active.iter_rows(values_only=True))
    except Exception:
        raise _bad_file("无法读取该 XLSX 文件的第一个工作表") from None
    finally:
        book.close()


def sheet_rows(*, content: bytes, filename: str) -> list[dict[str, Any]]:
    """Parse an uploaded CSV or XLSX (first sheet) into one dict per non-blank data row,
    keyed by the header text, with the spreadsheet row number under `ROW_KEY`.

    The header is the first row (among the first ten) naming at least two known columns, so
    a title row above it is fine. Raises `invalid_file` for an unreadable or empty file, an
    unknown extension, duplicate headers or more than MAX_ROWS rows."""
    if len(content) > MAX_FILE_BYTES:
        raise _bad_file(f"文件不能超过 {MAX_FILE_BYTES // (1024 * 1024)} MB")
    name = filename.lower()
    if name.endswith(".csv"):
        numbered = _csv_rows(content)
    elif name.endswith(".xlsx"):
        numbered = _xlsx_rows(content)
    else:
        raise _bad_file("仅支持 CSV 或 XLSX（Excel）文件")
    if not numbered:
        raise _bad_file("文件是空的")
    header_at = next(
        (
            i
            for i, (_, row) in enumerate(numbered[:10])
            if sum(_header_key(v) in _KNOWN_HEADERS for v in row) >= 2
        ),
        0,
    )
    headers = [_text(v) for v in numbered[header_at][1]]
    named = [h for h in headers if h]
    duplicates = sorted({h for h in named if named.count(h) > 1})
    if duplicates:
        raise _bad_file(f"表头重复：{'、'.join(duplicates)}")
    data = numbered[header_at + 1 :]
    if len(data) > MAX_ROWS:
        raise _bad_file(f"一次最多导入 {MAX_ROWS} 行")
    rows = []
    for number, values in data:
        row: dict[str, Any] = {ROW_KEY: number}
        for index, value in enumerate(values):
            if index < len(headers) and headers[index]:
                row[headers[index]] = value
            elif index >= len(headers) and _text(value):
                row.setdefault(OVERFLOW_KEY, []).append(value)
        rows.append(row)
    return rows


# ---------------------------------------------------------------------------- the report


@dataclass(frozen=True)
class RowError:
    row: int | None  # spreadsheet row number; None for the file as a whole (its header)
    message: str


@dataclass
class ImportReport:
    """What an import found and did. `written` is True only when every row was written."""

    kind: str  # "units" or "families"
    dry_run: bool
    total: int = 0
    created: int = 0
    updated: int = 0
    written: bool = False
    errors: list[RowError] = field(default_factory=list)
    preview_headers: list[str] = field(default_factory=list)
    preview: list[list[Any]] = field(default_factory=list)  # the first cleaned rows

    @property
    def ok(self) -> bool:
        return not self.errors

    def audit_detail(self, source: str) -> dict:
        return {
            "source": source,
            "dry_run": self.dry_run,
            "rows": self.total,
            "created": self.created,
            "updated": self.updated,
            "written": self.written,
            "bad_rows": len(self.errors),
            "errors": [f"{e.row or '表头'}: {e.message}" for e in self.errors[:50]],
        }


class _Rows:
    """Maps each row's headers (Chinese or English) onto field names."""

    def __init__(self, rows: Iterable[Mapping[str, Any]], columns: dict[str, tuple[str, ...]]):
        self.rows = list(rows)
        lookup = {alias.lower(): name for name, aliases in columns.items() for alias in aliases}
        self.columns: dict[str, str] = {}  # header -> field
        self.errors: list[RowError] = []
        seen: dict[str, str] = {}
        headers = dict.fromkeys(k for row in self.rows for k in row if not k.startswith("_"))
        for header in headers:
            name = lookup.get(_header_key(header))
            if name is None:
                continue  # other columns (备注, 序号 …) are ignored
            if name in seen:
                self.errors.append(RowError(None, f"列「{seen[name]}」与「{header}」重复"))
            seen[name] = header
            self.columns[header] = name
        missing = [COLUMN_LABELS[name] for name in columns if name not in seen]
        if not self.rows:
            self.errors.append(RowError(None, "文件中没有数据行"))
        elif missing:
            self.errors.append(RowError(None, f"缺少必填列：{'、'.join(missing)}"))

    def __iter__(self):
        for index, row in enumerate(self.rows):
            values = {name: row.get(header) for header, name in self.columns.items()}
            number = row.get(ROW_KEY) or index + 2  # header is row 1 when none is given
            problems = ["本行数据多于表头列数"] if row.get(OVERFLOW_KEY) else []
            yield number, values, problems
