"""Bank-card photo uploads: check what the phone sent, then keep only a re-encoded copy.

    clean = card_photo_clean(data=upload.read(), filename=upload.name,
                             declared_type=upload.content_type)
    # clean.data is a fresh JPEG (upright, RGB, at most MAX_OUTPUT_SIDE px, no metadata);
    # clean.source_sha256 identifies the upload as received (evidence).

Pure: reads settings, touches no rows or files. Every refusal is `core.errors.ValidationFailed`
with one of these stable codes (HTTP 400 through the API's error body):

| code | when |
| --- | --- |
| `upload_empty` | no bytes |
| `upload_too_large` | more than `UPLOADS["MAX_BYTES"]` bytes |
| `upload_not_image` | not JPEG, PNG or WebP by its own bytes (GIF, BMP, TIFF, SVG, HEIC, PDF, text...); the declared type contradicts the bytes; or it is animated (APNG, animated WebP) |
| `upload_too_many_pixels` | width × height above `UPLOADS["MAX_PIXELS"]`, read from the header before anything is decoded (decompression bombs) |
| `upload_too_small` | either side below `UPLOADS["MIN_SIDE"]` |
| `upload_corrupt` | truncated, malformed, or the decoder fails in any way |
| `upload_polyglot` | the file is also something else (see `_polyglot_reason`) |

The format is decided from the bytes only: the filename is never consulted and the declared
type can only cause a refusal, never an acceptance. Each format is parsed twice: by the small
structure walkers here (dimensions, animation, where the image ends, which bytes are
compressed pixel data) before Pillow sees the file, and then by Pillow restricted to that one
format (`Image.open(formats=[...])`, so no other plugin ever parses an upload).
"""

from __future__ import annotations

import hashlib
import io
import logging
import struct
import warnings
import zipfile
from dataclasses import dataclass, field

from django.conf import settings
from PIL import Image, ImageOps

from core.errors import ValidationFailed

__all__ = ["CleanImage", "card_photo_clean", "upload_limit"]

logger = logging.getLogger("anju.uploads")

UPLOAD_DEFAULTS: dict[str, int] = {
    "MAX_BYTES": 10 * 1024 * 1024,
    "MAX_PIXELS": 40_000_000,
    "MIN_SIDE": 200,
    "MAX_OUTPUT_SIDE": 2000,
}
JPEG_QUALITY = 85
OUTPUT_TYPE = "image/jpeg"
STILL_ONLY = "请上传静态照片"

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# Declared types that name each format (phones and old browsers use the aliases), and the
# declared types that claim nothing. Anything else contradicts the bytes.
DECLARED_TYPES = {
    "JPEG": {"image/jpeg", "image/jpg", "image/pjpeg"},
    "PNG": {"image/png", "image/x-png"},
    "WEBP": {"image/webp"},
}
DECLARED_UNKNOWN = {"", "application/octet-stream", "binary/octet-stream"}

# --- polyglot markers -----------------------------------------------------------------------
# Characters that end an HTML tag name: `<svg/onload=...>` and `<svg\tonload=...>` both parse.
TAG_END = b"\t\n\x0c\r />"
# Active content searched in the whole file, case-insensitively, each followed by one of
# `TAG_END` (or, for `<?php`, whitespace). These are long enough that compressed pixel data
# does not contain them by chance (below 1e-12 per 10 MB file).
ACTIVE_ANYWHERE: tuple[tuple[bytes, bytes], ...] = (
    (b"<script", TAG_END),
    (b"<iframe", TAG_END),
    (b"<html", TAG_END),
    (b"<!doctype", TAG_END),
    (b"<?php", b" \t\n\r"),
    (b"javascript:", b""),
)
# `<svg` is short: random bytes match `<svg` + a tag end about once in 2e10 bytes, i.e. in
# about 1 of 7,000 ordinary 3 MB photos if the compressed pixel data were searched too. It is
# therefore searched outside the pixel data only (headers, metadata, text chunks, trailers).
ACTIVE_OUTSIDE_PIXELS: tuple[tuple[bytes, bytes], ...] = ((b"<svg", TAG_END),)
# Other formats' signatures. `%PDF-` anywhere: PDF readers look for it in the first KiB, so a
# JPEG/PDF polyglot hides it in a comment segment rather than after the image (by chance in
# pixel data: about 1e-5 per 10 MB file).
SIGNATURES_ANYWHERE = (b"%PDF-",)
# In the trailing data (after the image's own end), anywhere: archives.
SIGNATURES_TRAILING = (b"Rar!\x1a\x07", b"7z\xbc\xaf\x27\x1c")
# At the start of the trailing data (after NUL/whitespace padding): executables and archives
# that are read from their first byte. A ZIP is found the way ZIP readers find it, by its end
# record near the end of the file (`zipfile.is_zipfile`), or by a local header here.
SIGNATURES_TRAILING_START = (b"PK\x03\x04", b"MZ", b"#!", b"\x7fELF")
PADDING = b"\x00\t\n\r "


@dataclass(frozen=True)
class CleanImage:
    data: bytes  # the re-encoded image (JPEG), EXIF and all metadata gone
    content_type: str  # "image/jpeg"
    width: int
    height: int
    sha256: str  # of data
    source_format: str  # "JPEG" | "PNG" | "WEBP"
    source_sha256: str  # of the upload as received (evidence)


@dataclass
class _Layout:
    """What the structure walker found: the header's dimensions, whether the file is
    animated, where the image's own bytes end (`end`, None when the end was never reached:
    truncated) and the byte ranges of compressed pixel data."""

    width: int = 0
    height: int = 0
    animated: bool = False
    end: int | None = None
    pixel_ranges: list[tuple[int, int]] = field(default_factory=list)


class _Malformed(Exception):
    """The structure walker could not make sense of the file (becomes `upload_corrupt`)."""


class _ActiveMetadata(Exception):
    """Decoded metadata carries active content (becomes `upload_polyglot`)."""


def upload_limit(key: str) -> int:
    """One of the upload limits: `settings.UPLOADS[key]`, or the default when the setting or
    the key is absent. Keys: MAX_BYTES, MAX_PIXELS, MIN_SIDE, MAX_OUTPUT_SIDE."""
    return int(getattr(settings, "UPLOADS", {}).get(key, UPLOAD_DEFAULTS[key]))


def _refuse(code: str, message: str) -> ValidationFailed:
    return ValidationFailed(code, message)


def _not_image(message: str = "请上传 JPG、PNG 或 WebP 格式的照片") -> ValidationFailed:
    return _refuse("upload_not_image", message)


def _too_many_pixels() -> ValidationFailed:
    return _refuse("upload_too_many_pixels", "照片像素过大，请压缩后重新上传")


def _corrupt() -> ValidationFailed:
    return _refuse("upload_corrupt", "照片文件已损坏或不完整，请重新拍摄后上传")


def _size_label(limit: int) -> str:
    if limit >= 1024 * 1024:
        return f"{limit / (1024 * 1024):.3g} MB"
    return f"{max(1, limit // 1024)} KB"


def _sniff(data: bytes) -> str | None:
    """The format by magic bytes: JPEG (FF D8 FF), PNG (its 8-byte signature) or WebP (a RIFF
    container of form type WEBP); None for anything else."""
    if data[:3] == b"\xff\xd8\xff":
        return "JPEG"
    if data[:8] == PNG_SIGNATURE:
        return "PNG"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


def _declared_contradicts(declared_type: str, fmt: str) -> bool:
    declared = declared_type.split(";", 1)[0].strip().lower()
    return declared not in DECLARED_UNKNOWN and declared not in DECLARED_TYPES[fmt]


# --- structure walkers ----------------------------------------------------------------------

SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # not DHT, JPG, DAC


def _jpeg_layout(data: bytes) -> _Layout:
    """Walk the JPEG's segments from SOI the way a decoder does: skip each segment by its
    length (so an EXIF thumbnail's own FFD9 is never mistaken for the end), follow each scan's
    entropy-coded data to the next real marker, and stop at the EOI that ends the primary
    image. Bytes after it (MPO secondary images, phone trailers, anything appended) are
    trailing data."""
    layout = _Layout()
    n, pos, seen_sof = len(data), 2, False
    while True:
        if pos >= n - 1:
            return layout  # no EOI: truncated
        if data[pos] != 0xFF:  # extraneous bytes before a marker: tolerated, as libjpeg does
            pos = data.find(b"\xff", pos)
            if pos < 0:
                return layout
            continue
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0xD9:
            if not seen_sof:
                raise _Malformed("EOI before any frame")
            layout.end = pos + 2
            return layout
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            pos += 2
            continue
        if marker in (0x00, 0xD8):
            raise _Malformed(f"unexpected marker {marker:#04x}")
        if pos + 4 > n:
            return layout
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        if length < 2:
            raise _Malformed("segment length")
        segment_end = pos + 2 + length
        if segment_end > n:
            return layout
        if marker in SOF_MARKERS:
            if length < 8:
                raise _Malformed("short SOF")
            layout.height, layout.width = struct.unpack(">HH", data[pos + 5 : pos + 9])
            if not layout.width or not layout.height:
                raise _Malformed("zero dimension (DNL is not supported)")
            seen_sof = True
        if marker == 0xDA:  # SOS: entropy-coded data follows, up to the next real marker
            if not seen_sof:
                raise _Malformed("scan before frame")
            scan = segment_end
            while True:
                scan = data.find(b"\xff", scan)
                if scan < 0 or scan + 1 >= n:
                    return layout
                following = data[scan + 1]
                if following == 0x00 or 0xD0 <= following <= 0xD7 or following == 0xFF:
                    scan += 1 if following == 0xFF else 2
                    continue
                break
            layout.pixel_ranges.append((segment_end, scan))
            pos = scan
        else:
            pos = segment_end


def _png_layout(data: bytes) -> _Layout:
    """Walk the PNG's chunks: IHDR first (the dimensions), acTL (an APNG's frame count),
    IDAT/fdAT (compressed pixel data), up to the end of the IEND chunk's CRC."""
    layout = _Layout()
    n, pos = len(data), len(PNG_SIGNATURE)
    first = True
    while True:
        if pos + 8 > n:
            return layout
        length, ctype = struct.unpack(">I4s", data[pos : pos + 8])
        if length > 0x7FFFFFFF:
            raise _Malformed("chunk length")
        body, body_end = pos + 8, pos + 8 + length
        if body_end + 4 > n:
            return layout
        if first:
            if ctype != b"IHDR" or length != 13:
                raise _Malformed("IHDR is not the first chunk")
            layout.width, layout.height = struct.unpack(">II", data[body : body + 8])
            if not layout.width or not layout.height:
                raise _Malformed("zero dimension")
            first = False
        elif ctype == b"acTL" and length >= 4:
            (frames,) = struct.unpack(">I", data[body : body + 4])
            layout.animated = frames > 1
        elif ctype in (b"IDAT", b"fdAT"):
            layout.pixel_ranges.append((body, body_end))
        elif ctype == b"IEND":
            layout.end = body_end + 4
            return layout
        pos = body_end + 4


def _webp_layout(data: bytes) -> _Layout:
    """Walk the WebP's RIFF chunks up to the RIFF length: the first chunk (VP8, VP8L or VP8X)
    gives the dimensions, VP8X's animation flag or any ANIM/ANMF chunk means animated, and
    VP8/VP8L/ALPH/ANMF payloads are pixel data."""
    layout = _Layout()
    (riff_size,) = struct.unpack("<I", data[4:8])
    end = 8 + riff_size
    if riff_size < 4 or end > len(data):
        return layout
    pos, first = 12, True
    while pos < end:
        if pos + 8 > end:
            raise _Malformed("chunk header beyond the RIFF length")
        fourcc, size = struct.unpack("<4sI", data[pos : pos + 8])
        body, body_end = pos + 8, pos + 8 + size
        if body_end > end:
            raise _Malformed("chunk beyond the RIFF length")
        payload = data[body:body_end]
        if first:
            if fourcc == b"VP8 " and size >= 10 and payload[3:6] == b"\x9d\x01\x2a":
                width, height = struct.unpack("<HH", payload[6:10])
                layout.width, layout.height = width & 0x3FFF, height & 0x3FFF
            elif fourcc == b"VP8L" and size >= 5 and payload[0] == 0x2F:
                (bits,) = struct.unpack("<I", payload[1:5])
                layout.width, layout.height = (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
            elif fourcc == b"VP8X" and size >= 10:
                layout.animated = bool(payload[0] & 0x02)
                layout.width = int.from_bytes(payload[4:7], "little") + 1
                layout.height = int.from_bytes(payload[7:10], "little") + 1
            else:
                raise _Malformed("no VP8/VP8L/VP8X header")
            if not layout.width or not layout.height:
                raise _Malformed("zero dimension")
            first = False
        if fourcc in (b"ANIM", b"ANMF"):
            layout.animated = True
        if fourcc in (b"VP8 ", b"VP8L", b"ALPH", b"ANMF"):
            layout.pixel_ranges.append((body, body_end))
        pos = body_end + (size & 1)
    if first:
        raise _Malformed("no chunks")
    layout.end = end
    return layout


LAYOUTS = {"JPEG": _jpeg_layout, "PNG": _png_layout, "WEBP": _webp_layout}


# --- polyglots ------------------------------------------------------------------------------


def _find_marker(haystack: bytes, marker: bytes, ends: bytes) -> bool:
    """Whether lower-cased `haystack` contains `marker` followed by one of `ends` (or by
    anything when `ends` is empty, or by the end of the data)."""
    start = haystack.find(marker)
    while start >= 0:
        after = start + len(marker)
        if not ends or after >= len(haystack) or haystack[after] in ends:
            return True
        start = haystack.find(marker, start + 1)
    return False


def _outside(data: bytes, ranges: list[tuple[int, int]]) -> list[bytes]:
    pieces, pos = [], 0
    for start, end in sorted(ranges):
        if start > pos:
            pieces.append(data[pos:start])
        pos = max(pos, end)
    pieces.append(data[pos:])
    return pieces


def _polyglot_reason(data: bytes, layout: _Layout) -> str | None:
    """Why the upload is also something other than an image, or None.

    Refused (`upload_polyglot`):
    - trailing data (after JPEG's EOI that ends the primary image as reached by walking its
      segments, after PNG's IEND chunk, beyond WebP's RIFF length) that starts, after NUL or
      whitespace padding, with a ZIP local header, `MZ`, `#!` or `\\x7fELF`, or contains a RAR
      or 7z signature;
    - a ZIP end-of-central-directory record that makes the file readable as a ZIP archive
      (wherever the archive was hidden);
    - `%PDF-` anywhere (PDF readers look for it in the first KiB);
    - active content anywhere, case-insensitively: `<script`, `<iframe`, `<html`, `<!doctype`
      (each followed by a tag-ending character), `<?php` (followed by whitespace),
      `javascript:`; and `<svg` outside the compressed pixel data (see
      ACTIVE_OUTSIDE_PIXELS). Trailing data is outside the pixel data.

    Trailing data alone is not refused: phones append their own data after EOI (Samsung's
    "SEFH" trailer, Samsung and Google motion photos' MP4 video, MPO secondary images such as
    HDR gain maps), and refusing them would refuse ordinary photos. The stored file is
    re-encoded from the decoded pixels anyway, so nothing of the upload's bytes survives:
    this refusal is defence in depth, and the record (with the source hash) is evidence of
    an attempt."""
    end = layout.end if layout.end is not None else len(data)
    trailing = data[end:]
    if trailing:
        head = trailing.lstrip(PADDING)[:8]
        for signature in SIGNATURES_TRAILING_START:
            if head.startswith(signature):
                return f"trailing data starts with {signature!r}"
        for signature in SIGNATURES_TRAILING:
            if signature in trailing:
                return f"trailing data contains {signature!r}"
    for signature in SIGNATURES_ANYWHERE:
        if signature in data:
            return f"contains {signature!r}"
    if b"PK\x05\x06" in data[-(0xFFFF + 22) :] and zipfile.is_zipfile(io.BytesIO(data)):
        return "readable as a ZIP archive"
    lowered = data.lower()
    for marker, ends in ACTIVE_ANYWHERE:
        if _find_marker(lowered, marker, ends):
            return f"contains {marker!r}"
    for piece in _outside(lowered, layout.pixel_ranges):
        for marker, ends in ACTIVE_OUTSIDE_PIXELS:
            if _find_marker(piece, marker, ends):
                return f"contains {marker!r} outside the pixel data"
    return None


def _decoded_text_reason(info: dict) -> str | None:
    """Active content in what Pillow decoded from the metadata (compressed zTXt/iTXt/iCCP
    chunks are only readable after decompression)."""
    for value in info.values():
        if isinstance(value, str):
            value = value.encode("utf-8", "replace")
        if not isinstance(value, bytes | bytearray):
            continue
        lowered = bytes(value).lower()
        for marker, ends in ACTIVE_ANYWHERE + ACTIVE_OUTSIDE_PIXELS:
            if _find_marker(lowered, marker, ends):
                return f"metadata contains {marker!r}"
    return None


def _polyglot(reason: str, source_sha256: str) -> ValidationFailed:
    logger.warning("upload refused as polyglot: %s (source sha256 %s)", reason, source_sha256)
    return _refuse("upload_polyglot", "照片文件中夹带了其他内容，请重新拍摄后上传")


# --- decoding -------------------------------------------------------------------------------


def _flatten_rgb(im: Image.Image) -> Image.Image:
    """RGB, with any transparency composited onto white; 16-bit and 32-bit grey scaled to
    8 bits rather than clipped."""
    if im.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N"):
        im = im.convert("I").point(lambda v: v * (1 / 256)).convert("L")
    if im.mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    if im.mode in ("LA", "La", "PA", "RGBa", "RGBA") or "transparency" in im.info:
        rgba = im.convert("RGBA")
        flat = Image.new("RGB", rgba.size, (255, 255, 255))
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    return im.convert("RGB")


def _decode(*, data: bytes, fmt: str, max_side: int) -> Image.Image:
    """Decode the first (only) frame with Pillow restricted to `fmt`, upright and flattened to
    RGB at most `max_side` pixels on the longest side. Pillow's own decompression-bomb check
    is an error here, as is a truncated file (LOAD_TRUNCATED_IMAGES stays False)."""
    with warnings.catch_warnings():
        # Not thread-safe (the filter list is global), but harmless: the only effect of a
        # race is that a DecompressionBombWarning elsewhere becomes an error, too.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with Image.open(io.BytesIO(data), formats=[fmt]) as im:
            # Pillow's reading of the header must agree with the walker's limits, too.
            if im.width * im.height > upload_limit("MAX_PIXELS"):
                raise _too_many_pixels()
            if fmt != "JPEG" and getattr(im, "n_frames", 1) > 1:  # MPO is not animation
                raise _not_image(STILL_ONLY)
            if fmt == "JPEG":
                # Let libjpeg decode at 1/2, 1/4 or 1/8 scale when that still leaves at least
                # the output size: less memory and time for 40-megapixel photos.
                longest = max(im.size)
                if longest > max_side:
                    ratio = max_side / longest
                    im.draft(None, (max(1, int(im.width * ratio)), max(1, int(im.height * ratio))))
            im.load()
            info = dict(im.info)
            try:
                upright = ImageOps.exif_transpose(im)
            except Exception:  # an unreadable EXIF block: keep the pixels as stored
                logger.info("upload: EXIF orientation unreadable, not applied")
                upright = im.copy()
    reason = _decoded_text_reason(info)
    if reason is not None:
        raise _ActiveMetadata(reason)
    out = _flatten_rgb(upright)
    if max(out.size) > max_side:
        out.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return out


def card_photo_clean(*, data: bytes, filename: str = "", declared_type: str = "") -> CleanImage:
    """Check one bank-card photo as uploaded and return it re-encoded.

    Checked in this order, each refusal a `ValidationFailed`:
    1. `upload_empty`: no bytes; `upload_too_large`: more than `UPLOADS["MAX_BYTES"]`.
    2. `upload_not_image`: the magic bytes are not JPEG, PNG or WebP, or `declared_type` (the
       browser's Content-Type, aliases and application/octet-stream allowed) names another
       type. `filename` is accepted for the caller's convenience and never decides anything.
    3. `upload_corrupt`: the structure walker cannot parse the header.
    4. `upload_too_many_pixels`: header width × height above `UPLOADS["MAX_PIXELS"]`, before
       Pillow opens the file (Pillow's WebP decoder allocates its canvas on open).
    5. `upload_too_small`: either side below `UPLOADS["MIN_SIDE"]`.
    6. `upload_not_image` ("请上传静态照片"): animated (APNG, animated WebP). A JPEG with
       secondary images (MPO: gain maps, depth maps) is not animated; its first image is used.
    7. `upload_corrupt`: truncated (no JPEG EOI, no PNG IEND, RIFF longer than the file).
    8. `upload_polyglot`: see `_polyglot_reason`.
    9. `upload_corrupt`: Pillow fails to open or decode it, for whatever reason;
       `upload_too_many_pixels` if Pillow's own bomb check fires or Pillow reads larger
       dimensions than the walker; `upload_not_image` if Pillow counts more than one frame
       (PNG, WebP); `upload_polyglot` if the decompressed metadata carries active content.

    Then: EXIF orientation applied, alpha flattened onto white, RGB, the longest side scaled
    down to `UPLOADS["MAX_OUTPUT_SIDE"]`, encoded as baseline JPEG quality 85 with no EXIF,
    ICC profile, XMP or comment."""
    if not data:
        raise _refuse("upload_empty", "请选择要上传的照片")
    max_bytes = upload_limit("MAX_BYTES")
    if len(data) > max_bytes:
        raise _refuse(
            "upload_too_large", f"照片不能超过 {_size_label(max_bytes)}，请压缩后重新上传"
        )
    fmt = _sniff(data)
    if fmt is None:
        raise _not_image()
    if _declared_contradicts(declared_type, fmt):
        raise _not_image("文件类型与内容不符，请上传 JPG、PNG 或 WebP 格式的照片")
    source_sha256 = hashlib.sha256(data).hexdigest()

    try:
        layout = LAYOUTS[fmt](data)
    except (_Malformed, struct.error, IndexError, ValueError) as exc:
        logger.info("upload: malformed %s header: %s", fmt, exc)
        raise _corrupt() from None
    if not layout.width or not layout.height:
        raise _corrupt()  # truncated before the dimensions
    if layout.width * layout.height > upload_limit("MAX_PIXELS"):
        raise _too_many_pixels()
    min_side = upload_limit("MIN_SIDE")
    if min(layout.width, layout.height) < min_side:
        raise _refuse(
            "upload_too_small", f"照片太小（宽、高至少 {min_side} 像素），请对准银行卡重新拍摄"
        )
    if layout.animated:
        raise _not_image(STILL_ONLY)
    if layout.end is None:
        raise _corrupt()
    reason = _polyglot_reason(data, layout)
    if reason is not None:
        raise _polyglot(reason, source_sha256)

    try:
        image = _decode(data=data, fmt=fmt, max_side=upload_limit("MAX_OUTPUT_SIDE"))
    except ValidationFailed:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _too_many_pixels() from None
    except _ActiveMetadata as exc:
        raise _polyglot(str(exc), source_sha256) from None
    except Exception as exc:  # any decoder failure is the file's fault, never a 500
        logger.info("upload: %s decode failed: %s: %s", fmt, type(exc).__name__, exc)
        raise _corrupt() from None

    out = io.BytesIO()
    image.info = {}  # Pillow would carry a source comment into the JPEG
    image.save(out, format="JPEG", quality=JPEG_QUALITY, optimize=True)
    encoded = out.getvalue()
    return CleanImage(
        data=encoded,
        content_type=OUTPUT_TYPE,
        width=image.width,
        height=image.height,
        sha256=hashlib.sha256(encoded).hexdigest(),
        source_format=fmt,
        source_sha256=source_sha256,
    )
