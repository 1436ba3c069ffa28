"""Two guards inside daphne's HTTP request (Twisted), before the ASGI application exists.

daphne gives the application a request only once its whole body has arrived, and Twisted,
under it, does two things with the body first:
- it parses every POST multipart/form-data body itself into `request.args` (which daphne
  never uses), in memory through the email parser: an unparseable one is answered with a bare
  `400 Bad Request` before Django runs, and a 200 MB one grew the process to gigabytes;
- it receives any body, of any size, before anyone can refuse it.

`install` (called by config/asgi.py, so in every daphne process) turns the first off
(`parsePOSTFormSubmission=False`: Django parses the body, answering in the error body) and
refuses a body over the cap as soon as its Content-Length is known, or as soon as a chunked
body passes it: 413 `request_too_large` in the API's error body, then the connection is
closed, nothing more is read. core/asgi.py BodyLimit applies the same cap to servers other
than daphne; nginx applies it in production (deploy/nginx/anju.conf).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from core.asgi import REQUEST_TOO_LARGE, _body

logger = logging.getLogger("anju.api")


def _refuse(request) -> None:
    if getattr(request, "_anju_refused", False):
        return
    request._anju_refused = True
    body = _body(*REQUEST_TOO_LARGE)
    request.channel.transport.write(
        b"HTTP/1.1 413 Payload Too Large\r\n"
        b"Content-Type: application/json\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n"
        b"Connection: close\r\n\r\n" + body
    )
    request.channel.loseConnection()  # stops reading: the rest of the body is never received


def install(max_bytes: Callable[[], int]) -> bool:
    """Patch daphne's WebRequest once; False when daphne is not installed."""
    try:
        from daphne.http_protocol import WebRequest
    except ImportError:  # pragma: no cover (daphne is a dependency)
        return False
    if getattr(WebRequest, "_anju_guarded", False):
        return True
    init, got_length = WebRequest.__init__, WebRequest.gotLength
    content_chunk, request_received = WebRequest.handleContentChunk, WebRequest.requestReceived

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("parsePOSTFormSubmission", False)
        self._anju_received = 0
        init(self, *args, **kwargs)

    def gotLength(self, length):
        got_length(self, length)
        if length is not None and length > max_bytes():
            _refuse(self)

    def handleContentChunk(self, data):
        if getattr(self, "_anju_refused", False):
            return
        self._anju_received += len(data)
        if self._anju_received > max_bytes():
            _refuse(self)
            return
        content_chunk(self, data)

    def requestReceived(self, command, path, version):
        if getattr(self, "_anju_refused", False):
            return  # answered already; the application never sees it
        request_received(self, command, path, version)

    WebRequest.__init__ = __init__
    WebRequest.gotLength = gotLength
    WebRequest.handleContentChunk = handleContentChunk
    WebRequest.requestReceived = requestReceived
    WebRequest._anju_guarded = True
    return True
