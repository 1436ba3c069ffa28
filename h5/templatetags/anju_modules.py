"""`{% module_script "h5/selection-formal.js" %}`: a page's ES module and, ahead of it, a
`<link rel="modulepreload">` for every module it imports, directly or not (issue 16 items 1
and 5).

Native modules without a bundler are fetched as the browser discovers them: the page script,
then what it imports, then what those import — one round trip per level, three or four on
the formal page, each 562 ms on a slow 4G line. Listing the whole graph in the document lets
the browser ask for every file at once, while it still parses the HTML: one round trip for
all of a page's scripts, and each file stays separately cached (a change to one module
re-downloads only that one).

The graph is read from the source files (the static finders), following the relative
imports Django's manifest storage rewrites (`import … from "./x.js";`); the URLs come from
`static`, so they are the hashed names where those are on. Read once per file version (its
mtime), so an edited module is followed at once in development.
"""

from __future__ import annotations

import os
import posixpath
import re

from django import template
from django.contrib.staticfiles import finders
from django.templatetags.static import static
from django.utils.html import format_html, format_html_join

register = template.Library()

# The same statements Django's manifest storage rewrites (support_js_module_import_aggregation).
IMPORT = re.compile(
    r"""(?:^|[;\s])(?:import|export)(?:[\s{*][^;]*?)?\s*(?:from\s*)?["'](\.{1,2}/[^"']+)["']\s*;""",
    re.MULTILINE,
)

COMMENT = re.compile(r"/\*.*?\*/|//[^\n]*", re.DOTALL)

_graph_cache: dict[str, tuple[float, tuple[str, ...]]] = {}


def _imports(name: str) -> tuple[str, ...]:
    """The static names `name` imports directly (relative imports only)."""
    path = finders.find(name)
    if not path:
        return ()
    mtime = os.stat(path).st_mtime
    cached = _graph_cache.get(name)
    if cached and cached[0] == mtime:
        return cached[1]
    with open(path, encoding="utf-8") as source:
        text = COMMENT.sub(" ", source.read())
    base = posixpath.dirname(name)
    found = tuple(
        dict.fromkeys(posixpath.normpath(posixpath.join(base, ref)) for ref in IMPORT.findall(text))
    )
    _graph_cache[name] = (mtime, found)
    return found


def module_graph(name: str) -> list[str]:
    """Every module `name` imports, directly or not, each once, in the order first met."""
    seen: dict[str, None] = {}
    pending = list(_imports(name))
    while pending:
        current = pending.pop(0)
        if current in seen or current == name:
            continue
        seen[current] = None
        pending.extend(_imports(current))
    return list(seen)


@register.simple_tag
def module_script(*names: str):
    """The modules' preload links (their imports, once across all names), then their scripts."""
    preload: dict[str, None] = {}
    for name in names:
        for dep in module_graph(name):
            if dep not in names:
                preload[dep] = None
    links = format_html_join(
        "", '<link rel="modulepreload" href="{}">', ((static(dep),) for dep in preload)
    )
    scripts = format_html_join(
        "", '<script type="module" src="{}"></script>', ((static(name),) for name in names)
    )
    return format_html("{}{}", links, scripts)
