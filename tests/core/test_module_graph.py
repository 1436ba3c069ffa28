"""`{% module_script %}` (h5/templatetags/anju_modules.py): a page's module and a preload link
for every module it imports, directly or not, so the browser asks for all of them at once."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from django.contrib.staticfiles import finders
from django.template import Context, Template
from django.template.loader import render_to_string
from django.templatetags.static import static

from h5.templatetags.anju_modules import module_graph


@pytest.fixture
def modules(tmp_path, settings):
    """A private static tree: page.js → a.js → (b.js, ../shared.js); b.js → a.js (a cycle)."""
    root = tmp_path / "static"
    (root / "t" / "lib").mkdir(parents=True)
    files = {
        "t/page.js": (
            '/* Example: import { x } from "./lib/nowhere.js"; is a comment */\n'
            'import { a } from "./lib/a.js";\n'
            "// import { z } from './lib/z.js';\n"
            "a();\n"
        ),
        "t/lib/a.js": (
            'import { b } from "./b.js";\nimport {\n  s,\n} from "../shared.js";\n'
            "export function a() { b(); s(); }\n"
        ),
        "t/lib/b.js": 'import { a } from "./a.js";\nexport const b = () => a;\n',
        "t/shared.js": "export const s = () => 1;\n",
    }
    for name, text in files.items():
        (root / name).write_text(text, encoding="utf-8")
    settings.STATICFILES_DIRS = [str(root)]
    settings.STATIC_HASHED_URLS = False
    finders.get_finder.cache_clear()
    yield root
    finders.get_finder.cache_clear()


def test_graph_follows_imports_transitively_once_and_skips_comments(modules):
    assert module_graph("t/page.js") == ["t/lib/a.js", "t/lib/b.js", "t/shared.js"]


def test_the_tag_preloads_the_graph_before_the_page_script(modules):
    html = Template('{% load anju_modules %}{% module_script "t/page.js" %}').render(Context())
    assert html == (
        '<link rel="modulepreload" href="/static/t/lib/a.js">'
        '<link rel="modulepreload" href="/static/t/lib/b.js">'
        '<link rel="modulepreload" href="/static/t/shared.js">'
        '<script type="module" src="/static/t/page.js"></script>'
    )


def test_an_edited_module_is_followed_at_once(modules):
    assert module_graph("t/shared.js") == []
    target = modules / "t" / "shared.js"
    target.write_text('import { b } from "./lib/b.js";\n', encoding="utf-8")
    stat = target.stat()
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert module_graph("t/shared.js") == ["t/lib/b.js", "t/lib/a.js"]


def test_every_page_script_s_imports_exist():
    """Each module any H5 template loads imports only files that exist (a missing one would
    fail collectstatic's rewriting, and the page in the browser)."""
    templates = Path(__file__).resolve().parents[2] / "h5" / "templates"
    names = set()
    for path in templates.rglob("*.html"):
        text = path.read_text(encoding="utf-8")
        names.update(re.findall(r"module_script ((?:\"[^\"]+\" ?)+)", text))
    pages = {n for group in names for n in re.findall(r'"([^"]+)"', group)}
    assert {"h5/account.js", "h5/selection-formal.js", "h5/signing-sign.js"} <= pages
    for page in pages:
        assert finders.find(page), page
        for dep in module_graph(page):
            assert finders.find(dep), f"{page} imports {dep}, which does not exist"


@pytest.mark.parametrize("logged_in", [True, False])
def test_every_h5_page_brings_the_touch_listener(rf, logged_in):
    """iOS Safari shows WeUI's pressed buttons (:active) only on a page with a touchstart
    listener, which lib/dom.js registers: base.html loads account.js (which imports it) on a
    logged-in page and dom.js alone otherwise (tests/core/test_error_pages.py sees it on an
    error page)."""
    request = rf.get("/h5/")
    request.session = {"anju_device": 1} if logged_in else {}
    html = render_to_string("h5/base.html", request=request)
    scripts = re.findall(r'<script type="module" src="([^"]+)"', html)
    assert scripts == [static("h5/account.js") if logged_in else static("h5/lib/dom.js")]
    assert "h5/lib/dom.js" in module_graph("h5/account.js")
