"""The `<id:...>` path converter: a database id, digits only, below 2**63.

Django's `<int:...>` accepts any number of digits; an id of 2**63 or more then reaches the
database, where PostgreSQL answers "no such row" (a 404) but SQLite raises OverflowError (a
500). Ids here are bigint primary keys (and small indexes), so a path with a longer or larger
number names nothing: this converter refuses it at routing, a 404 on every database.
Registered as "id" when this module is imported: every urls.py (and the websocket routing)
that uses `<id:...>` imports it first.
"""

from __future__ import annotations

from django.urls import register_converter

MAX_ID = 2**63 - 1


class IdConverter:
    regex = "[0-9]{1,19}"

    def to_python(self, value: str) -> int:
        number = int(value)
        if number > MAX_ID:
            raise ValueError("id out of range")  # Django: this pattern does not match
        return number

    def to_url(self, value) -> str:
        return str(int(value))


register_converter(IdConverter, "id")


class StreamConverter:
    """`<stream:...>`: an event stream's name (realtime/access.py). A name whose kind takes a
    numeric id (round.N, session.N, family.N) and whose id is all digits must be an ASCII id in
    range, else it names nothing (404): "round.99999999999999999999" or "round.²" never reach
    int() or a query. Other names pass through to the view's own `stream_not_found`."""

    regex = "[^/]+"
    NUMERIC_KINDS = frozenset({"round", "session", "family"})

    def to_python(self, value: str) -> str:
        kind, _, ident = value.partition(".")
        if (
            kind in self.NUMERIC_KINDS
            and ident.isdigit()  # what realtime/access.py takes for an id (any Unicode digit)
            and not (ident.isascii() and len(ident) <= 19 and int(ident) <= MAX_ID)
        ):
            raise ValueError("stream id out of range")
        return value

    def to_url(self, value) -> str:
        return str(value)


register_converter(StreamConverter, "stream")
