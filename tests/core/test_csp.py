"""Content-Security-Policy (django-csp, config/settings.py): the header on every H5 page (each
URL pattern of h5, for a logged-in family and for a visitor) and on the admin, and no inline
script, style or handler left in any template the policy would block."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

ROOT = Path(__file__).resolve().parents[2]
H5_MODULES = ("h5.urls", "h5.signing_urls", "h5.dev_urls")
# Inline code the policy blocks: <style> elements, style="" attributes, <script> without
# src, on*="" handlers, javascript: URLs.
INLINE = re.compile(
    r"<style\b|\sstyle\s*=|<script(?![^>]*\bsrc=)[^>]*>|\son[a-z]+\s*=|javascript:", re.I
)


def _h5_paths(world) -> list[str]:
    """Every H5 URL pattern, its ids filled with the world's (a round) or 1."""
    from h5 import dev_urls, signing_urls, urls

    paths = []
    for prefix, module in (("/", urls), ("/", signing_urls), ("/dev/", dev_urls)):
        for pattern in module.urlpatterns:
            assert isinstance(pattern, URLPattern), pattern
            route = str(pattern.pattern)
            route = route.replace("<id:round_id>", str(world.round.id))
            route = re.sub(r"<id:[a-z_]+>", "1", route)
            route = route.replace("<str:phase>", "pre").replace("<str:", "x<")
            route = re.sub(r"x<[a-z_]+>", "x", route)
            paths.append(prefix + route)
    paths.append(f"/verify/{'A' * 8}/")
    return paths


def _policy(response) -> dict[str, list[str]]:
    header = response.headers.get("Content-Security-Policy", "")
    return {part.split()[0]: part.split()[1:] for part in header.split(";") if part.strip()}


def _assert_strict(response, path: str) -> None:
    policy = _policy(response)
    assert policy, f"{path} answered {response.status_code} without a Content-Security-Policy"
    if policy.get("default-src") == ["'none'"]:
        return  # the photo responses' own, stricter header
    assert policy["script-src"] == ["'self'"], path
    assert policy["style-src"] == ["'self'"], path
    assert policy["object-src"] == ["'none'"] and policy["frame-ancestors"] == ["'none'"], path
    body = response.content.decode(errors="replace") if "html" in response["Content-Type"] else ""
    found = INLINE.search(body)
    assert found is None, f"{path}: inline code the policy blocks: {body[found.start() :][:120]}"


@pytest.mark.django_db
def test_every_h5_page_sends_the_policy(world, settings):
    from accounts.services import applicant_user_ensure

    paths = _h5_paths(world)
    assert len(paths) >= 30
    family = Client()
    family.force_login(applicant_user_ensure(applicant=world.families[0].main_applicant).user)
    answered = {}
    for path in paths:
        # The /dev/ pages exist only with DEBUG, under which django-csp leaves Django's
        # technical 404 page (inline styles of its own) without the header.
        settings.DEBUG = path.startswith("/dev/")
        for client in (Client(), family):
            response = client.get(path)
            if settings.DEBUG and response.status_code == 404:
                continue
            _assert_strict(response, path)
            if client is family:
                answered[path] = response.status_code
    # The family's pages answered with their HTML, not only redirects and 404s.
    ok = [path for path, status in answered.items() if status == 200]
    assert {"/h5/", f"/h5/selection/{world.round.id}/", "/dev/sms/", "/h5/me/"} <= set(ok), ok


def test_h5_url_patterns_are_all_plain_patterns():
    """_h5_paths walks flat lists; an include() added to h5's URLs would be skipped."""
    for module in H5_MODULES:
        resolver = get_resolver(module)
        assert not [p for p in resolver.url_patterns if isinstance(p, URLResolver)], module


@pytest.mark.django_db
def test_the_admin_sends_the_policy(admin_client):
    for path in ("/admin/login/", "/admin/", "/admin/selection/round/", "/admin/otp/setup/"):
        response = admin_client.get(path, follow=False)
        _assert_strict(response, path)


TEMPLATE_DIRS = [
    ROOT / app / "templates"
    for app in ("h5", "core", "accounts", "selection", "signing", "sms", "mobile_api")
]


def test_no_template_keeps_inline_code():
    offenders = []
    for directory in TEMPLATE_DIRS:
        for template in directory.rglob("*.html"):
            text = re.sub(r"{% comment %}.*?{% endcomment %}", "", template.read_text(), flags=re.S)
            for match in INLINE.finditer(text):
                line = text.count("\n", 0, match.start()) + 1
                offenders.append(f"{template.relative_to(ROOT)}:{line}: {match.group(0)}")
    assert offenders == []


@pytest.mark.django_db
def test_the_api_docs_keep_no_inline_code(client):
    page = client.get("/api/docs/")
    _assert_strict(page, "/api/docs/")
    script = re.search(r'<script src="(/api/docs/\?script=[^"]*)"', page.content.decode())
    assert script is not None
    answer = client.get(script.group(1).replace("&amp;", "&"))
    assert answer.status_code == 200 and "SwaggerUIBundle" in answer.content.decode()


# In the pages' scripts: el(…, {style: "…"}) and setAttribute("style") write style attributes,
# and HTML strings with style="" or on*="" make inline code: all blocked by the policy.
SCRIPT_INLINE = re.compile(
    r"""\bstyle\s*:\s*["'`]|setAttribute\(\s*["']style|["'`][^"'`]*\s(?:style|on[a-z]+)=""", re.I
)


def test_no_script_writes_inline_styles_or_handlers():
    offenders = []
    for script in sorted((ROOT / "h5" / "static" / "h5").glob("*.js")) + sorted(
        (ROOT / "core" / "static").rglob("*.js")
    ):
        for number, line in enumerate(script.read_text().splitlines(), 1):
            if SCRIPT_INLINE.search(line):
                offenders.append(f"{script.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == []
