"""Staff operations in the admin: each operation is a page (one form → one service → a
Chinese message, nothing changed on a refusal) and a link among the object tools of its
object's page. The app that owns an operation registers it here (`register_ops`, keyed by
model name: "unit", "family", ...); an admin shows the operations of its model with
StaffOpsMixin. This module imports no domain app.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone

from core.errors import DomainError

STAFF_OPS_FORM = "admin/staff_ops_change_form.html"  # a change form with the operations' links


@dataclass(frozen=True)
class StaffOp:
    slug: str
    label: str  # the link and the page title
    perms: tuple[str, ...]
    form: type[forms.Form]
    run: Callable  # (obj, cleaned data, who) -> the success message
    shown: Callable = lambda obj: True  # whether the link makes sense for this object now
    intro: str = ""
    confirm: str = ""  # a confirm() text before submitting, for what cannot be undone


OPS: dict[str, dict[str, StaffOp]] = {}


def register_ops(ops: dict[str, dict[str, StaffOp]]) -> None:
    """Add operations, by model name (the owning app calls this when its admin loads)."""
    for model_name, by_slug in ops.items():
        OPS.setdefault(model_name, {}).update(by_slug)


def _ops(model_admin) -> dict[str, StaffOp]:
    return OPS.get(model_admin.model._meta.model_name, {})


def op_links(model_admin, request, obj) -> list[tuple[str, str]]:
    """(label, url) of the operations this user may run on `obj` now."""
    if obj is None:
        return []
    info = (model_admin.model._meta.app_label, model_admin.model._meta.model_name)
    return [
        (op.label, reverse(f"admin:{info[0]}_{info[1]}_{op.slug}", args=[obj.pk]))
        for op in _ops(model_admin).values()
        if request.user.has_perms(op.perms) and op.shown(obj)
    ]


def op_urls(model_admin) -> list:
    info = (model_admin.model._meta.app_label, model_admin.model._meta.model_name)
    urls = []
    for op in _ops(model_admin).values():

        def page(request, object_id, op=op):
            return op_view(model_admin, request, object_id, op)

        urls.append(
            path(
                f"<path:object_id>/{op.slug}/",
                model_admin.admin_site.admin_view(page),
                name=f"{info[0]}_{info[1]}_{op.slug}",
            )
        )
    return urls


def op_view(model_admin, request, object_id, op: StaffOp):
    obj = model_admin.get_object(request, object_id)
    if obj is None:
        raise Http404("未找到该对象")
    if not request.user.has_perms(op.perms):
        raise PermissionDenied
    form = op.form(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            who = {
                "actor": request.user,
                "ip": request.META.get("REMOTE_ADDR", "")[:64],
                "now": timezone.now(),
            }
            message = op.run(obj, form.cleaned_data, who)
        except DomainError as exc:
            for field, errors in exc.fields.items():
                if field in form.fields:
                    for error in errors:
                        form.add_error(field, error)
            if not set(exc.fields) & set(form.fields):
                form.add_error(None, exc.message)
        else:
            messages.success(request, message)
            info = (model_admin.model._meta.app_label, model_admin.model._meta.model_name)
            return HttpResponseRedirect(reverse(f"admin:{info[0]}_{info[1]}_change", args=[obj.pk]))
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.model._meta,
        "original": obj,
        "title": f"{op.label}：{obj}",
        "op": op,
        "form": form,
    }
    return TemplateResponse(request, "admin/staff_op.html", context)


class StaffOpsMixin:
    """For a ModelAdmin: the model's operations as pages, and their links among the object
    tools of the change (or view) page (`staff_ops` in the context; the admin's
    change_form_template shows them, e.g. STAFF_OPS_FORM)."""

    def get_urls(self):
        return [*op_urls(self), *super().get_urls()]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        links = op_links(self, request, self.get_object(request, object_id))
        extra_context = {**(extra_context or {}), "staff_ops": links}
        return super().change_view(request, object_id, form_url, extra_context)
