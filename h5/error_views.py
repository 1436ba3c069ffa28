"""The site's error pages (issue 16 item 6): 400, 403, 404 and 500 in Chinese.

Three areas, told apart by the path:
- /api/…: the API's one error body (mobile_api/errors.py), never a page;
- /admin/…: a page in the admin's look (core/templates/admin/error_page.html); a staff member
  refused by their role keeps accounts.admin.permission_denied's page, which names the role;
- everything else: a WeUI message page (h5/templates/h5/error.html), the applicants' look.

Django calls these as handler400/403/404/500 (config/urls.py) when DEBUG is off. With DEBUG on
(the demo), Django answers a 404 with its English technical page instead; NotFoundMiddleware
gives those the same Chinese page (docs/DECISIONS.md, issue 16 item 6).

The 500 page renders without the request's context processors (as Django's own
server_error does): the failure may be the database or the session, which they would touch.
No page here has an inline script or style (the Content-Security-Policy forbids them).
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.http import Http404, HttpResponse
from django.template import loader
from django.urls import Resolver404, resolve

from mobile_api.errors import error_json

logger = logging.getLogger(__name__)

# status → (the API's code and message, the page's title, the page's explanation)
ERRORS = {
    400: (
        ("malformed_request", "请求格式不正确"),
        "请求有误",
        "页面收到的请求不完整或格式不正确，请返回后重新操作。",
    ),
    403: (
        ("forbidden", "无权进行此操作"),
        "无权访问此页面",
        "您没有查看此页面或进行此操作的权限。",
    ),
    404: (
        ("not_found", "请求的内容不存在"),
        "页面不存在",
        "您访问的页面不存在或已被移除，请检查网址是否正确。",
    ),
    500: (
        ("server_error", "系统繁忙，请稍后再试"),
        "系统繁忙，请稍后再试",
        "系统暂时无法处理您的请求，请稍后再试。如多次出现，请联系工作人员。",
    ),
}


def _area(request) -> str:
    path = request.path
    if path.startswith("/api/"):
        return "api"
    if path.startswith("/admin/"):
        return "admin"
    return "h5"


def error_response(request, status: int, *, with_context: bool = True) -> HttpResponse:
    """The error answer for `status` in the area of `request`'s path."""
    (code, message), title, desc = ERRORS[status]
    area = _area(request)
    if area == "api":
        return error_json(code, message, status=status)
    context = {"title": title, "desc": desc, "code": status}
    if area == "admin":
        from django.contrib import admin

        template = "admin/error_page.html"
        context.update(site_title=admin.site.site_title, site_header=admin.site.site_header)
        if with_context:
            try:
                context = {**admin.site.each_context(request), **context}
            except Exception:  # the page must still show (a broken session, a database down)
                logger.exception("admin context unavailable for the %s page", status)
    else:
        template = "h5/error.html"
    page = loader.get_template(template)
    body = page.render(context, request if with_context else None)
    return HttpResponse(body, status=status)


def bad_request(request, exception=None):
    return error_response(request, 400)


def permission_denied(request, exception=None):
    user = getattr(request, "user", None)
    if _area(request) == "admin" and user is not None and user.is_staff:
        from accounts.admin import permission_denied as staff_role_refused

        return staff_role_refused(request, exception)  # names the staff member's role
    return error_response(request, 403)


def not_found(request, exception=None):
    return error_response(request, 404)


def server_error(request):
    return error_response(request, 500, with_context=False)


class NotFoundMiddleware:
    """With DEBUG on (the demo), a 404 gets the Chinese page (or the API's body) instead of
    Django's English technical page, which lists every URL pattern: for an unknown URL (one
    no pattern matches) and for a view's Http404 (a round, a declaration that does not exist:
    a family meets those through an old link as well as by editing an address). What the
    technical page told a developer goes to the log: Django logs every 404 response, and the
    view's reason is logged here. Sits outside CommonMiddleware, so APPEND_SLASH's redirect
    (/h5 → /h5/) still happens."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if response.status_code != 404 or not settings.DEBUG:
            return response
        try:
            resolve(request.path_info, getattr(request, "urlconf", None))
        except Resolver404:
            return not_found(request)
        return response

    def process_exception(self, request, exception):
        if not settings.DEBUG or not isinstance(exception, Http404):
            return None
        logger.info("404 at %s: %s", request.path, exception)
        return not_found(request)
