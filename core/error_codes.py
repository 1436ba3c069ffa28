"""Every error code the API can answer, read from the code itself, so that docs/ERRORS.md
cannot drift from it and one code cannot mean two statuses.

Sources, found by reading the source files (the `ast` module, nothing is imported or run):
- domain refusals: `ValidationFailed(...)`, `NotAllowed(...)`, `Conflict(...)`,
  `Throttled(...)`, `DomainError(..., kind=...)` and subclasses of DomainError that declare
  `code` (and `kind`) as class attributes;
- the API's own answers: `error_body("code", ...)` in mobile_api (DRF, CSRF, routing), with the
  status of the Response it is passed to when the call says so.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

KIND_STATUS = {
    "invalid": 400,
    "unauthenticated": 401,
    "forbidden": 403,
    "not_found": 404,
    "conflict": 409,
    "throttled": 429,
    "unavailable": 503,
}
CALL_KIND = {
    "ValidationFailed": "invalid",
    "NotAllowed": "forbidden",
    "Conflict": "conflict",
    "Throttled": "throttled",
    "DomainError": "invalid",
}
# Codes the API picks at run time from a table (the 401 of an ended session says why it
# ended), so no single call names them: (code, status, module that holds the table). A test
# checks each still appears in that module.
DYNAMIC = [
    ("session_replaced", 401, "mobile_api.errors"),
    ("session_ended", 401, "mobile_api.errors"),
    ("not_authenticated", 401, "mobile_api.errors"),
]
CODE = re.compile(r"^[a-z][a-z0-9_]*$")
APPS = ("accounts", "core", "events", "mobile_api", "realtime", "selection", "signing", "sms")


@dataclass
class ErrorCode:
    code: str
    statuses: set[int] = field(default_factory=set)
    messages: list[str] = field(default_factory=list)
    modules: set[str] = field(default_factory=set)


def _string(node: ast.AST | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):  # an f-string message: its literal parts
        return "".join(
            part.value if isinstance(part, ast.Constant) and isinstance(part.value, str) else "…"
            for part in node.values
        )
    return None


def _keyword(call: ast.Call, name: str) -> ast.AST | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


class _Scan(ast.NodeVisitor):
    def __init__(self, module: str, found: dict[str, ErrorCode], classes: dict[str, str]):
        self.module, self.found, self.classes = module, found, classes
        self.tuples: dict[str, list[ast.expr]] = {}  # module-level NAME = ("code", "message")

    def visit_Module(self, node: ast.Module) -> None:
        for stmt in node.body:
            if isinstance(stmt, ast.Assign) and isinstance(stmt.value, ast.Tuple):
                for target in stmt.targets:
                    if isinstance(target, ast.Name):
                        self.tuples[target.id] = list(stmt.value.elts)
        self.generic_visit(node)

    def add(self, code: str | None, status: int | None, message: str | None) -> None:
        if not code or not status or not CODE.match(code):
            return  # (a provider error's first argument is its log detail, not a code)
        entry = self.found.setdefault(code, ErrorCode(code))
        entry.statuses.add(status)
        entry.modules.add(self.module)
        if message and message not in entry.messages:
            entry.messages.append(message)

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        attrs = {
            target.id: _string(stmt.value)
            for stmt in node.body
            if isinstance(stmt, ast.Assign)
            for target in stmt.targets
            if isinstance(target, ast.Name)
        }
        bases = {b.id for b in node.bases if isinstance(b, ast.Name)}
        kind = attrs.get("kind") or next(
            (
                self.classes.get(b) or CALL_KIND.get(b)
                for b in bases
                if b in CALL_KIND or b in self.classes
            ),
            None,
        )
        if kind:
            self.classes[node.name] = kind
        if kind and attrs.get("code") and self.module != "core.errors":  # (the kinds' bases)
            self.add(attrs["code"], KIND_STATUS.get(kind), attrs.get("message"))
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        name = node.func.id if isinstance(node.func, ast.Name) else None
        if name in CALL_KIND or name in self.classes:
            kind_node = _keyword(node, "kind")
            kind = _string(kind_node) or CALL_KIND.get(name) or self.classes.get(name)
            code = _string(node.args[0]) if node.args else _string(_keyword(node, "code"))
            message = _string(node.args[1]) if len(node.args) > 1 else None
            self.add(code, KIND_STATUS.get(kind or ""), message)
        if name == "Response" and node.args:
            body = node.args[0]
            status = _keyword(node, "status")
            if (
                isinstance(body, ast.Call)
                and isinstance(body.func, ast.Name)
                and body.func.id == "error_body"
                and isinstance(status, ast.Constant)
            ):
                args: list[ast.expr] = list(body.args)
                if (
                    args
                    and isinstance(args[0], ast.Starred)
                    and isinstance(args[0].value, ast.Name)
                ):
                    args = self.tuples.get(args[0].value.id, [])  # error_body(*CONSTANT)
                code = _string(args[0]) if args else None
                message = _string(args[1]) if len(args) > 1 else None
                self.add(code, status.value if isinstance(status.value, int) else None, message)
        self.generic_visit(node)


def error_codes(root: Path) -> dict[str, ErrorCode]:
    found: dict[str, ErrorCode] = {}
    classes: dict[str, str] = {}
    files = sorted(
        path
        for app in APPS
        for path in (root / app).rglob("*.py")
        if "migrations" not in path.parts and "tests" not in path.parts
    )
    for _ in range(2):  # subclasses declared in another module: a second pass sees them
        for path in files:
            module = ".".join(path.relative_to(root).with_suffix("").parts)
            _Scan(module, found, classes).visit(ast.parse(path.read_text("utf-8")))
    for code, status, module in DYNAMIC:
        entry = found.setdefault(code, ErrorCode(code))
        entry.statuses.add(status)
        entry.modules.add(module)
    return found


def errors_table(root: Path) -> str:
    codes = error_codes(root)
    by_status: dict[int, list[ErrorCode]] = defaultdict(list)
    for entry in codes.values():
        by_status[min(entry.statuses)].append(entry)
    lines = [
        "| status | code | message (Chinese, as the page shows it) | raised in |",
        "| --- | --- | --- | --- |",
    ]
    for status in sorted(by_status):
        for entry in sorted(by_status[status], key=lambda e: e.code):
            statuses = "/".join(str(s) for s in sorted(entry.statuses))
            message = "；".join(
                m.replace("|", "\\|").replace("\n", " ") for m in entry.messages[:2]
            )
            modules = ", ".join(sorted(entry.modules))
            lines.append(f"| {statuses} | `{entry.code}` | {message} | {modules} |")
    return "\n".join(lines) + "\n"
