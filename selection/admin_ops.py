"""The staff operations of selection day, registered with core.admin_ops: their forms and the
service each calls (selection.staff_ops or accounts.services). Each operation is a link among
the object tools of its object's page (a unit, a session, a family, an applicant) and a page
of its own at <object url>/<slug>/.

Who may do what, by Django permission (accounts.roles grants them): operators withdraw and
restore units, reschedule sessions, change a family's rank and layouts and an applicant's
mobile; staff allocation (irreversible, outside the rank order) is for supervisors only
(selection.add_allocation).
"""

from __future__ import annotations

from django import forms
from django.utils import timezone

from accounts import services as account_services
from accounts.models import Layout
from core.admin_ops import StaffOp, register_ops
from selection import staff_ops
from selection.models import Round, Session, Unit

REASON_HELP = "记入审计日志和变更记录，4至100字"


def _reason_field() -> forms.CharField:
    return forms.CharField(
        label="操作原因",
        max_length=100,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text=REASON_HELP,
    )


class ReasonForm(forms.Form):
    reason = _reason_field()


class RescheduleForm(forms.Form):
    starts_at = forms.DateTimeField(
        label="新的开始时间",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        help_text="北京时间；场次时长不变",
    )
    reason = _reason_field()


class AllocationForm(forms.Form):
    round = forms.ModelChoiceField(label="选房批次", queryset=Round.objects.order_by("-pk"))
    unit = forms.CharField(
        label="房源（楼栋-房号）", max_length=41, help_text="例如 3-1202；只能分配可选房源"
    )
    reason = _reason_field()

    def clean(self):
        data = super().clean()
        rnd, label = data.get("round"), (data.get("unit") or "").strip()
        if rnd is None or not label:
            return data
        building, _, number = label.replace("栋", "-").partition("-")
        unit = Unit.objects.filter(round=rnd, building=building.strip(), number=number.strip())
        data["unit_obj"] = unit.first()
        if data["unit_obj"] is None:
            self.add_error("unit", f"「{rnd.name}」中没有房源{label}")
        return data


class RankForm(forms.Form):
    rank = forms.IntegerField(label="新排位号", min_value=1, max_value=2_000_000_000)
    reason = _reason_field()


class LayoutsForm(forms.Form):
    layouts = forms.MultipleChoiceField(
        label="可选户型", choices=Layout.choices, widget=forms.CheckboxSelectMultiple
    )
    reason = _reason_field()


class MobileForm(forms.Form):
    mobile = forms.CharField(label="新手机号码", max_length=20, help_text="11位中国大陆手机号码")
    reason = _reason_field()


def _unit_label(unit: Unit) -> str:
    return f"{unit}（{unit.round.name}）"


# Each runner: (object, cleaned form data, who) -> the success message; `who` holds the
# actor, ip and now every service takes.


def _withdraw(unit, data, who) -> str:
    staff_ops.unit_withdraw(unit_id=unit.pk, reason=data["reason"], **who)
    return f"已撤回房源{_unit_label(unit)}"


def _restore(unit, data, who) -> str:
    staff_ops.unit_restore(unit_id=unit.pk, reason=data["reason"], **who)
    return f"已恢复房源{_unit_label(unit)}"


def _reschedule(session, data, who) -> str:
    staff_ops.session_reschedule(
        session_id=session.pk, starts_at=data["starts_at"], reason=data["reason"], **who
    )
    return f"{session}已改期至{timezone.localtime(data['starts_at']):%Y-%m-%d %H:%M}"


def _allocate(family, data, who) -> str:
    unit = data["unit_obj"]
    staff_ops.allocation_by_staff(
        family_id=family.pk, unit_id=unit.pk, reason=data["reason"], **who
    )
    return f"已为{family}分配房源{_unit_label(unit)}"


def _rank(family, data, who) -> str:
    staff_ops.family_rank_change(
        family_id=family.pk, rank=data["rank"], reason=data["reason"], **who
    )
    return f"排位号已由{family.rank}改为{data['rank']}"


def _layouts(family, data, who) -> str:
    family = staff_ops.family_layouts_change(
        family_id=family.pk, layouts=data["layouts"], reason=data["reason"], **who
    )
    return "可选户型已更新为" + "、".join(family.eligible_layout_labels)


def _mobile(applicant, data, who) -> str:
    account_services.applicant_mobile_change_by_staff(
        applicant_id=applicant.pk, mobile=data["mobile"], reason=data["reason"], **who
    )
    return f"{applicant.real_name}的登记手机号码已更换，新旧号码均已发送通知短信"


register_ops(
    {
        "unit": {
            "withdraw": StaffOp(
                slug="withdraw",
                label="撤回房源",
                perms=("selection.change_unit",),
                form=ReasonForm,
                run=_withdraw,
                shown=lambda unit: unit.status == Unit.Status.AVAILABLE,
                intro="撤回后该房源不再可选，并从尚未结束场次的家庭购物车中移除；相关家庭将收到"
                "页面提醒和短信。已被选定的房源不能撤回。",
                confirm="确定撤回该房源？相关家庭的购物车将移除该房源。",
            ),
            "restore": StaffOp(
                slug="restore",
                label="恢复房源",
                perms=("selection.change_unit",),
                form=ReasonForm,
                run=_restore,
                shown=lambda unit: unit.status == Unit.Status.WITHDRAWN,
                intro="恢复后该房源重新可选（不会自动放回任何家庭的购物车）。",
            ),
        },
        "session": {
            "reschedule": StaffOp(
                slug="reschedule",
                label="场次改期",
                perms=("selection.change_session",),
                form=RescheduleForm,
                run=_reschedule,
                shown=lambda session: session.status == Session.Status.SCHEDULED,
                intro="只能调整尚未开始的场次；时长不变，不能与其他场次重叠，正选场次须保持排位"
                "顺序，补选场次须在补选申请截止之后。本场家庭将收到改期短信。",
            ),
        },
        "family": {
            "allocate": StaffOp(
                slug="allocate",
                label="工作人员分配房源",
                perms=("selection.add_allocation",),
                form=AllocationForm,
                run=_allocate,
                intro="仅用于该家庭选房场次已结束且未获得房源的情形（如系统故障）。分配记入选房"
                "日志，家庭将收到选房结果短信，分配后不可撤销。",
                confirm="确定为该家庭分配此房源？分配后不可撤销。",
            ),
            "rank": StaffOp(
                slug="rank",
                label="修改排位号",
                perms=("accounts.change_family",),
                form=RankForm,
                run=_rank,
                intro="已安排选房场次的家庭不能修改排位号。",
            ),
            "layouts": StaffOp(
                slug="layouts",
                label="修改可选户型",
                perms=("accounts.change_family",),
                form=LayoutsForm,
                run=_layouts,
                intro="已安排选房场次的家庭不能修改可选户型。",
            ),
        },
        "applicant": {
            "mobile": StaffOp(
                slug="mobile",
                label="更换登记手机号码",
                perms=("accounts.change_applicant",),
                form=MobileForm,
                run=_mobile,
                intro="请在核实申请人身份后操作。原号码和新号码都将收到通知短信；今后的验证码发送"
                "至新号码。",
            ),
        },
    }
)
