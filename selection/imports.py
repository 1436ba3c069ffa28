"""Staff bulk work on a round: read CSV/XLSX sheets, import units and families, schedule
sessions from rank blocks, and the result table that staff export.

Imports are all-or-nothing. Every row is checked first and every bad row is reported with
its spreadsheet row number and a Chinese reason; only a file without a single bad row is
written, and then in one transaction, so a failure half-way (a constraint only the database
catches, a concurrent import) leaves nothing behind. A dry run checks and writes nothing.

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
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from django.db import DatabaseError, transaction
from django.db.models import Max
from django.utils import timezone

from accounts.models import Applicant, Family, Layout, User
from accounts.services import audit_record, family_upsert
from accounts.validators import id_number_clean, mask_id_number, mobile_clean
from core.errors import DomainError, ValidationFailed
from selection.models import (
    Allocation,
    Orientation,
    Round,
    Seat,
    Session,
    SupplementaryApplication,
    Unit,
)
from selection.phases import RoundNotFound

MAX_FILE_BYTES = 5 * 1024 * 1024
MAX_ROWS = 20_000
PREVIEW_ROWS = 20
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


def _decimal(value: Any, label: str, problems: list[str], *, below: int) -> Decimal | None:
    text = re.sub(r"(元|㎡|平方米|m²|m2|,|，)", "", _text(value))
    try:
        number = Decimal(text).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    except InvalidOperation:
        number = None
    if number is None or not number.is_finite() or number <= 0 or number >= below:
        problems.append(f"{label}须为大于0的数字（当前为「{_text(value)}」）")
        return None
    return number


def _integer(value: Any, label: str, problems: list[str], *, low: int, high: int) -> int | None:
    text = _text(value)
    if re.fullmatch(r"-?\d+(\.0+)?", text) and low <= int(float(text)) <= high:
        return int(float(text))
    problems.append(f"{label}须为{low}至{high}之间的整数（当前为「{text}」）")
    return None


def _short_text(value: Any, label: str, problems: list[str], *, max_length: int) -> str:
    text = _text(value)
    if not text:
        problems.append(f"{label}不能为空")
    elif len(text) > max_length:
        problems.append(f"{label}不能超过{max_length}个字")
    elif text[0] in "=+-@":  # a cell that a spreadsheet would run as a formula
        problems.append(f"{label}不能以「{text[0]}」开头")
    return text


_LAYOUT_BY_NAME = {
    **{label: code for code, label in Layout.choices},
    **{code.lower(): code for code in Layout.values},
    "二房一厅": Layout.TWO_BED,
    "1房1厅": Layout.ONE_BED,
    "2房1厅": Layout.TWO_BED,
    "3房1厅": Layout.THREE_BED,
}
_ORIENTATION_BY_NAME = {
    **{label: code for code, label in Orientation.choices},
    **{code.lower(): code for code in Orientation.values},
}


def _layout(value: Any) -> str | None:
    return _LAYOUT_BY_NAME.get(re.sub(r"\s+", "", _text(value)).lower())


# ---------------------------------------------------------------------------- units


def _units_existing(rnd: Round) -> set[tuple[str, str]]:
    return set(Unit.objects.filter(round=rnd).values_list("building", "number"))


def _unit_rows_check(rnd: Round, rows: _Rows, report: ImportReport) -> list[tuple[int, dict]]:
    existing = _units_existing(rnd)
    first_seen: dict[tuple[str, str], int] = {}
    clean: list[tuple[int, dict]] = []
    for number, values, problems in rows:
        building = re.sub(r"栋$", "", _text(values["building"]))
        building = _short_text(building, "楼栋", problems, max_length=20)
        unit_number = _short_text(values["number"], "房号", problems, max_length=20)
        floor = _integer(values["floor"], "楼层", problems, low=-5, high=200)
        layout = _layout(values["layout"])
        if layout is None:
            problems.append(f"户型「{_text(values['layout'])}」不正确，应为{_LAYOUT_HINT}")
        orientation = _ORIENTATION_BY_NAME.get(
            re.sub(r"^朝", "", _text(values["orientation"])).lower()
        )
        if orientation is None:
            problems.append(f"朝向「{_text(values['orientation'])}」不正确，应为东、南、东南等")
        area = _decimal(values["area"], "面积", problems, below=100_000)
        rent = _decimal(values["monthly_rent"], "月租金", problems, below=10_000_000)
        key = (building, unit_number)
        if building and unit_number:
            if key in first_seen:
                problems.append(f"与第{first_seen[key]}行重复（{building}栋{unit_number}）")
            elif key in existing:
                problems.append(f"房源{building}栋{unit_number}已在本批次中")
            first_seen.setdefault(key, number)
        if problems:
            report.errors.append(RowError(number, "；".join(problems)))
            continue
        clean.append(
            (
                number,
                {
                    "building": building,
                    "number": unit_number,
                    "floor": floor,
                    "layout": layout,
                    "orientation": orientation,
                    "area": area,
                    "monthly_rent": rent,
                },
            )
        )
    return clean


_LAYOUT_HINT = "、".join(label for _, label in Layout.choices)


def units_import(
    *,
    round_id: int,
    rows: Iterable[Mapping[str, Any]],
    dry_run: bool,
    actor: User | None = None,
    ip: str = "",
    source: str = "",
) -> ImportReport:
    """Import a round's units (房源) from parsed sheet rows, all or nothing.

    Checks every row (required columns, layout, orientation, floor, positive area and rent,
    duplicates within the file, units already in the round) and reports every bad row. Writes
    only when no row is bad and `dry_run` is false: locks the round row (one import into a
    round at a time), re-checks, creates every unit in one transaction. A database error on
    any row rolls everything back and is reported against that row. Audited
    (`selection.units_import`) whatever the outcome. Raises `round_not_found`."""
    report = ImportReport(kind="units", dry_run=dry_run)
    parsed = _Rows(rows, UNIT_COLUMNS)
    report.total = len(parsed.rows)
    failed_row: int | None = None
    rnd = Round.objects.filter(pk=round_id).first()
    if rnd is None:
        raise RoundNotFound()
    try:
        with transaction.atomic():
            Round.objects.select_for_update().filter(pk=round_id).first()
            report.errors.extend(parsed.errors)
            clean = [] if parsed.errors else _unit_rows_check(rnd, parsed, report)
            report.created = len(clean)
            report.preview_headers = ["行号", *(COLUMN_LABELS[name] for name in UNIT_COLUMNS)]
            report.preview = [
                [n, v["building"], v["number"], v["floor"], Layout(v["layout"]).label]
                + [Orientation(v["orientation"]).label, v["area"], v["monthly_rent"]]
                for n, v in clean[:PREVIEW_ROWS]
            ]
            if report.errors:
                report.created = 0
            elif not dry_run:
                for number, values in clean:
                    failed_row = number
                    Unit.objects.create(round=rnd, **values)
                failed_row = None
                report.written = True
                _audit(actor, "selection.units_import", rnd, report, source, ip)
    except DatabaseError as exc:
        report.written, report.created = False, 0
        report.errors.append(RowError(failed_row, _db_failure(exc)))
    if not report.written:
        _audit(actor, "selection.units_import", rnd, report, source, ip)
    return report


def _db_failure(exc: Exception) -> str:
    return f"写入数据库时失败，全部数据均未导入（{type(exc).__name__}）"


def _audit(actor, action: str, target: Any, report: ImportReport, source: str, ip: str) -> None:
    label = f"selection.Round:{target.pk} {target}" if isinstance(target, Round) else target
    audit_record(
        actor=actor, action=action, target=label, detail=report.audit_detail(source), ip=ip
    )


# ---------------------------------------------------------------------------- families


def _rank_holders(ranks: set[int]) -> dict[int, str]:
    """rank -> the ID number of the main applicant of the family holding it."""
    return dict(
        Family.objects.filter(rank__in=ranks).values_list("rank", "main_applicant__id_number")
    )


def _family_rows_check(rows: _Rows, report: ImportReport) -> list[tuple[int, dict]]:
    checked: list[tuple[int, dict, list[str]]] = []
    for number, values, problems in rows:
        rank = _integer(values["rank"], "排位号", problems, low=1, high=2_000_000_000)
        size = _integer(values["household_size"], "家庭人数", problems, low=1, high=30)
        names = [p for p in re.split(r"[,，、;；/\s]+", _text(values["eligible_layouts"])) if p]
        layouts = [_layout(p) for p in names]
        if not names:
            problems.append("可选户型不能为空")
        unknown = [p for p, code in zip(names, layouts, strict=True) if code is None]
        if unknown:
            problems.append(f"可选户型「{'、'.join(unknown)}」不正确，应为{_LAYOUT_HINT}")
        real_name = _short_text(values["real_name"], "姓名", problems, max_length=50)
        id_raw = _text(values["id_number"])
        try:
            id_number = id_number_clean(id_raw)
        except ValidationFailed as exc:
            hint = (
                "（请将该列设为文本格式）" if isinstance(values["id_number"], int | float) else ""
            )
            problems.append(f"{exc.message}{hint}（当前为「{id_raw}」）")
            id_number = ""
        try:
            mobile = mobile_clean(_text(values["mobile"]))
        except ValidationFailed as exc:
            problems.append(f"{exc.message}（当前为「{_text(values['mobile'])}」）")
            mobile = ""
        checked.append(
            (
                number,
                {
                    "rank": rank,
                    "household_size": size,
                    "eligible_layouts": list(dict.fromkeys(c for c in layouts if c)),
                    "real_name": real_name,
                    "id_number": id_number,
                    "mobile": mobile,
                },
                problems,
            )
        )
    ids = {v["id_number"] for _, v, _ in checked if v["id_number"]}
    ranks = {v["rank"] for _, v, _ in checked if v["rank"]}
    by_id = {  # id number -> (family id, rank) for applicants already on the list
        a["id_number"]: (a["family__id"], a["family__rank"])
        for a in Applicant.objects.filter(id_number__in=ids).values(
            "id_number", "family__id", "family__rank"
        )
    }
    rank_holder = _rank_holders(ranks)
    seated = set(
        Seat.objects.filter(family__main_applicant__id_number__in=ids).values_list(
            "family__main_applicant__id_number", flat=True
        )
    )
    rank_row: dict[int, int] = {}
    id_row: dict[str, int] = {}
    clean: list[tuple[int, dict]] = []
    for number, values, problems in checked:
        rank, id_number = values["rank"], values["id_number"]
        if rank:
            if rank in rank_row:
                problems.append(f"排位号{rank}与第{rank_row[rank]}行重复")
            elif rank_holder.get(rank, id_number) != id_number:
                holder = mask_id_number(rank_holder[rank])
                problems.append(f"排位号{rank}已属于其他家庭（主申请人身份证 {holder}）")
            rank_row.setdefault(rank, number)
        if id_number:
            if id_number in id_row:
                problems.append(f"身份证号码与第{id_row[id_number]}行重复")
            id_row.setdefault(id_number, number)
            family_id, old_rank = by_id.get(id_number, (None, None))
            if family_id and rank and old_rank != rank and id_number in seated:
                problems.append(f"该家庭已安排选房场次，不能修改排位号（现为{old_rank}）")
            values["family_id"] = family_id
        if problems:
            report.errors.append(RowError(number, "；".join(problems)))
        else:
            clean.append((number, values))
    return clean


def families_import(
    *,
    rows: Iterable[Mapping[str, Any]],
    dry_run: bool,
    actor: User | None = None,
    ip: str = "",
    source: str = "",
) -> ImportReport:
    """Import families (选房家庭) and their main applicants from parsed sheet rows, all or
    nothing, through `family_upsert` (keyed by ID number: a family already on the list is
    updated).

    Checks every row (rank, household size, eligible layouts, name, ID number by checksum,
    mobile, duplicate rank or ID number within the file, a rank held by another family, a
    seated family's rank changed) and reports every bad row. Writes only when no row is bad
    and `dry_run` is false, in one transaction that first locks the families it updates in
    ascending id (the selection services' lock order). A database error rolls everything
    back and is reported against its row. Audited (`selection.families_import`)."""
    report = ImportReport(kind="families", dry_run=dry_run)
    parsed = _Rows(rows, FAMILY_COLUMNS)
    report.total = len(parsed.rows)
    report.errors.extend(parsed.errors)
    clean = [] if parsed.errors else _family_rows_check(parsed, report)
    report.created = sum(1 for _, v in clean if v["family_id"] is None)
    report.updated = len(clean) - report.created
    report.preview_headers = "行号 排位号 姓名 身份证号码 家庭人数 可选户型 操作".split()
    report.preview = [
        [n, v["rank"], v["real_name"], mask_id_number(v["id_number"]), v["household_size"]]
        + ["、".join(Layout(c).label for c in v["eligible_layouts"])]
        + ["更新" if v["family_id"] else "新增"]
        for n, v in clean[:PREVIEW_ROWS]
    ]
    if report.errors:
        report.created = report.updated = 0
    failed_row: int | None = None
    if not report.errors and not dry_run:
        try:
            with transaction.atomic():
                updating = sorted(v["family_id"] for _, v in clean if v["family_id"])
                list(Family.objects.select_for_update().filter(pk__in=updating).order_by("pk"))
                for number, values in clean:
                    failed_row = number
                    family_upsert(**{k: v for k, v in values.items() if k != "family_id"})
                failed_row = None
                report.written = True
                _audit(actor, "selection.families_import", "accounts.Family", report, source, ip)
        except DatabaseError as exc:
            report.written, report.created, report.updated = False, 0, 0
            report.errors.append(RowError(failed_row, _db_failure(exc)))
        except DomainError as exc:  # family_upsert refused what the checks passed
            report.written, report.created, report.updated = False, 0, 0
            report.errors.append(RowError(failed_row, f"{exc.message}，全部数据均未导入"))
    if not report.written:
        _audit(actor, "selection.families_import", "accounts.Family", report, source, ip)
    return report


# ---------------------------------------------------------------------------- scheduling


def _unscheduled_families(round_id: int, rank_from: int | None, rank_to: int | None):
    formal = Seat.objects.filter(session__round_id=round_id, session__kind=Session.Kind.FORMAL)
    families = (
        Family.objects.exclude(pk__in=formal.values("family_id"))
        .exclude(pk__in=Allocation.objects.values("family_id"))
        .order_by("rank")
    )
    if rank_from is not None:
        families = families.filter(rank__gte=rank_from)
    if rank_to is not None:
        families = families.filter(rank__lte=rank_to)
    return families


def schedule_overview(*, round_id: int) -> dict:
    """For the scheduling pages: how many families wait for a formal session, how many
    supplementary applications wait for a session, and the round's sessions."""
    return {
        "unscheduled": _unscheduled_families(round_id, None, None).count(),
        "applications": SupplementaryApplication.objects.filter(
            round_id=round_id, session__isnull=True
        ).count(),
        "sessions": list(Session.objects.filter(round_id=round_id).order_by("starts_at")),
    }


def sessions_schedule_from_ranks(
    *,
    round_id: int,
    first_start: datetime,
    block_size: int,
    gap_minutes: int,
    actor: User | None,
    rank_from: int | None = None,
    rank_to: int | None = None,
    ip: str = "",
    now: datetime | None = None,
) -> list[Session]:
    """Put the families that have no formal seat in the round yet (optionally only ranks
    `rank_from`..`rank_to`), in rank order, into formal sessions of `block_size` families.
    Session k (from 0) starts at `first_start + k * gap_minutes` and lasts the round's window.

    Families holding a unit (in any round) are left out: a family holds at most one unit.
    Locks the round row, so two staff scheduling at once cannot seat a family twice. Audited
    (`selection.sessions_schedule`). Raises `round_not_found`, `invalid_block_size`,
    `invalid_gap` (shorter than the window, so the new sessions would overlap each other),
    `invalid_start` (not in the future, or before pre-selection opens), `no_families`,
    `session_overlap` (an existing session of the round overlaps a new one)."""
    now = now or timezone.now()
    if not 1 <= block_size <= 1000:
        raise ValidationFailed("invalid_block_size", "每场家庭数须在1至1000之间")
    if first_start <= now:
        raise ValidationFailed("invalid_start", "首场开始时间须晚于当前时间")
    with transaction.atomic():
        rnd = Round.objects.select_for_update().filter(pk=round_id).first()
        if rnd is None:
            raise RoundNotFound()
        window = timedelta(seconds=rnd.window_seconds)
        gap = timedelta(minutes=gap_minutes)
        if gap < window:
            raise ValidationFailed(
                "invalid_gap", f"场次间隔不能短于正选时长（{rnd.window_seconds}秒）"
            )
        if first_start < rnd.preselect_starts_at:
            raise ValidationFailed("invalid_start", "首场开始时间不能早于预选开始时间")
        families = list(_unscheduled_families(round_id, rank_from, rank_to))
        if not families:
            raise ValidationFailed("no_families", "没有待安排正选场次的家庭")
        blocks = [families[i : i + block_size] for i in range(0, len(families), block_size)]
        starts = [first_start + k * gap for k in range(len(blocks))]
        existing = list(Session.objects.filter(round=rnd).order_by("starts_at"))
        for start in starts:
            clash = next(
                (s for s in existing if s.starts_at < start + window and start < s.ends_at), None
            )
            if clash is not None:
                local = timezone.localtime(start).strftime("%Y-%m-%d %H:%M")
                raise ValidationFailed(
                    "session_overlap", f"新场次（{local} 开始）与已有的第{clash.order}场时间重叠"
                )
        order = (Session.objects.filter(round=rnd).aggregate(m=Max("order"))["m"] or 0) + 1
        sessions = []
        for k, (start, block) in enumerate(zip(starts, blocks, strict=True)):
            session = Session.objects.create(
                round=rnd,
                order=order + k,
                kind=Session.Kind.FORMAL,
                starts_at=start,
                ends_at=start + window,
            )
            Seat.objects.bulk_create(Seat(session=session, family=f) for f in block)
            sessions.append(session)
        audit_record(
            actor=actor,
            action="selection.sessions_schedule",
            target=f"selection.Round:{rnd.pk} {rnd}",
            detail={
                "sessions": [s.pk for s in sessions],
                "orders": [s.order for s in sessions],
                "families": len(families),
                "ranks": [families[0].rank, families[-1].rank],
                "first_start": first_start.isoformat(),
                "block_size": block_size,
                "gap_minutes": gap_minutes,
                "rank_from": rank_from,
                "rank_to": rank_to,
            },
            ip=ip,
            now=now,
        )
    return sessions


# ---------------------------------------------------------------------------- results

RESULT_HEADERS = [
    "排位号",
    "姓名",
    "身份证号码",
    "场次",
    "房源",
    "户型",
    "面积",
    "月租金",
    "方式",
    "时间",
    "账本序号",
]


def _session_label(session: Session) -> str:
    return f"第{session.order}场（{session.get_kind_display()}）"


def results_table(*, round_id: int) -> list[list[Any]]:
    """选房结果: one row per family seated in (or allocated a unit of) the round, in rank
    order, with RESULT_HEADERS' columns. ID numbers masked; times in local time, naive (a
    spreadsheet has no time zones); a family without a unit shows how its session ended."""
    allocations = {
        a.family_id: a
        for a in Allocation.objects.filter(round_id=round_id).select_related("unit", "session")
    }
    last_seat: dict[int, Seat] = {}
    for seat in Seat.objects.filter(session__round_id=round_id).select_related("session"):
        current = last_seat.get(seat.family_id)
        if current is None or seat.session.starts_at >= current.session.starts_at:
            last_seat[seat.family_id] = seat
    families = Family.objects.filter(pk__in=set(allocations) | set(last_seat)).select_related(
        "main_applicant"
    )
    rows = []
    for family in families.order_by("rank"):
        applicant = family.main_applicant
        head = [family.rank, applicant.real_name, applicant.id_number_masked]
        allocation = allocations.get(family.pk)
        if allocation is not None:
            unit = allocation.unit
            at = timezone.localtime(allocation.at).replace(tzinfo=None, microsecond=0)
            rows.append(
                head
                + [_session_label(allocation.session), str(unit), unit.get_layout_display()]
                + [unit.area, unit.monthly_rent, allocation.get_how_display(), at]
                + [allocation.ledger_seq]
            )
        else:
            seat = last_seat[family.pk]
            outcome = seat.get_outcome_display() if seat.outcome else "未结束"
            rows.append(
                head + [_session_label(seat.session), "", "", None, None, outcome, None, None]
            )
    return rows
