"""Staff admin for signing: texts (read-only once used), agreements with bulk creation and
push, and the review queue (each character beside the expected one; approve → seal, or
reject with a reason). Views call signing services; every action is audited."""

from __future__ import annotations

import base64
import hashlib
import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

import core.converters  # noqa: F401 (registers <id:...>)
from accounts.models import Family
from accounts.services import audit_record
from core.admin import AuditedModelAdmin, ReadOnlyAdmin
from core.context import RequestContext
from core.errors import DomainError
from core.http import private_image_response, private_zip_response
from signing.agreements import services
from signing.agreements.documents import document_latest
from signing.agreements.evidence import evidence_kind_label
from signing.agreements.package import evidence_package_build, package_filename
from signing.lease.payments import provider_label as payment_provider_label
from signing.lease.services import card_photo_current
from signing.models import (
    Agreement,
    AgreementTemplate,
    CardPhoto,
    ConsentText,
    DepositPayment,
    Evidence,
    Lease,
    LeaseStage,
    PaymentNotification,
    SignatureCharacter,
    TemplateKind,
    lease_stage,
    lease_stage_filter,
)
from signing.templatetags.money import fen_to_yuan


class TemplateRevisionForm(forms.Form):
    """The content of a template version. Saving publishes a NEW version through
    `services.template_revise`; the version shown is never changed."""

    kind = forms.ChoiceField(label="类型", choices=TemplateKind.choices)
    title = forms.CharField(label="标题", max_length=100)
    organisation = forms.CharField(
        label="甲方（出租人）名称",
        max_length=100,
        required=False,
        help_text="协议正文、签署栏、电子印章和印章证书中的甲方名称；留空则使用系统配置的机构名称",
    )
    consult_phones = forms.CharField(label="咨询电话", max_length=100, required=False)
    consult_hours = forms.CharField(label="咨询时间", max_length=100, required=False)
    body = forms.CharField(
        label="正文",
        widget=forms.Textarea(attrs={"rows": 30, "cols": 100}),
        help_text="可使用变量，如 {{ name }}、{{ organisation }}、{{ window_ends_at }}",
    )


@admin.register(AgreementTemplate)
class AgreementTemplateAdmin(admin.ModelAdmin):
    """协议模板: a list of versions; opening one shows its content, and saving it publishes
    the next version (services.template_revise, audited there). No version is ever edited
    or deleted: agreements keep the version they were made from."""

    list_display = (
        "title",
        "kind",
        "version",
        "organisation_display",
        "agreements",
        "newest",
        "created_display",
    )
    list_filter = ("kind",)
    ordering = ("kind", "-version")

    @admin.display(description="甲方")
    def organisation_display(self, obj):
        return services.template_organisation(obj)

    @admin.display(description="已用于协议（份）")
    def agreements(self, obj):
        return Agreement.objects.filter(template=obj).count()

    @admin.display(description="最新版本", boolean=True)
    def newest(self, obj):
        newest = services.template_newest(kind=obj.kind)
        return newest is not None and newest.pk == obj.pk

    @admin.display(description="创建时间", ordering="created_at")
    def created_display(self, obj):
        return timezone.localtime(obj.created_at).strftime("%Y-%m-%d %H:%M")

    def has_delete_permission(self, request, obj=None):
        return False

    def _revise_view(self, request, base: AgreementTemplate | None):
        can_publish = request.user.has_perm("signing.add_agreementtemplate")
        if not (can_publish or self.has_view_permission(request, base)):
            raise PermissionDenied
        initial = {}
        if base is not None:
            initial = {
                field: getattr(base, field)
                for field in (
                    "kind",
                    "title",
                    "organisation",
                    "consult_phones",
                    "consult_hours",
                    "body",
                )
            }
        form = TemplateRevisionForm(request.POST or None, initial=initial)
        if base is not None:
            form.fields["kind"].disabled = True
        if not can_publish:
            for field in form.fields.values():
                field.disabled = True
        if request.method == "POST":
            if not can_publish:
                raise PermissionDenied
            if form.is_valid():
                data = form.cleaned_data
                try:
                    template = services.template_revise(
                        kind=base.kind if base is not None else data["kind"],
                        title=data["title"],
                        body=data["body"],
                        organisation=data["organisation"],
                        consult_phones=data["consult_phones"],
                        consult_hours=data["consult_hours"],
                        based_on=base,
                        actor=request.user,
                        ip=request.META.get("REMOTE_ADDR", ""),
                        now=timezone.now(),
                    )
                except DomainError as exc:
                    for name, errors in (exc.fields or {}).items():
                        if name in form.fields:
                            for error in errors:
                                form.add_error(name, error)
                    messages.error(request, exc.message)
                else:
                    note = f"，v{base.version} 保持不变" if base is not None else ""
                    messages.success(request, f"已发布新版本：{template}{note}")
                    return HttpResponseRedirect(
                        reverse("admin:signing_agreementtemplate_change", args=[template.pk])
                    )
        versions = (
            AgreementTemplate.objects.filter(kind=base.kind).order_by("-version")
            if base is not None
            else AgreementTemplate.objects.none()
        )
        newest = services.template_newest(kind=base.kind) if base is not None else None
        return TemplateResponse(
            request,
            "admin/signing/agreementtemplate/revise.html",
            {
                **self.admin_site.each_context(request),
                "title": f"协议模板：{base}" if base is not None else "新建协议模板",
                "opts": self.model._meta,
                "form": form,
                "base": base,
                "newest": newest,
                "versions": versions,
                "in_use": Agreement.objects.filter(template=base).count() if base else 0,
                "can_publish": can_publish,
                # (name, its Chinese label), in the labels' order: what each one fills in.
                "variables": [
                    (name, label)
                    for name, label in CONTEXT_LABELS.items()
                    if name
                    in (
                        services.TEMPLATE_VARIABLES[base.kind]
                        if base
                        else services.COMMON_VARIABLES
                    )
                ],
            },
        )

    def add_view(self, request, form_url="", extra_context=None):
        if not request.user.has_perm("signing.add_agreementtemplate"):
            raise PermissionDenied
        return self._revise_view(request, None)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        base = get_object_or_404(AgreementTemplate, pk=object_id)
        return self._revise_view(request, base)


@admin.register(ConsentText)
class ConsentTextAdmin(AuditedModelAdmin):
    list_display = ("title", "kind", "version", "created_at")


class EvidenceInline(admin.TabularInline):
    """The chain as recorded: the step by its Chinese name, its content and hash verbatim
    (what the hash covers), set as code."""

    model = Evidence
    fields = ("seq", "kind_label", "actor", "at", "ip", "content", "hash_shown")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    @admin.display(description="类型")
    def kind_label(self, evidence):
        return evidence_kind_label(evidence.kind)

    @admin.display(description="内容")
    def content(self, evidence):
        return format_html("<code>{}</code>", json.dumps(evidence.data, ensure_ascii=False))

    @admin.display(description="哈希")
    def hash_shown(self, evidence):
        return format_html("<code>{}</code>", evidence.hash)


def _parse_ranks(text: str) -> list[int]:
    ranks: set[int] = set()
    for part in text.replace("，", ",").replace("\n", ",").split(","):
        part = part.strip()
        if not part:
            continue
        if "-" in part:
            low, high = (int(x) for x in part.split("-", 1))
            ranks.update(range(low, high + 1))
        else:
            ranks.add(int(part))
    return sorted(ranks)


class BulkCreateForm(forms.Form):
    template = forms.ModelChoiceField(AgreementTemplate.objects.none(), label="协议模板")
    ranks = forms.CharField(
        label="家庭排位号",
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="逗号或换行分隔，可写区间，如 1-20, 35",
    )
    window_starts_at = forms.DateTimeField(label="签约开始时间", help_text="如 2026-01-20 09:30")
    window_ends_at = forms.DateTimeField(label="签约截止时间", help_text="如 2026-01-23 18:00")
    push = forms.BooleanField(label="创建后立即推送短信", required=False, initial=True)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # New agreements are made from the newest version of each kind only.
        newest = [
            t.pk for kind in TemplateKind.values if (t := services.template_newest(kind=kind))
        ]
        self.fields["template"].queryset = AgreementTemplate.objects.filter(pk__in=newest)

    def clean_ranks(self):
        try:
            ranks = _parse_ranks(self.cleaned_data["ranks"])
        except ValueError:
            raise forms.ValidationError("排位号格式不正确") from None
        if not ranks:
            raise forms.ValidationError("请填写排位号")
        return ranks


class RejectForm(forms.Form):
    reason = forms.CharField(
        label="退回原因", max_length=300, widget=forms.Textarea(attrs={"rows": 3})
    )


# What each template variable (signing/agreements/services.py TEMPLATE_VARIABLES) is called on
# the agreement's admin page.
CONTEXT_LABELS = {
    "name": "姓名",
    "id_number_masked": "身份证号码",
    "rank": "排位号",
    "household_size": "家庭人数",
    "window_starts_at": "签约开始时间",
    "window_ends_at": "签约截止时间",
    "organisation": "签约机构",
    "consult_phones": "咨询电话",
    "consult_hours": "咨询时间",
    "verification_code": "协议验证码",
    "unit_label": "承租住房",
    "building": "楼栋",
    "unit_number": "房号",
    "floor": "楼层",
    "layout": "户型",
    "orientation": "朝向",
    "area": "面积（平方米）",
    "monthly_rent": "月租金（元）",
    "monthly_rent_capital": "月租金（大写）",
    "deposit": "押金（元）",
    "deposit_capital": "押金（大写）",
    "deposit_months": "押金月数",
    "lease_years": "租期（年）",
    "debit_bank": "托收银行",
    "debit_holder": "托收户名",
    "debit_account_masked": "托收账号",
}


class ReviewLinkColumn:
    """The 审核 column only for those who may review: a link that answers 403 is no help."""

    def get_list_display(self, request):
        shown = super().get_list_display(request)
        if not request.user.has_perm("signing.review_agreement"):
            shown = tuple(c for c in shown if c != "review_link")
        return shown


@admin.register(Agreement)
class AgreementAdmin(ReviewLinkColumn, ReadOnlyAdmin):
    # Few, short columns so that the list reads at 1280 px; the full record is one click away.
    list_display = (
        "title_short",
        "family_short",
        "status",
        "step_attempt",
        "window_end_short",
        "signed_short",
        "review_link",
    )
    list_display_links = ("title_short",)
    list_select_related = ("family__main_applicant",)
    list_filter = ("status", "template")

    @admin.display(description="协议", ordering="title")
    def title_short(self, obj):
        return obj.title if len(obj.title) <= 14 else obj.title[:13] + "…"

    @admin.display(description="家庭", ordering="family__rank")
    def family_short(self, obj):
        return f"{obj.family.rank} · {obj.family.main_applicant.real_name}"

    @admin.display(description="签署步骤（次）", ordering="step")
    def step_attempt(self, obj):
        step = obj.get_step_display()
        short = step if len(step) <= 8 else step[:7] + "…"
        return format_html('<span title="{}">{}（第{}次）</span>', step, short, obj.attempt)

    @admin.display(description="签约截止", ordering="window_ends_at")
    def window_end_short(self, obj):
        return timezone.localtime(obj.window_ends_at).strftime("%m-%d %H:%M")

    @admin.display(description="签字时间", ordering="signed_at")
    def signed_short(self, obj):
        return timezone.localtime(obj.signed_at).strftime("%m-%d %H:%M") if obj.signed_at else "—"

    @admin.display(description="审核")
    def review_link(self, obj):
        label = "审核" if obj.status == Agreement.Status.SIGNED else "详情/代办"
        url = reverse("admin:signing_agreement_review", args=[obj.pk])
        return format_html('<a href="{}">{}</a>', url, label)

    search_fields = ("=family__rank", "family__main_applicant__real_name", "=verification_code")
    inlines = [EvidenceInline]
    # The variables as labelled lines, not the stored JSON with its English keys.
    exclude = ("rendered_text", "context")
    readonly_fields = ("context_shown",)

    @admin.display(description="正文变量")
    def context_shown(self, obj):
        order = {key: index for index, key in enumerate(CONTEXT_LABELS)}
        keys = sorted(obj.context, key=lambda key: (order.get(key, len(order)), key))
        return format_html_join(
            "",
            "<div>{}：{}</div>",
            ((CONTEXT_LABELS.get(key, key), obj.context[key]) for key in keys),
        )

    change_list_template = "admin/signing/agreement/change_list.html"

    def get_urls(self):
        own = [
            path(
                "bulk-create/",
                self.admin_site.admin_view(self.bulk_create_view),
                name="signing_agreement_bulk",
            ),
            path(
                "<id:agreement_id>/review/",
                self.admin_site.admin_view(self.review_view),
                name="signing_agreement_review",
            ),
            path(
                "<id:agreement_id>/document/",
                self.admin_site.admin_view(self.document_view),
                name="signing_agreement_document",
            ),
            path(
                "<id:agreement_id>/evidence-package/",
                self.admin_site.admin_view(self.evidence_package_view),
                name="signing_agreement_evidence_package",
            ),
            path(
                "<id:agreement_id>/card/<str:side>/",
                self.admin_site.admin_view(self.card_photo_view),
                name="signing_agreement_card",
            ),
        ]
        return own + super().get_urls()

    def bulk_create_view(self, request):
        if not request.user.has_perm("signing.add_agreement"):
            raise PermissionDenied
        form = BulkCreateForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            data, now = form.cleaned_data, timezone.now()
            created, refused = [], []
            for family in Family.objects.filter(rank__in=data["ranks"]).select_related(
                "main_applicant"
            ):
                try:
                    agreement = services.agreement_create(
                        family=family,
                        template=data["template"],
                        window_starts_at=data["window_starts_at"],
                        window_ends_at=data["window_ends_at"],
                        actor=request.user,
                        now=now,
                    )
                    if data["push"]:
                        services.agreement_push(
                            agreement_id=agreement.pk,
                            actor=request.user,
                            ip=request.META.get("REMOTE_ADDR", ""),
                            now=now,
                        )
                    created.append(family.rank)
                except DomainError as exc:
                    refused.append(f"{family.rank}：{exc.message}")
            missing = sorted(
                set(data["ranks"]) - set(created) - {int(r.split("：")[0]) for r in refused}
            )
            audit_record(
                actor=request.user,
                action="signing.agreements_create",
                target=str(data["template"]),
                detail={
                    "created": created,
                    "refused": refused,
                    "missing": missing,
                    "push": data["push"],
                },
                ip=request.META.get("REMOTE_ADDR", ""),
            )
            messages.success(
                request, f"已创建 {len(created)} 份协议" + ("并推送短信" if data["push"] else "")
            )
            for line in refused:
                messages.warning(request, line)
            if missing:
                messages.warning(request, f"未找到排位号：{', '.join(map(str, missing))}")
            return HttpResponseRedirect(reverse("admin:signing_agreement_changelist"))
        return TemplateResponse(
            request,
            "admin/signing/agreement/bulk_create.html",
            {
                **self.admin_site.each_context(request),
                "form": form,
                "title": "批量创建协议",
                "opts": self.model._meta,
            },
        )

    def document_view(self, request, agreement_id: int):
        """Staff may open any agreement's latest PDF (applicants only their own, in the API)."""
        if not request.user.has_perm("signing.view_agreement"):
            raise PermissionDenied
        agreement = get_object_or_404(Agreement, pk=agreement_id)
        document = document_latest(agreement=agreement)
        if document is None:
            raise Http404
        audit_record(
            actor=request.user,
            action="signing.document_view",
            target=str(agreement),
            detail={"sha256": document.sha256},
            ip=request.META.get("REMOTE_ADDR", ""),
        )
        response = HttpResponse(bytes(document.pdf), content_type="application/pdf")
        response["Content-Disposition"] = (
            f'inline; filename="agreement-{agreement.verification_code}.pdf"'
        )
        response["Cache-Control"] = "private, no-store"
        return response

    def evidence_package_view(self, request, agreement_id: int):
        """The agreement's evidence package as a zip (signing/agreements/package.py), for any
        status: staff investigate void and abandoned agreements too. Audited with the
        package's manifest hash and head."""
        if not request.user.has_perm("signing.view_agreement"):
            raise PermissionDenied
        agreement = get_object_or_404(Agreement, pk=agreement_id)
        now = timezone.now()
        package = evidence_package_build(agreement_id=agreement.pk, now=now)
        head = package.manifest["head"] or {}
        audit_record(
            actor=request.user,
            action="signing.evidence_package_download",
            target=str(agreement),
            detail={
                "agreement_id": agreement.pk,
                "manifest_sha256": hashlib.sha256(package.manifest_bytes()).hexdigest(),
                "head_count": head.get("count"),
                "head_last_hash": head.get("last_hash"),
            },
            ip=request.META.get("REMOTE_ADDR", ""),
            now=now,
        )
        return private_zip_response(
            package.zip_bytes(),
            filename=package_filename(agreement),
            ascii_filename=package_filename(agreement, ascii=True),
        )

    def card_photo_view(self, request, agreement_id: int, side: str):
        """A lease's bank-card photo (the stored, re-encoded one), for reviewing staff."""
        if not request.user.has_perm("signing.view_agreement"):
            raise PermissionDenied
        lease = get_object_or_404(Lease, agreement_id=agreement_id)
        if side not in CardPhoto.Side.values:
            raise Http404
        photo = card_photo_current(lease=lease, side=side)
        if photo is None:
            raise Http404
        audit_record(
            actor=request.user,
            action="signing.card_photo_view",
            target=str(lease),
            detail={"side": side, "sha256": photo.sha256},
            ip=request.META.get("REMOTE_ADDR", ""),
        )
        return private_image_response(
            bytes(photo.image), content_type=photo.content_type, filename=f"card-{photo.side}.jpg"
        )

    def review_view(self, request, agreement_id: int):
        if not request.user.has_perm("signing.review_agreement"):
            raise PermissionDenied
        agreement = get_object_or_404(
            Agreement.objects.select_related("family__main_applicant"), pk=agreement_id
        )
        reject = RejectForm(request.POST if request.POST.get("action") == "reject" else None)
        if request.method == "POST":
            try:
                if request.POST.get("action") == "approve" and not request.POST.get("confirm_seal"):
                    # Sealing is irreversible: the page asks for a ticked confirmation, and a
                    # POST without it is refused here whatever the page did.
                    messages.error(request, "请先勾选「我已核对签名与协议内容，确认盖章」再提交")
                    return HttpResponseRedirect(request.path)
                if request.POST.get("action") == "approve":
                    services.agreement_approve(
                        agreement_id=agreement.pk,
                        actor=request.user,
                        ip=request.META.get("REMOTE_ADDR", ""),
                        now=timezone.now(),
                    )
                    messages.success(request, "已审核通过并盖章，已短信通知申请人")
                    return HttpResponseRedirect(
                        reverse("admin:signing_agreement_changelist") + "?status__exact=signed"
                    )
                if request.POST.get("action") == "abandon" and request.POST.get(
                    "declaration_version"
                ):
                    services.agreement_abandon(
                        agreement_id=agreement.pk,
                        actor=request.user,
                        on_behalf=True,
                        declaration_version=request.POST["declaration_version"],
                        ctx=RequestContext(ip=request.META.get("REMOTE_ADDR", "")),
                        now=timezone.now(),
                    )
                    messages.success(request, "已代申请人提交《放弃签约声明书》")
                    return HttpResponseRedirect(reverse("admin:signing_agreement_changelist"))
                if reject.is_valid():
                    services.agreement_reject(
                        agreement_id=agreement.pk,
                        actor=request.user,
                        reason=reject.cleaned_data["reason"],
                        ip=request.META.get("REMOTE_ADDR", ""),
                        now=timezone.now(),
                    )
                    messages.success(request, "已退回，已短信通知申请人重新签署")
                    return HttpResponseRedirect(
                        reverse("admin:signing_agreement_changelist") + "?status__exact=signed"
                    )
            except DomainError as exc:
                messages.error(request, exc.message)
        lease = Lease.objects.filter(agreement=agreement).first()
        characters = [
            {
                "expected": c.expected,
                "png": base64.b64encode(bytes(c.png)).decode(),
                "strokes": len(c.strokes),
            }
            for c in SignatureCharacter.objects.filter(
                agreement=agreement, attempt=agreement.attempt
            ).order_by("index")
        ]
        return TemplateResponse(
            request,
            "admin/signing/agreement/review.html",
            {
                **self.admin_site.each_context(request),
                "agreement": agreement,
                "characters": characters,
                "reject_form": reject,
                "title": f"审核：{agreement}",
                "opts": self.model._meta,
                "can_review": agreement.status == Agreement.Status.SIGNED
                and (lease is None or lease.deposit_paid_at is not None),
                "lease": lease,
                "payment": DepositPayment.objects.filter(lease=lease).first() if lease else None,
                "can_abandon": agreement.status
                in (Agreement.Status.PENDING, Agreement.Status.SIGNED),
                "declaration": services.abandon_declaration(agreement),
            },
        )


class LeaseStageFilter(admin.SimpleListFilter):
    title = "阶段"
    parameter_name = "stage"

    def lookups(self, request, model_admin):
        return LeaseStage.choices

    def queryset(self, request, queryset):
        if self.value() not in LeaseStage.values:
            return queryset
        return queryset.filter(lease_stage_filter(self.value()))


@admin.register(Lease)
class LeaseAdmin(ReviewLinkColumn, ReadOnlyAdmin):
    """租赁签约: the queue of leases; review happens on the agreement's review page."""

    list_display = (
        "unit_label",
        "family",
        "stage",
        "deposit_paid_at",
        "created_at",
        "review_link",
    )
    search_fields = (
        "unit_label",
        "=agreement__family__rank",
        "agreement__family__main_applicant__real_name",
    )
    list_filter = (LeaseStageFilter,)  # the stages the 阶段 column shows
    exclude = ("account_number", "deposit_fen")
    readonly_fields = ("deposit_yuan",)

    @admin.display(description="押金（元）")
    def deposit_yuan(self, obj):
        return f"{fen_to_yuan(obj.deposit_fen)} 元"

    @admin.display(description="家庭")
    def family(self, obj):
        return obj.agreement.family

    @admin.display(description="阶段")
    def stage(self, obj):
        return LeaseStage(lease_stage(obj)).label

    @admin.display(description="审核")
    def review_link(self, obj):
        url = reverse("admin:signing_agreement_review", args=[obj.agreement_id])
        return format_html('<a href="{}">审核</a>', url)


@admin.register(PaymentNotification)
class PaymentNotificationAdmin(ReadOnlyAdmin):
    """Every payment notification received, with what became of it (forged ones too)."""

    list_display = (
        "received_at",
        "provider_label",
        "outcome",
        "code",
        "out_trade_no",
        "amount_yuan",
        "ip",
    )
    list_filter = ("outcome", "code")
    search_fields = ("=out_trade_no", "=transaction_id")
    exclude = ("amount_fen", "provider")
    readonly_fields = ("provider_label", "amount_yuan")

    @admin.display(description="支付渠道", ordering="provider")
    def provider_label(self, obj):
        return payment_provider_label(obj.provider)

    @admin.display(description="金额（元）", ordering="amount_fen")
    def amount_yuan(self, obj):
        return "—" if obj.amount_fen is None else f"{fen_to_yuan(obj.amount_fen)} 元"
