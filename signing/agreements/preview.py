"""The agreement and receipt PDFs as page images, for the viewer page (「查看」).

Phone browsers often cannot show a PDF inside a page, so the viewer shows each page as a PNG
drawn here by PDFium (pypdfium2: a wheel with the PDFium library inside, so nothing to
install on a server; poppler is only on the test machines). The images are drawn with the
page's annotations (the signature and seal appearances) and kept in the cache under the
PDF's SHA-256: a PDF never changes once stored, so neither do its pages.

PDFium is not thread-safe: one lock per process around every call into it.
"""

from __future__ import annotations

import hashlib
import io
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

from django.core.cache import cache

from core.errors import DomainError
from signing.agreements.documents import document_latest
from signing.models import Agreement

logger = logging.getLogger("anju.signing")

PAGE_WIDTH_PX = 1240  # an A4 page at 150 dpi: sharp on a 3x phone screen, and small
CACHE_SECONDS = 24 * 3600
_lock = threading.Lock()


def _open(pdf: bytes, *, forms: bool = False):
    import pypdfium2 as pdfium

    document = pdfium.PdfDocument(pdf)
    if forms:
        # The seal and the applicant's signature are signature fields: PDFium draws their
        # appearance only with the form environment set up.
        document.init_forms()
    return document


def pdf_page_sizes(pdf: bytes, *, version: str | None = None) -> list[tuple[float, float]]:
    """Each page's (width, height) in PDF points, in order. `version` names the content for
    the cache (default: the PDF's SHA-256)."""
    key = f"pdf-pages:{version or hashlib.sha256(pdf).hexdigest()}"
    sizes = _cache_get(key)
    if sizes is None:
        with _lock:
            document = _open(pdf)
            try:
                sizes = [tuple(document.get_page_size(i)) for i in range(len(document))]
            finally:
                document.close()
        _cache_set(key, sizes)
    return [tuple(size) for size in sizes]


def pdf_page_png(
    pdf: bytes | Callable[[], bytes],
    *,
    page: int,
    width_px: int = PAGE_WIDTH_PX,
    version: str | None = None,
) -> bytes:
    """Page `page` (1-based) as a PNG `width_px` wide on white. `pdf` may be a function that
    makes it, called only when the cache (under `version`) does not have the page yet.
    Raises `page_not_found`."""
    if version is None:
        pdf = pdf() if callable(pdf) else pdf
        version = hashlib.sha256(pdf).hexdigest()
    key = f"pdf-page:{version}:{page}:{width_px}"
    png = _cache_get(key)
    if png is not None:
        return png
    pdf = pdf() if callable(pdf) else pdf
    with _lock:
        document = _open(pdf, forms=True)
        try:
            if not 1 <= page <= len(document):
                raise DomainError("page_not_found", "该页不存在", kind="not_found")
            pdf_page = document[page - 1]
            try:
                width_pt, _ = pdf_page.get_size()
                bitmap = pdf_page.render(
                    scale=width_px / width_pt,
                    may_draw_forms=True,
                    draw_annots=True,
                    fill_color=(255, 255, 255, 255),
                )
                image = bitmap.to_pil()
            finally:
                pdf_page.close()
        finally:
            document.close()
    out = io.BytesIO()
    image.convert("RGB").save(out, format="PNG", optimize=False, compress_level=6)
    png = out.getvalue()
    _cache_set(key, png)
    return png


def _cache_get(key: str):
    try:
        return cache.get(key)
    except Exception:  # a cache outage only costs a re-render
        logger.warning("preview cache unavailable", exc_info=True)
        return None


def _cache_set(key: str, value) -> None:
    try:
        cache.set(key, value, CACHE_SECONDS)
    except Exception:
        logger.warning("preview cache unavailable", exc_info=True)


# ------------------------------------------------------------------------ what is viewed

_NOT_READY: dict[str, str] = {
    Agreement.Status.PENDING: "协议尚未签字，签字提交后即可在此查看协议。",
    Agreement.Status.VOID: "该协议已作废，没有可查看的协议文件。",
    Agreement.Status.ABANDONED: "您已放弃本次签约，没有可查看的协议文件。",
}


@dataclass
class ViewedPdf:
    """A document for the viewer: its PDF is made only when needed (a receipt is issued and
    sealed anew for each copy); `version` names what it shows, for the page cache and the
    viewer's image URLs."""

    title: str
    filename: str
    version: str
    make: Callable[[], bytes]

    @cached_property
    def pdf(self) -> bytes:
        return self.make()

    def page_sizes(self) -> list[tuple[float, float]]:
        key = f"pdf-pages:{self.version}"
        sizes = _cache_get(key)
        if sizes is None:
            sizes = pdf_page_sizes(self.pdf, version=self.version)
        return [tuple(size) for size in sizes]

    def page_png(self, page: int) -> bytes:
        return pdf_page_png(lambda: self.pdf, page=page, version=self.version)


def agreement_pdf_for_view(*, agreement: Agreement) -> ViewedPdf:
    """The agreement's current PDF (the sealed one once sealed). Raises `document_not_ready`
    with a message that says why there is none (not signed yet, void, abandoned)."""
    document = document_latest(agreement=agreement)
    if document is None:
        message = _NOT_READY.get(agreement.status, "协议文件尚未生成，请稍后再试。")
        raise DomainError("document_not_ready", message, kind="not_found")
    return ViewedPdf(
        title=agreement.title,
        filename=f"agreement-{agreement.verification_code}.pdf",
        version=document.sha256,
        make=lambda: bytes(document.pdf),
    )
