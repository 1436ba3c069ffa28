"""The API's JSON parser (REST_FRAMEWORK DEFAULT_PARSER_CLASSES): DRF's, reading through
core.jsonsafe so that a body nested deeper than core.jsonsafe.MAX_DEPTH, or one with NaN or
Infinity literals, is a 400 `malformed_request` instead of a RecursionError and a 500."""

from __future__ import annotations

from rest_framework import parsers
from rest_framework.exceptions import ParseError

from core import jsonsafe


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        parser_context = parser_context or {}
        encoding = parser_context.get("encoding", "utf-8")
        raw = stream.read()
        try:
            if encoding.lower().replace("_", "-") not in ("utf-8", "utf8"):
                raw = raw.decode(encoding).encode("utf-8")
            return jsonsafe.loads(raw)
        except (ValueError, LookupError) as exc:  # includes UnicodeDecodeError, JSONTooDeep
            raise ParseError("JSON parse error") from exc
