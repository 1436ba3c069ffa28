"""Staff bulk work on a round: import units and families from rows read by
`selection.sheets`.

Imports are all-or-nothing. Every row is checked first and every bad row is reported with
its spreadsheet row number and a Chinese reason; only a file without a single bad row is
written, and then in one transaction, so a failure half-way (a constraint only the database
catches, a concurrent import) leaves nothing behind. A dry run checks and writes nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from django.db import DatabaseError, transaction

from accounts.models import Applicant, Family, Layout, User
from accounts.services import audit_record, family_upsert
from accounts.validators import id_number_clean, mask_id_number, mobile_clean
from core.errors import DomainError, ValidationFailed
from core.locking import lock_first, lock_rows
from selection.models import Orientation, Round, Seat, Unit
from selection.phases import RoundNotFound
from selection.sheets import (
    COLUMN_LABELS,
    FAMILY_COLUMNS,
    UNIT_COLUMNS,
    ImportReport,
    RowError,
    _Rows,
    _text,
)

PREVIEW_ROWS = 20


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
            lock_first(Round.objects.filter(pk=round_id))
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
        Family.objects.filter(rank__in=ranks).values_list(
            "rank", "main_applicant__id_number_encrypted"
        )
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
        a["id_number_encrypted"]: (a["family__id"], a["family__rank"])
        for a in Applicant.objects.filter(id_number__in=ids).values(  # keyed-hash lookup
            "id_number_encrypted", "family__id", "family__rank"
        )
    }
    rank_holder = _rank_holders(ranks)
    seated = set(
        Seat.objects.filter(family__main_applicant__id_number__in=ids).values_list(
            "family__main_applicant__id_number_encrypted", flat=True
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
                lock_rows(Family, updating)
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
