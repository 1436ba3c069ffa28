"""Staff pages on the round and session admin: import units and families (check, then
confirm), schedule sessions from rank blocks and supplementary sessions, export results to
XLSX, and a session's live view. Each page checks its permission, calls one domain service
and leaves an audit entry; none writes a model itself."""

from __future__ import annotations

import hashlib
import io
import secrets

from django import forms
from django.contrib import messages
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.http import content_disposition_header

from accounts.services import audit_record
from core.errors import DomainError
from selection import exports, imports, scheduling, sheets
from selection.models import Allocation, Round, Session, SupplementaryApplication
from selection.selectors import session_live
from selection.supplementary import (
    pending_applications_overview,
    supplementary_session_schedule,
)

IMPORT_STASH_SECONDS = 30 * 60
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

# Who may do what, by Django permission (accounts.roles grants them to the role groups).
IMPORT_PERMS = {
    "units": ("selection.add_unit",),
    "families": ("accounts.add_family", "accounts.change_family"),
}
SCHEDULE_PERMS = ("selection.add_session", "selection.add_seat")
EXPORT_PERMS = ("selection.view_round", "accounts.view_family")
LIVE_PERMS = ("selection.view_session",)


def _require(request, perms) -> None:
    if not request.user.has_perms(perms):
        raise PermissionDenied


def _ip(request) -> str:
    return request.META.get("REMOTE_ADDR", "")[:64]


def round_tools(request) -> dict[str, bool]:
    """Which of the round's staff tools this user sees (the views check again)."""
    has = request.user.has_perms
    return {
        "import_units": has(IMPORT_PERMS["units"]),
        "import_families": has(IMPORT_PERMS["families"]),
        "schedule": has(SCHEDULE_PERMS),
        "export": has(EXPORT_PERMS),
    }


def _round(model_admin, request, object_id) -> Round:
    rnd = model_admin.get_object(request, object_id)
    if rnd is None:
        raise Http404("未找到该选房批次")
    if not model_admin.has_view_permission(request, rnd):
        raise PermissionDenied
    return rnd


def _page(model_admin, request, template: str, obj, title: str, **extra) -> TemplateResponse:
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.model._meta,
        "original": obj,
        "title": title,
        **extra,
    }
    return TemplateResponse(request, f"admin/selection/{template}", context)


def _round_url(rnd: Round) -> str:
    return reverse("admin:selection_round_change", args=[rnd.pk])


# ---------------------------------------------------------------------------- imports


class ImportUploadForm(forms.Form):
    file = forms.FileField(label="文件（CSV 或 XLSX）")

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if not upload.name.lower().endswith((".csv", ".xlsx")):
            raise forms.ValidationError("仅支持 CSV 或 XLSX（Excel）文件")
        if upload.size > sheets.MAX_FILE_BYTES:
            raise forms.ValidationError(f"文件不能超过 {sheets.MAX_FILE_BYTES // (1024 * 1024)} MB")
        return upload


IMPORT_TITLES = {"units": "导入房源", "families": "导入家庭"}
IMPORT_NOUNS = {"units": "套房源", "families": "户家庭"}


def _run_import(kind: str, rnd: Round, request, *, content: bytes, name: str, dry_run: bool):
    rows = sheets.sheet_rows(content=content, filename=name)
    source = f"{name} sha256:{hashlib.sha256(content).hexdigest()[:16]}"
    common = {"rows": rows, "dry_run": dry_run, "actor": request.user, "ip": _ip(request)}
    if kind == "units":
        return imports.units_import(round_id=rnd.pk, source=source, **common)
    return imports.families_import(source=source, **common)


def _stash_key(token: str) -> str:
    return f"selection:import:{token}"


def import_view(model_admin, request, object_id, kind: str):
    """Upload → every bad row listed (nothing imported), or a preview with counts and a
    「确认导入」 button. Confirming re-reads the same file (kept for 30 minutes, for this user
    only) and imports it for real; the rows are checked again, so a change in between is
    caught."""
    rnd = _round(model_admin, request, object_id)
    _require(request, IMPORT_PERMS[kind])
    title = IMPORT_TITLES[kind]
    form = ImportUploadForm()
    report = token = None
    if request.method == "POST" and request.POST.get("token"):
        stash = cache.get(_stash_key(request.POST["token"]))
        if not stash or (stash["user"], stash["kind"], stash["round"]) != (
            request.user.pk,
            kind,
            rnd.pk,
        ):
            messages.error(request, "上传的文件已过期，请重新上传")
            return HttpResponseRedirect(request.path)
        try:
            report = _run_import(
                kind, rnd, request, content=stash["content"], name=stash["name"], dry_run=False
            )
        except DomainError as exc:
            messages.error(request, exc.message)
            return HttpResponseRedirect(request.path)
        if report.written:
            cache.delete(_stash_key(request.POST["token"]))
            done = f"已导入{report.created}{IMPORT_NOUNS[kind]}"
            if report.updated:
                done += f"，更新{report.updated}{IMPORT_NOUNS[kind]}"
            messages.success(request, f"{done}（文件：{stash['name']}）")
            return HttpResponseRedirect(_round_url(rnd))
    elif request.method == "POST":
        form = ImportUploadForm(request.POST, request.FILES)
        if form.is_valid():
            upload = form.cleaned_data["file"]
            content = upload.read()
            try:
                report = _run_import(
                    kind, rnd, request, content=content, name=upload.name, dry_run=True
                )
            except DomainError as exc:
                form.add_error("file", exc.message)
            else:
                if report.ok:
                    token = secrets.token_urlsafe(24)
                    cache.set(
                        _stash_key(token),
                        {
                            "user": request.user.pk,
                            "kind": kind,
                            "round": rnd.pk,
                            "name": upload.name,
                            "content": content,
                        },
                        IMPORT_STASH_SECONDS,
                    )
    columns = sheets.UNIT_COLUMNS if kind == "units" else sheets.FAMILY_COLUMNS
    return _page(
        model_admin,
        request,
        "import.html",
        rnd,
        title,
        kind=kind,
        noun=IMPORT_NOUNS[kind],
        form=form,
        report=report,
        token=token,
        columns=[(aliases[0], name) for name, aliases in columns.items()],
    )


# ---------------------------------------------------------------------------- scheduling


def _datetime_field(label: str) -> forms.DateTimeField:
    return forms.DateTimeField(
        label=label,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        help_text="北京时间",
    )


class ScheduleForm(forms.Form):
    first_start = _datetime_field("首场开始时间")
    block_size = forms.IntegerField(label="每场家庭数", min_value=1, max_value=1000, initial=20)
    gap_minutes = forms.IntegerField(
        label="场次间隔（分钟）",
        min_value=1,
        max_value=24 * 60,
        initial=5,
        help_text="相邻两场开始时间之差，不能短于正选时长",
    )
    rank_from = forms.IntegerField(label="排位号从", min_value=1, required=False)
    rank_to = forms.IntegerField(
        label="排位号至", min_value=1, required=False, help_text="留空则安排全部未安排场次的家庭"
    )

    def clean(self):
        data = super().clean()
        low, high = data.get("rank_from"), data.get("rank_to")
        if low is not None and high is not None and low > high:
            raise forms.ValidationError("排位号范围不正确：起始排位号大于结束排位号")
        return data


class SupplementaryForm(forms.Form):
    starts_at = _datetime_field("补选场次开始时间")
    ranks = forms.CharField(
        label="仅安排以下家庭（排位号）",
        required=False,
        max_length=2000,
        help_text="可选。多个排位号以逗号或空格分隔；留空则安排全部已申请、尚未安排的家庭",
    )

    def clean_ranks(self) -> list[int] | None:
        raw = self.cleaned_data.get("ranks", "").replace("，", ",").replace("、", ",")
        parts = [p for p in raw.replace(",", " ").split() if p]
        if not parts:
            return None
        if not all(p.isdigit() and len(p) <= 9 for p in parts):
            raise forms.ValidationError("排位号须为正整数，多个以逗号分隔")
        return sorted({int(p) for p in parts})


def schedule_view(model_admin, request, object_id):
    rnd = _round(model_admin, request, object_id)
    _require(request, SCHEDULE_PERMS)
    form = ScheduleForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            sessions = scheduling.sessions_schedule_from_ranks(
                round_id=rnd.pk,
                first_start=data["first_start"],
                block_size=data["block_size"],
                gap_minutes=data["gap_minutes"],
                rank_from=data["rank_from"],
                rank_to=data["rank_to"],
                actor=request.user,
                ip=_ip(request),
            )
        except DomainError as exc:
            form.add_error(None, exc.message)
        else:
            seated = sum(s.seats.count() for s in sessions)
            messages.success(
                request,
                f"已安排第{sessions[0].order}至第{sessions[-1].order}场，"
                f"共{len(sessions)}场、{seated}户家庭",
            )
            return HttpResponseRedirect(_sessions_url(rnd))
    return _page(
        model_admin,
        request,
        "round_form.html",
        rnd,
        "按排位安排场次",
        form=form,
        overview=scheduling.schedule_overview(round_id=rnd.pk),
        kind="formal",
    )


def _sessions_url(rnd: Round) -> str:
    return reverse("admin:selection_session_changelist") + f"?round__id__exact={rnd.pk}"


def supplementary_view(model_admin, request, object_id):
    rnd = _round(model_admin, request, object_id)
    _require(request, SCHEDULE_PERMS)
    form = SupplementaryForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            session = supplementary_session_schedule(
                round_id=rnd.pk,
                starts_at=form.cleaned_data["starts_at"],
                actor=request.user,
                ip=_ip(request),
                now=timezone.now(),
                family_ranks=form.cleaned_data["ranks"],
            )
        except DomainError as exc:
            form.add_error(None, exc.message)
        else:
            said = f"已安排补选场次：第{session.order}场，共{session.seats.count()}户家庭"
            waiting = SupplementaryApplication.objects.filter(
                round=rnd, session__isnull=True
            ).count()
            if waiting:  # families of a day whose applications have not closed yet
                said += f"；另有{waiting}户家庭的补选申请尚未截止，截止后可再安排"
            messages.success(request, said)
            return HttpResponseRedirect(_sessions_url(rnd))
    return _page(
        model_admin,
        request,
        "round_form.html",
        rnd,
        "安排补选场次",
        form=form,
        overview=scheduling.schedule_overview(round_id=rnd.pk),
        pending=pending_applications_overview(round_id=rnd.pk, now=timezone.now()),
        kind="supplementary",
    )


# ---------------------------------------------------------------------------- export


def results_xlsx(*, round_id: int, title: str) -> tuple[bytes, int]:
    """The round's results as an XLSX workbook, and its number of data rows."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    rows = exports.results_table(round_id=round_id)
    book = Workbook()
    sheet = book.active
    sheet.title = "选房结果"
    sheet.append(exports.RESULT_HEADERS)
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for row in rows:
        sheet.append(row)
    for line in sheet.iter_rows(min_row=2):
        for cell in line:
            if cell.data_type == "f":  # a name like "=HYPERLINK(…)" stays text, never a formula
                cell.data_type = "s"
    number_formats = {"G": "0.00", "H": "0.00", "J": "yyyy-mm-dd hh:mm:ss"}
    for column, number_format in number_formats.items():
        for cell in sheet[column][1:]:
            cell.number_format = number_format
    widths = {"A": 8, "B": 10, "C": 22, "D": 16, "E": 12, "F": 10, "I": 14, "J": 20, "K": 10}
    for column, width in widths.items():
        sheet.column_dimensions[column].width = width
    sheet.freeze_panes = "A2"
    book.properties.title = title
    out = io.BytesIO()
    book.save(out)
    return out.getvalue(), len(rows)


def export_view(model_admin, request, object_id):
    rnd = _round(model_admin, request, object_id)
    _require(request, EXPORT_PERMS)
    content, count = results_xlsx(round_id=rnd.pk, title=f"{rnd.name} 选房结果")
    audit_record(
        actor=request.user,
        action="selection.results_export",
        target=f"selection.Round:{rnd.pk} {rnd}",
        detail={"rows": count, "format": "xlsx"},
        ip=_ip(request),
    )
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    response = HttpResponse(content, content_type=XLSX_TYPE)
    response["Content-Disposition"] = content_disposition_header(
        as_attachment=True, filename=f"选房结果-{rnd.name}-{stamp}.xlsx"
    )
    return response


# ---------------------------------------------------------------------------- live view

LIVE_REFRESH_SECONDS = 3


def session_live_view(model_admin, request, object_id):
    """实时监控: the session's counts from `session_live`, refreshed every few seconds. The
    first open is audited; the page's own refreshes (?auto=1) are not."""
    session = model_admin.get_object(request, object_id)
    if session is None:
        raise Http404("未找到该场次")
    _require(request, LIVE_PERMS)
    live = session_live(session_id=session.pk)
    session = live["session"]
    now = timezone.now()
    if not request.GET.get("auto"):
        audit_record(
            actor=request.user,
            action="selection.session_live_view",
            target=f"selection.Session:{session.pk} {session}",
            ip=_ip(request),
        )
    if now < session.starts_at:
        clock = ("距开始", session.starts_at - now)
    elif now < session.ends_at and session.status != Session.Status.CLOSED:
        clock = ("距结束", session.ends_at - now)
    else:
        clock = None
    feed = (
        Allocation.objects.filter(session=session)
        .select_related("unit", "family", "ledger_entry", "session")
        .order_by("-ledger_entry_id")[:20]
    )
    return _page(
        model_admin,
        request,
        "session_live.html",
        session,
        f"实时监控：{session}",
        live=live,
        now=now,
        clock_label=clock[0] if clock else "",
        clock_seconds=int(clock[1].total_seconds()) if clock else None,
        feed=feed,
        refresh=LIVE_REFRESH_SECONDS,
    )
