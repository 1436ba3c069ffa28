"""Static files are light and cacheable (issue 16 item 1): collected with hashed names and a
gzipped copy (core/staticfiles.py), every asset an H5 page links is served gzipped to a
browser that accepts gzip and cached for a year as immutable, under the hashed name the page
links. Through WhiteNoise (the demo, SERVE_STATIC) with Django's test client; nginx serves the
same collected files in production (deploy/nginx/anju.conf, gzip_static)."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import Client, override_settings

ROOT = Path(__file__).resolve().parents[2]
WHITENOISE = "whitenoise.middleware.WhiteNoiseMiddleware"
YEAR = 365 * 24 * 3600
HASHED = re.compile(r"\.[0-9a-f]{12}\.[a-z0-9]+$")


def _h5_assets() -> list[str]:
    """Every static file an H5 template links ({% static '…' %}), and every page module
    ({% module_script '…' %}) with each module it imports, directly or not."""
    from h5.templatetags.anju_modules import module_graph

    names = set()
    for template in (ROOT / "h5/templates").rglob("*.html"):
        text = template.read_text()
        names.update(re.findall(r"{%\s*static\s+['\"]([^'\"]+)['\"]", text))
        for group in re.findall(r"{%\s*module_script\s+([^%]+)%}", text):
            for page in re.findall(r"['\"]([^'\"]+)['\"]", group):
                names.update([page, *module_graph(page)])
    return sorted(names)


@pytest.fixture(scope="module")
def collected(tmp_path_factory):
    root = tmp_path_factory.mktemp("static")
    with override_settings(STATIC_ROOT=root):
        call_command("collectstatic", interactive=False, verbosity=0)
    return root


@pytest.fixture
def served(collected):
    """Settings as a process serving collected files (SERVE_STATIC without the finders)."""
    middleware = list(settings.MIDDLEWARE)
    if WHITENOISE not in middleware:
        middleware.insert(middleware.index("csp.middleware.CSPMiddleware") + 1, WHITENOISE)
    with override_settings(
        DEBUG=False,
        STATIC_ROOT=collected,
        STATIC_HASHED_URLS=True,
        WHITENOISE_USE_FINDERS=False,
        WHITENOISE_AUTOREFRESH=False,
        MIDDLEWARE=middleware,
    ):
        yield Client()


def _max_age(cache_control: str) -> int:
    found = re.search(r"max-age=(\d+)", cache_control)
    return int(found.group(1)) if found else 0


def test_the_h5_templates_link_assets():
    # Control: the list the next test walks is the pages' assets, not an empty one.
    assets = _h5_assets()
    assert "vendor/weui/weui.min.css" in assets and "h5/account.js" in assets
    assert {"h5/selection-formal.js", "h5/lib/dom.js", "h5/lib/live.js"} <= set(assets)
    assert len(assets) > 20


def test_every_h5_asset_is_served_gzipped_and_immutable(served, collected):
    from django.templatetags.static import static

    for name in _h5_assets():
        url = static(name)
        assert HASHED.search(url), f"{name} is linked as {url}, without a content hash"
        response = served.get(url, HTTP_ACCEPT_ENCODING="gzip, deflate, br")
        assert response.status_code == 200, url
        assert response["Content-Encoding"] == "gzip", url
        assert "Accept-Encoding" in response["Vary"], url
        cache = response["Cache-Control"]
        assert _max_age(cache) >= YEAR and "immutable" in cache, (url, cache)
        body = gzip.decompress(b"".join(response.streaming_content))
        assert body == (collected / url.removeprefix("/static/")).read_bytes(), url


def test_modules_import_each_other_by_hashed_name(served, collected):
    """A hashed module's relative imports name the imported files' hashed copies (Django's
    manifest storage rewrites them), so a page and its modules are one immutable set."""
    from django.templatetags.static import static

    modules = [name for name in _h5_assets() if name.startswith("h5/") and name.endswith(".js")]
    rewritten = 0
    for name in modules:
        url = static(name)
        text = (collected / url.removeprefix("/static/")).read_text(encoding="utf-8")
        for ref in re.findall(r"""from\s*["'](\.{1,2}/[^"']+)["']\s*;""", text):
            assert HASHED.search(ref), f"{url} imports {ref} by its plain name"
            target = (collected / url.removeprefix("/static/")).parent / ref
            assert target.resolve().is_file(), (url, ref)
            rewritten += 1
    assert rewritten > 20  # control: the pages do import modules


def test_a_browser_without_gzip_gets_the_plain_file(served, collected):
    from django.templatetags.static import static

    url = static("vendor/weui/weui.min.css")
    response = served.get(url)
    assert "Content-Encoding" not in response
    assert (
        b"".join(response.streaming_content)
        == (collected / url.removeprefix("/static/")).read_bytes()
    )


def test_pages_link_the_hashed_names(served):
    page = served.get("/h5/login/")
    assert page.status_code == 200
    assets = re.findall(r'(?:href|src)="(/static/[^"]+)"', page.content.decode())
    assert len(assets) >= 3
    for url in assets:
        assert HASHED.search(url), url


def test_development_and_the_tests_link_the_sources(client):
    # DEBUG without ANJU_STATIC_HASHED (the suite, `runserver`): plain names, served from the
    # source directories by the finders, so an edited script is never a stale copy.
    assert settings.STATIC_HASHED_URLS is False
    page = client.get("/h5/login/")
    assert 'src="/static/h5/login.js"' in page.content.decode()


def _icon_link(html: str) -> str:
    found = re.findall(r'<link rel="icon"[^>]*href="([^"]+)"', html)
    assert len(found) == 1, found
    return found[0]


def test_the_icon_is_in_the_page_and_costs_no_request(client, admin_client):
    """Every H5 page and every admin page carries the site's icon as a data: URI: the browser
    asks for no /favicon.ico (one round trip less per cold page on a slow line), and the
    icon is the site's own, not an empty one."""
    from urllib.parse import unquote

    svg = (ROOT / "core/static/anju/favicon.svg").read_text(encoding="utf-8")
    for html in (
        client.get("/h5/login/").content.decode(),
        client.get("/no-such-page/").content.decode(),  # the Chinese 404 page
        admin_client.get("/admin/").content.decode(),
    ):
        href = _icon_link(html)
        assert href.startswith("data:image/svg+xml,"), href
        assert unquote(href.removeprefix("data:image/svg+xml,")) == " ".join(svg.split())


def test_favicon_ico_redirects_to_the_hashed_icon(served):
    from django.templatetags.static import static

    response = served.get("/favicon.ico")
    assert response.status_code == 302
    assert response["Location"] == static("anju/favicon.svg")
    assert HASHED.search(response["Location"])
    assert _max_age(response["Cache-Control"]) == 24 * 3600
    icon = served.get(response["Location"])
    assert icon.status_code == 200 and icon["Content-Type"] == "image/svg+xml"
    assert served.post("/favicon.ico").status_code == 405
