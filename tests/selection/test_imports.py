"""Importing units and families from CSV/XLSX (every bad row reported, nothing half-imported)
and scheduling sessions from rank blocks."""

from __future__ import annotations

import io
from datetime import datetime, timedelta
from decimal import Decimal

import openpyxl
import pytest

from accounts.models import Applicant, AuditEntry, Family, Layout
from core.errors import ValidationFailed
from selection import imports, sheets
from selection.imports import families_import, units_import
from selection.models import Round, Seat, Session, Unit
from selection.scheduling import sessions_schedule_from_ranks
from selection.sheets import sheet_rows
from tests.factories import FamilyFactory, UserFactory, id_number_for
from tests.worlds import PRE_START, TZ

pytestmark = pytest.mark.django_db

UNIT_HEADER = "楼栋,房号,楼层,户型,朝向,面积（㎡）,月租金（元）"
FAMILY_HEADER = "排位号,家庭人数,可选户型,姓名,身份证号码,手机号码"


def csv_bytes(header: str, *lines: str, encoding: str = "utf-8") -> bytes:
    return ("\n".join([header, *lines]) + "\n").encode(encoding)


def xlsx_bytes(*rows: list) -> bytes:
    book = openpyxl.Workbook()
    for row in rows:
        book.active.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def rows_of(content: bytes, name: str) -> list[dict]:
    return sheet_rows(content=content, filename=name)


def errors_by_row(report) -> dict:
    return {e.row: e.message for e in report.errors}


@pytest.fixture
def rnd():
    return Round.objects.create(name="导入测试批次", preselect_starts_at=PRE_START)


# ---------------------------------------------------------------------------- units


def test_units_from_csv_are_all_written_and_audited(rnd):
    actor = UserFactory(is_staff=True)
    content = csv_bytes(
        UNIT_HEADER,
        "7,1201,12,一房一厅,南,45.20,1469",
        '7栋,1202,12,两房一厅,东南,"64.8","2,106"',
        "7,0301,3,单间,朝北,32.5㎡,1056元",
    )
    report = units_import(
        round_id=rnd.pk, rows=rows_of(content, "units.csv"), dry_run=False, actor=actor
    )
    assert report.ok and report.written and (report.total, report.created) == (3, 3)
    units = {u.number: u for u in Unit.objects.filter(round=rnd)}
    assert set(units) == {"1201", "1202", "0301"}  # a leading zero survives in CSV
    assert units["1202"].building == "7" and units["1202"].layout == Layout.TWO_BED
    assert units["1202"].orientation == "SE" and units["1202"].monthly_rent == Decimal("2106")
    assert units["0301"].orientation == "N" and units["0301"].area == Decimal("32.50")
    entry = AuditEntry.objects.get(action="selection.units_import")
    assert entry.actor == actor and entry.detail["written"] and entry.detail["created"] == 3


def test_units_from_xlsx_with_english_headers_a_title_row_and_a_blank_row(rnd):
    content = xlsx_bytes(
        ["2026年第一批房源清单"],
        ["building", "number", "floor", "layout", "orientation", "area", "monthly_rent"],
        ["8", 1501, 15.0, "1b1l", "S", 45.2, 1469],
        [None, None, None],
        ["8", 1502, 15, "三房一厅", "西南", 86.3, 2805.5],
        ["8", 1503, 15, "四房一厅", "南", 86.3, 2805.5],
    )
    rows = rows_of(content, "UNITS.XLSX")
    assert [r[sheets.ROW_KEY] for r in rows] == [3, 5, 6]  # as the spreadsheet numbers them
    report = units_import(round_id=rnd.pk, rows=rows, dry_run=False)
    assert errors_by_row(report).keys() == {6} and "四房一厅" in report.errors[0].message
    assert not Unit.objects.filter(round=rnd).exists()
    rows.pop()
    report = units_import(round_id=rnd.pk, rows=rows, dry_run=False)
    assert report.written
    unit = Unit.objects.get(round=rnd, number="1502")
    assert (unit.floor, unit.layout, unit.orientation) == (15, Layout.THREE_BED, "SW")
    assert unit.monthly_rent == Decimal("2805.50")
    assert Unit.objects.get(round=rnd, number="1501").floor == 15


def test_every_bad_unit_row_is_reported_and_nothing_is_written(world):
    content = csv_bytes(
        UNIT_HEADER,
        "9,101,1,一房一厅,南,45,1400",  # row 2: good
        "9,102,一楼,一房一厅,南,45,1400",  # row 3: floor
        "9,103,1,五房两厅,南,45,1400",  # row 4: layout
        "9,104,1,一房一厅,上,45,1400",  # row 5: orientation
        "9,105,1,一房一厅,南,-45,0",  # row 6: area and rent
        "9,101,1,一房一厅,南,45,1400",  # row 7: duplicate of row 2
        "3,1201,12,一房一厅,南,45.2,1469",  # row 8: already in the round
        ",106,1,一房一厅,南,45,1400",  # row 9: no building
        "9,107,1,一房一厅,南,45,1400,多余",  # row 10: more cells than headers
        "9,=1+1,1,一房一厅,南,45,1400",  # row 11: a formula
        "9,108,1,一房一厅,南,45,1400",  # row 12: good
    )
    before = Unit.objects.count()
    report = units_import(round_id=world.round.pk, rows=rows_of(content, "u.csv"), dry_run=False)
    found = errors_by_row(report)
    assert sorted(found) == [3, 4, 5, 6, 7, 8, 9, 10, 11]
    assert "楼层" in found[3] and "五房两厅" in found[4] and "朝向「上」" in found[5]
    assert "面积" in found[6] and "月租金" in found[6]  # every reason of a row, not the first
    assert "与第2行重复" in found[7] and "已在本批次中" in found[8]
    assert "楼栋不能为空" in found[9] and "多于表头" in found[10] and "「=」" in found[11]
    assert not report.written and report.created == 0
    assert Unit.objects.count() == before
    entry = AuditEntry.objects.get(action="selection.units_import")
    assert entry.detail["bad_rows"] == 9 and not entry.detail["written"]


def test_a_dry_run_checks_everything_and_writes_nothing(rnd):
    content = csv_bytes(
        UNIT_HEADER, "7,1201,12,一房一厅,南,45.2,1469", "7,1202,12,一房一厅,南,45.2,1469"
    )
    report = units_import(round_id=rnd.pk, rows=rows_of(content, "u.csv"), dry_run=True)
    assert report.ok and not report.written and report.created == 2
    assert [row[:3] for row in report.preview] == [[2, "7", "1201"], [3, "7", "1202"]]
    assert not Unit.objects.filter(round=rnd).exists()
    assert AuditEntry.objects.get(action="selection.units_import").detail["dry_run"] is True


def test_missing_columns_and_empty_files_are_reported_once(rnd):
    content = csv_bytes("楼栋,房号,户型", "7,1201,一房一厅", "7,1202,一房一厅")
    report = units_import(round_id=rnd.pk, rows=rows_of(content, "u.csv"), dry_run=False)
    assert [(e.row, e.message) for e in report.errors] == [
        (None, "缺少必填列：楼层、朝向、面积、月租金")
    ]
    report = units_import(round_id=rnd.pk, rows=[], dry_run=True)
    assert [e.message for e in report.errors] == ["文件中没有数据行"]


def test_a_failure_only_the_database_catches_leaves_nothing(rnd, monkeypatch):
    """The checks miss a unit that is already there (as a concurrent import would make
    it); the unique constraint refuses row 4 after rows 2 and 3 were inserted, and all three
    are rolled back."""
    Unit.objects.create(
        round=rnd,
        building="7",
        number="1203",
        floor=12,
        layout=Layout.ONE_BED,
        orientation="S",
        area=Decimal("45.2"),
        monthly_rent=Decimal("1469"),
    )
    monkeypatch.setattr(imports, "_units_existing", lambda rnd: set())
    content = csv_bytes(
        UNIT_HEADER,
        "7,1201,12,一房一厅,南,45.2,1469",
        "7,1202,12,一房一厅,南,45.2,1469",
        "7,1203,12,一房一厅,南,45.2,1469",
    )
    report = units_import(round_id=rnd.pk, rows=rows_of(content, "u.csv"), dry_run=False)
    assert not report.written and report.created == 0
    assert [e.row for e in report.errors] == [4] and "全部数据均未导入" in report.errors[0].message
    assert list(Unit.objects.filter(round=rnd).values_list("number", flat=True)) == ["1203"]
    assert AuditEntry.objects.get(action="selection.units_import").detail["written"] is False


@pytest.mark.parametrize(
    "name,content,message",
    [
        ("units.txt", b"a,b", "仅支持 CSV 或 XLSX"),
        ("units.xlsx", b"not a zip", "无法读取该 XLSX 文件"),
        ("units.csv", b"\n\n", "文件是空的"),
        ("units.csv", "楼栋,楼栋,房号\n1,2,3\n".encode(), "表头重复：楼栋"),
        ("units.csv", b"\xff\xfe\x00\x00\xff", "编码"),
    ],
)
def test_unreadable_files_are_refused(name, content, message):
    with pytest.raises(ValidationFailed) as caught:
        sheet_rows(content=content, filename=name)
    assert caught.value.code == "invalid_file" and message in caught.value.message


def test_gbk_csv_is_read():
    content = csv_bytes(UNIT_HEADER, "7,1201,12,一房一厅,南,45.2,1469", encoding="gbk")
    assert rows_of(content, "u.csv")[0]["户型"] == "一房一厅"


# ---------------------------------------------------------------------------- families


def test_families_from_csv_through_family_upsert(db):
    content = csv_bytes(
        FAMILY_HEADER,
        f"301,3,一房一厅、两房一厅,张三,{id_number_for(901)},13800000901",
        f"302,1,单间,李四,{id_number_for(902).lower()},+86 139-0000-0902",
    )
    report = families_import(rows=rows_of(content, "f.csv"), dry_run=False)
    assert report.written and (report.created, report.updated) == (2, 0)
    first = Family.objects.get(rank=301)
    assert first.eligible_layouts == [Layout.ONE_BED, Layout.TWO_BED]
    assert first.main_applicant.real_name == "张三" and first.household_size == 3
    second = Family.objects.get(rank=302).main_applicant
    assert second.id_number == id_number_for(902).upper() and second.mobile == "13900000902"


def test_families_from_xlsx_update_the_ones_already_listed(db):
    existing = FamilyFactory(rank=310, household_size=2)
    content = xlsx_bytes(
        ["rank", "household_size", "eligible_layouts", "real_name", "id_number", "mobile"],
        [310, 4, "两房一厅,三房一厅", "王五", existing.main_applicant.id_number, 13700000310],
        [311.0, 2, "1b1l", "赵六", id_number_for(911), "13700000311"],
    )
    report = families_import(rows=rows_of(content, "f.xlsx"), dry_run=False)
    assert report.written and (report.created, report.updated) == (1, 1)
    existing.refresh_from_db()
    existing.main_applicant.refresh_from_db()
    assert existing.household_size == 4 and existing.main_applicant.mobile == "13700000310"
    assert existing.eligible_layouts == [Layout.TWO_BED, Layout.THREE_BED]
    assert Family.objects.get(rank=311).main_applicant.real_name == "赵六"


def test_every_bad_family_row_is_reported_and_nothing_is_written(world):
    seated = world.families[0]  # has a seat in the world's first session
    other = world.families[1]
    bad_checksum = id_number_for(903)[:-1] + ("0" if id_number_for(903)[-1] != "0" else "1")
    content = xlsx_bytes(
        ["排位号", "家庭人数", "可选户型", "姓名", "身份证号码", "手机号码"],
        [401, 2, "一房一厅", "甲", id_number_for(901), "13800000001"],  # 2: good
        [402, 2, "一房一厅", "乙", bad_checksum, "13800000002"],  # 3: checksum
        [403, 2, "一房一厅", "丙", id_number_for(904), "12345"],  # 4: mobile
        [404, 0, "四房", "丁", id_number_for(905), "13800000004"],  # 5: size, layout
        [401, 2, "一房一厅", "戊", id_number_for(906), "13800000005"],  # 6: rank dup of 2
        [407, 2, "一房一厅", "己", id_number_for(901), "13800000006"],  # 7: ID dup of 2
        [other.rank, 2, "一房一厅", "庚", id_number_for(907), "13800000007"],  # 8: rank taken
        [409, 2, "一房一厅", "辛", seated.main_applicant.id_number, "13800000008"],  # 9: seated
        [410, 2, "一房一厅", "", 440304196001010000, "13800000009"],  # 10: name, numeric ID
        [411, 2, "", "癸", id_number_for(911), "13800000010"],  # 11: no layouts
    )
    applicants = Applicant.objects.count()
    report = families_import(rows=rows_of(content, "f.xlsx"), dry_run=False)
    found = errors_by_row(report)
    assert sorted(found) == [3, 4, 5, 6, 7, 8, 9, 10, 11]
    assert "身份证号码格式不正确" in found[3] and "手机号码格式不正确" in found[4]
    assert "家庭人数" in found[5] and "四房" in found[5]
    assert "排位号401与第2行重复" in found[6] and "身份证号码与第2行重复" in found[7]
    assert f"排位号{other.rank}已属于其他家庭" in found[8]
    assert "已安排选房场次，不能修改排位号" in found[9]
    assert "姓名不能为空" in found[10] and "文本格式" in found[10]
    assert "可选户型不能为空" in found[11]
    assert not report.written and Applicant.objects.count() == applicants
    assert not Family.objects.filter(rank=401).exists()


def test_family_dry_run_writes_nothing(db):
    content = csv_bytes(FAMILY_HEADER, f"501,3,两房一厅,张三,{id_number_for(951)},13800000951")
    report = families_import(rows=rows_of(content, "f.csv"), dry_run=True)
    assert report.ok and not report.written and report.created == 1
    assert report.preview[0][-1] == "新增" and "*" in report.preview[0][3]
    assert not Family.objects.filter(rank=501).exists()


def test_a_family_failure_only_the_database_catches_leaves_nothing(db, monkeypatch):
    FamilyFactory(rank=603)
    monkeypatch.setattr(imports, "_rank_holders", lambda ranks: {})
    content = csv_bytes(
        FAMILY_HEADER,
        f"601,3,两房一厅,甲,{id_number_for(961)},13800000961",
        f"602,3,两房一厅,乙,{id_number_for(962)},13800000962",
        f"603,3,两房一厅,丙,{id_number_for(963)},13800000963",
    )
    report = families_import(rows=rows_of(content, "f.csv"), dry_run=False)
    assert not report.written and [e.row for e in report.errors] == [4]
    assert not Family.objects.filter(rank__in=[601, 602]).exists()
    assert not Applicant.objects.filter(id_number=id_number_for(961)).exists()


# ---------------------------------------------------------------------------- scheduling

FIRST = datetime(2026, 3, 3, 9, 30, tzinfo=TZ)
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=TZ)


def schedule(rnd, **kwargs):
    args = {
        "round_id": rnd.pk,
        "first_start": FIRST,
        "block_size": 3,
        "gap_minutes": 5,
        "actor": None,
        "now": NOW,
    }
    return sessions_schedule_from_ranks(**(args | kwargs))


def test_families_are_split_into_rank_blocks(rnd):
    for rank in (7, 3, 5, 1, 6, 2, 4):  # created out of order on purpose
        FamilyFactory(rank=rank)
    actor = UserFactory(is_staff=True)
    sessions = schedule(rnd, actor=actor)
    assert [s.order for s in sessions] == [1, 2, 3]
    assert [s.starts_at for s in sessions] == [FIRST + timedelta(minutes=5 * k) for k in range(3)]
    assert all(s.ends_at - s.starts_at == timedelta(seconds=120) for s in sessions)
    assert all(s.kind == Session.Kind.FORMAL for s in sessions)
    blocks = [
        list(
            Seat.objects.filter(session=s)
            .order_by("family__rank")
            .values_list("family__rank", flat=True)
        )
        for s in sessions
    ]
    assert blocks == [[1, 2, 3], [4, 5, 6], [7]]
    entry = AuditEntry.objects.get(action="selection.sessions_schedule")
    assert entry.actor == actor and entry.detail["families"] == 7
    assert entry.detail["ranks"] == [1, 7]
    with pytest.raises(ValidationFailed) as caught:  # everyone has a formal seat now
        schedule(rnd, first_start=FIRST + timedelta(hours=1))
    assert caught.value.code == "no_families"


def test_a_rank_range_and_seated_families_left_out(world):
    for rank in range(1, 8):
        FamilyFactory(rank=rank)
    rnd = world.round
    last = max(s.ends_at for s in world.sessions)
    sessions = schedule(rnd, first_start=last + timedelta(minutes=10), rank_from=3, rank_to=5)
    assert [s.order for s in sessions] == [3]  # after the world's two sessions
    assert sorted(sessions[0].seats.values_list("family__rank", flat=True)) == [3, 4, 5]
    later = schedule(rnd, first_start=last + timedelta(minutes=30), block_size=10)
    assert sorted(later[0].seats.values_list("family__rank", flat=True)) == [1, 2, 6, 7]


def test_overlaps_and_bad_times_are_refused(world):
    for rank in range(1, 5):
        FamilyFactory(rank=rank)
    rnd, existing = world.round, world.sessions[1]  # 09:35–09:37
    sessions_before = Session.objects.count()
    cases = [
        ({"first_start": existing.starts_at - timedelta(minutes=6)}, "session_overlap"),
        ({"first_start": existing.starts_at + timedelta(seconds=60)}, "session_overlap"),
        ({"gap_minutes": 1, "first_start": FIRST + timedelta(hours=1)}, "invalid_gap"),
        ({"first_start": NOW - timedelta(minutes=1)}, "invalid_start"),
        ({"first_start": PRE_START - timedelta(hours=1)}, "invalid_start"),
        ({"block_size": 0}, "invalid_block_size"),
    ]
    for kwargs, code in cases:
        with pytest.raises(ValidationFailed) as caught:
            schedule(rnd, **kwargs)
        assert caught.value.code == code, kwargs
    assert Session.objects.count() == sessions_before
    assert not AuditEntry.objects.filter(action="selection.sessions_schedule").exists()
    # Right after the existing session ends is fine: [start, end) windows do not overlap.
    assert schedule(rnd, first_start=existing.ends_at, block_size=4)
