"""JSON from outside, read with a bound on nesting.

Python's json module recurses once per level: a body of 100,000 `[` raises RecursionError
(not ValueError), which every caller that catches ValueError lets through as a 500, and a
structure a few hundred levels deep also breaks later recursive code (serializers, the
canonical JSON of the hash chain). No request the system expects nests deeper than a handful
of levels (signature strokes: object > list > list > object), so anything past `MAX_DEPTH`
is refused before it is parsed, in one linear scan that stops at the first level too deep.

`loads` is the one way to read JSON that arrived from a client or a provider: the API's
parser (core/parsers.py), the payment and face callbacks. It raises `JSONTooDeep`, a
ValueError, so callers keep their `except ValueError` for "not valid JSON".
"""

from __future__ import annotations

import json
import re

MAX_DEPTH = 64

# A JSON string (with its escapes) or one bracket. Strings are skipped whole, so brackets
# inside them do not count; the unrolled form keeps the match linear on long strings.
_TOKEN = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')
_OPEN = frozenset(b"[{")


class JSONTooDeep(ValueError):
    """Nested deeper than MAX_DEPTH."""


def depth_check(data: bytes, max_depth: int = MAX_DEPTH) -> None:
    """Raise JSONTooDeep when `data` (JSON text, UTF-8) opens more than `max_depth` arrays or
    objects inside each other. Does not validate anything else: json.loads does that."""
    if data.count(b"[") + data.count(b"{") <= max_depth:
        return  # cannot be deeper than the number of openings (the common, small case)
    depth = 0
    for match in _TOKEN.finditer(data):
        first = match.group()[0]
        if first == 0x22:  # a string
            continue
        if first in _OPEN:
            depth += 1
            if depth > max_depth:
                raise JSONTooDeep(f"JSON nested deeper than {max_depth} levels")
        else:
            depth -= 1


def loads(data: bytes | str, *, max_depth: int = MAX_DEPTH):
    """json.loads for untrusted text: NaN/Infinity literals refused (not JSON), nesting
    bounded. Raises ValueError (JSONDecodeError, JSONTooDeep) or UnicodeDecodeError."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    depth_check(raw, max_depth)
    text = data if isinstance(data, str) else data.decode("utf-8")
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except RecursionError as exc:  # belt and braces: a limit above the interpreter's
        raise JSONTooDeep("JSON nested too deeply") from exc


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")
