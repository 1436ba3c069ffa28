"""Issue 13 item 4: the packages form layers with no import cycle (module-level or inside a
function): core and events import no app, sms only core, accounts only core and sms, the
domain never imports the interface layers (mobile_api, realtime, h5)."""

from __future__ import annotations

import ast
import itertools
from collections import defaultdict
from pathlib import Path

from django.conf import settings

APPS = ["core", "events", "sms", "accounts", "selection", "signing", "mobile_api", "realtime", "h5"]
ALLOWED = {
    "core": set(),
    "events": set(),
    "sms": {"core"},
    "accounts": {"core", "sms"},
    "selection": {"core", "events", "sms", "accounts"},
    "signing": {"core", "events", "sms", "accounts", "selection"},
}


def imports() -> dict[str, dict[str, list[str]]]:
    """app -> imported app -> the files that import it (tests and migrations left out)."""
    graph: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    root = Path(settings.BASE_DIR)
    for app in APPS:
        for path in (root / app).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            for node in ast.walk(ast.parse(path.read_text("utf-8"))):
                if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    names = [node.module]
                elif isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                else:
                    continue
                for name in names:
                    top = name.split(".")[0]
                    if top in APPS and top != app:
                        graph[app][top].append(str(path.relative_to(root)))
    return graph


def test_the_domain_apps_import_only_the_layers_below_them():
    graph = imports()
    for app, allowed in ALLOWED.items():
        extra = {other: files[:3] for other, files in graph[app].items() if other not in allowed}
        assert extra == {}, f"{app} imports {extra}"


def test_no_two_packages_import_each_other():
    graph = imports()
    cycles = [
        (a, b, graph[a][b][:2], graph[b][a][:2])
        for a, b in itertools.combinations(APPS, 2)
        if b in graph[a] and a in graph[b]
    ]
    assert cycles == []
