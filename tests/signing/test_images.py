"""Bank-card photo uploads (signing/lease/card_photos.py): every input is built here with Pillow or by
hand, so the repository holds no binary fixtures. No database."""

from __future__ import annotations

import io
import random
import struct
import time
import zipfile
import zlib

import pytest
from PIL import Image, ImageFile, PngImagePlugin

from core.errors import ValidationFailed
from signing.lease import card_photos as images
from signing.lease.card_photos import CleanImage, card_photo_clean

RED, BLUE, WHITE = (220, 20, 30), (20, 40, 220), (255, 255, 255)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def encode(im: Image.Image, fmt: str, **params) -> bytes:
    out = io.BytesIO()
    im.save(out, format=fmt, **params)
    return out.getvalue()


def photo(width: int = 400, height: int = 300, mode: str = "RGB") -> Image.Image:
    """Left half red, right half blue: orientation is visible in the pixels."""
    im = Image.new(mode, (width, height), BLUE)
    im.paste(RED, (0, 0, width // 2, height))
    return im


def jpeg(width: int = 400, height: int = 300, **params) -> bytes:
    return encode(photo(width, height), "JPEG", quality=90, **params)


def png_chunk(ctype: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + ctype + body + struct.pack(">I", zlib.crc32(ctype + body))


def refused(code: str, **kwargs) -> ValidationFailed:
    with pytest.raises(ValidationFailed) as caught:
        card_photo_clean(**kwargs)
    assert caught.value.code == code, caught.value
    assert caught.value.kind == "invalid"
    assert caught.value.message  # a Chinese sentence for the page
    return caught.value


def near(pixel, colour, tolerance: int = 40) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, colour, strict=True))


def opened(clean: CleanImage) -> Image.Image:
    im = Image.open(io.BytesIO(clean.data))
    im.load()
    return im


# --- accepted -------------------------------------------------------------------------------


def test_exif_orientation_applied_and_all_metadata_gone():
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: rotate 90° clockwise to show
    exif[0x010E] = "Futian bank card 22.5431N 114.0579E"  # ImageDescription
    exif[0x010F] = "SecretPhoneMaker"  # Make
    gps = exif.get_ifd(0x8825)
    gps.update({1: "N", 2: (22.0, 32.0, 35.16), 3: "E", 4: (114.0, 3.0, 28.44)})
    data = jpeg(400, 300, exif=exif.tobytes(), comment=b"taken at home")
    assert b"Exif" in data and b"SecretPhoneMaker" in data  # the input really carries it

    clean = card_photo_clean(data=data, filename="card.jpg", declared_type="image/jpeg")

    assert (clean.width, clean.height) == (300, 400)  # upright: sides swapped
    im = opened(clean)
    assert im.size == (300, 400) and im.mode == "RGB"
    # The stored left half (red) is on top once rotated clockwise.
    assert near(im.getpixel((150, 40)), RED)
    assert near(im.getpixel((150, 360)), BLUE)
    assert len(im.getexif()) == 0
    assert "exif" not in im.info and "comment" not in im.info and "icc_profile" not in im.info
    for leaked in (b"Exif", b"Futian", b"SecretPhoneMaker", b"taken at home", b"22.5431"):
        assert leaked not in clean.data


def test_output_is_a_fresh_jpeg_with_hashes():
    import hashlib

    data = jpeg()
    clean = card_photo_clean(data=data)
    assert clean.data != data
    assert clean.data.startswith(b"\xff\xd8")
    assert clean.content_type == "image/jpeg"
    assert clean.source_format == "JPEG"
    assert clean.sha256 == hashlib.sha256(clean.data).hexdigest()
    assert clean.source_sha256 == hashlib.sha256(data).hexdigest()
    assert card_photo_clean(data=data) == clean  # deterministic


def test_icc_profile_and_comment_dropped():
    from PIL import ImageCms

    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    data = jpeg(icc_profile=icc, comment=b"hello")
    im = opened(card_photo_clean(data=data))
    assert "icc_profile" not in im.info and "comment" not in im.info


def test_png_with_alpha_becomes_rgb_jpeg_on_white():
    im = photo(400, 300, mode="RGBA")
    im.paste((0, 0, 0, 0), (0, 0, 400, 100))  # a fully transparent top band
    clean = card_photo_clean(data=encode(im, "PNG"), declared_type="image/png")
    assert clean.source_format == "PNG" and clean.content_type == "image/jpeg"
    out = opened(clean)
    assert out.format == "JPEG" and out.mode == "RGB" and out.size == (400, 300)
    assert near(out.getpixel((100, 50)), WHITE)
    assert near(out.getpixel((100, 200)), RED)


def test_palette_png_with_transparency_and_sixteen_bit_grey():
    palette = photo().convert("P")
    palette.info["transparency"] = 0
    assert card_photo_clean(data=encode(palette, "PNG")).source_format == "PNG"
    grey = Image.new("I;16", (300, 300), 40000)
    out = opened(card_photo_clean(data=encode(grey, "PNG")))
    assert 140 <= out.getpixel((10, 10))[0] <= 170  # scaled to 8 bits, not clipped to white


@pytest.mark.parametrize("lossless", [False, True])
def test_webp_accepted(lossless):
    clean = card_photo_clean(
        data=encode(photo(), "WEBP", lossless=lossless), declared_type="image/webp"
    )
    assert clean.source_format == "WEBP"
    assert (clean.width, clean.height) == (400, 300)
    assert opened(clean).format == "JPEG"


def test_downscaled_to_max_output_side(settings):
    settings.UPLOADS = {"MAX_OUTPUT_SIDE": 500}
    clean = card_photo_clean(data=jpeg(1600, 900))
    assert (clean.width, clean.height) == (500, 281)
    assert opened(clean).size == (500, 281)


def test_default_max_output_side_is_2000():
    clean = card_photo_clean(data=jpeg(4000, 2400))
    assert max(clean.width, clean.height) == 2000


@pytest.mark.parametrize(
    "declared",
    ["", "image/jpeg", "image/jpg", "IMAGE/JPEG; charset=binary", "application/octet-stream"],
)
def test_declared_types_that_agree_or_claim_nothing(declared):
    assert card_photo_clean(data=jpeg(), declared_type=declared).source_format == "JPEG"


def test_filename_decides_nothing():
    assert card_photo_clean(data=jpeg(), filename="card.gif").source_format == "JPEG"
    refused("upload_not_image", data=encode(photo(), "GIF"), filename="card.jpg")


@pytest.mark.parametrize(
    "trailer",
    [
        b"\x00" * 100,
        # Samsung's trailer after EOI: tagged records closed by "SEFH"/"SEFT".
        b"\x00\x00\x0a\x00Image_UTC_Data1712345678901"
        + b"SEFH\x6a\x00\x00\x00\x01\x00\x00\x00\x00\x0a\x00\x00\x47\x00\x00\x00\x17\x00"
        + b"\x00\x00SEFT",
        # A motion photo: an MP4 video after the still.
        b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + random.Random(7).randbytes(200_000),
    ],
    ids=["nul-padding", "samsung-sefh", "motion-photo"],
)
def test_harmless_trailing_data_accepted(trailer):
    assert card_photo_clean(data=jpeg() + trailer).source_format == "JPEG"


def test_mpo_with_a_secondary_image_is_not_animated():
    # iPhone HDR JPEGs and depth photos carry a second image (MPF): the primary one is used.
    data = encode(photo(), "MPO", save_all=True, append_images=[Image.new("RGB", (400, 300))])
    out = opened(card_photo_clean(data=data))
    assert near(out.getpixel((50, 150)), RED)


def test_svg_like_bytes_inside_compressed_pixel_data_do_not_count():
    # Compressed pixel data is random-looking; `<svg` + a tag end occurs there by chance.
    data = jpeg()
    layout = images._jpeg_layout(data)
    start, end = layout.pixel_ranges[0]
    middle = next(
        at for at in range((start + end) // 2, end) if b"\xff" not in data[at - 1 : at + 6]
    )  # keep the scan's marker structure intact
    spliced = data[:middle] + b"<svg " + data[middle + 5 :]
    assert images._polyglot_reason(spliced, images._jpeg_layout(spliced)) is None
    assert images._polyglot_reason(spliced, images._Layout(end=len(spliced))) is not None
    # ...but the same bytes in a comment segment are refused.
    refused("upload_polyglot", data=jpeg(comment=b"<svg onload=alert(1)>"))


# --- not an image ---------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["GIF", "BMP", "TIFF", "ICO", "PPM"])
def test_other_image_formats_refused(fmt):
    refused("upload_not_image", data=encode(photo(256, 256), fmt))


@pytest.mark.parametrize(
    "data",
    [
        "这是一个文本文件，不是照片。\n".encode(),
        b"<!DOCTYPE html><html><body><script>alert(1)</script></body></html>",
        b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="400" height="300"/>',
        b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<<>>\n%%EOF\n",
        b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64,  # HEIC
        b"PK\x03\x04" + b"\x00" * 60,
        b"\xff\xd8",  # two bytes of a JPEG signature are not a JPEG
    ],
    ids=["text", "html", "svg", "pdf", "heic", "zip", "stub"],
)
def test_non_images_refused(data):
    refused("upload_not_image", data=data)


@pytest.mark.parametrize(
    ("maker", "declared"),
    [
        (lambda: encode(photo(), "PNG"), "image/jpeg"),
        (lambda: jpeg(), "image/png"),
        (lambda: jpeg(), "image/gif"),
        (lambda: jpeg(), "text/html"),
        (lambda: encode(photo(), "WEBP"), "image/png"),
    ],
)
def test_declared_type_contradicting_the_bytes_refused(maker, declared):
    error = refused("upload_not_image", data=maker(), declared_type=declared)
    assert "不符" in error.message


def test_animated_webp_refused():
    frames = [photo(), photo().transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    data = encode(frames[0], "WEBP", save_all=True, append_images=frames[1:], duration=100)
    assert Image.open(io.BytesIO(data)).n_frames == 2
    error = refused("upload_not_image", data=data)
    assert error.message == "请上传静态照片"


def test_animated_png_refused():
    frames = [photo(), photo().transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    data = encode(frames[0], "PNG", save_all=True, append_images=frames[1:], duration=100)
    assert b"acTL" in data
    assert refused("upload_not_image", data=data).message == "请上传静态照片"


# --- sizes ----------------------------------------------------------------------------------


def test_empty_refused():
    refused("upload_empty", data=b"")


def test_too_large_refused(settings):
    settings.UPLOADS = {"MAX_BYTES": 1000}
    data = jpeg()
    assert len(data) > 1000
    refused("upload_too_large", data=data)


def test_too_large_default_is_ten_mib(settings):
    del settings.UPLOADS  # absent setting: the default applies
    assert images.upload_limit("MAX_BYTES") == 10 * 1024 * 1024
    refused("upload_too_large", data=b"\xff\xd8\xff" + b"\x00" * (10 * 1024 * 1024))


def test_too_small_refused():
    refused("upload_too_small", data=jpeg(50, 50))
    refused("upload_too_small", data=encode(photo(1000, 150), "PNG"))


def png_bomb(width: int, height: int) -> bytes:
    """A PNG header declaring width × height 1-bit grey pixels, then a few KB of compressed
    zeros: a tiny file that would need width × height bytes once decoded."""
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 100_000, 9)
    return (
        PNG_SIGNATURE
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", idat)
        + png_chunk(b"IEND", b"")
    )


def test_decompression_bomb_refused_from_the_header(monkeypatch):
    opened_files = []

    def spy_open(*args, **kwargs):  # pragma: no cover - must not run
        opened_files.append(args)
        raise AssertionError("Image.open called for a bomb")

    monkeypatch.setattr(images.Image, "open", spy_open)
    monkeypatch.setattr(ImageFile.ImageFile, "load", spy_open)
    data = png_bomb(30_000, 30_000)
    assert len(data) < 2000
    started = time.monotonic()
    refused("upload_too_many_pixels", data=data)
    assert time.monotonic() - started < 0.5
    assert opened_files == []


def test_webp_canvas_bomb_refused_from_the_header(monkeypatch):
    monkeypatch.setattr(images.Image, "open", None)  # a call would fail
    vp8x = bytes([0x10, 0, 0, 0]) + (16383).to_bytes(3, "little") * 2  # 16384 × 16384 canvas
    body = b"WEBP" + b"VP8X" + struct.pack("<I", len(vp8x)) + vp8x
    refused("upload_too_many_pixels", data=b"RIFF" + struct.pack("<I", len(body)) + body)


def test_pillow_bomb_check_is_an_error_too(settings):
    # With our own limit raised past Pillow's (2 × 89 megapixels), Pillow's check still holds.
    settings.UPLOADS = {"MAX_PIXELS": 10**12}
    refused("upload_too_many_pixels", data=png_bomb(20_000, 20_000))


def test_pixel_limit_from_settings(settings):
    settings.UPLOADS = {"MAX_PIXELS": 100_000}
    refused("upload_too_many_pixels", data=jpeg(400, 300))


# --- corrupt --------------------------------------------------------------------------------


def test_truncated_jpeg_refused():
    data = jpeg(800, 600)
    refused("upload_corrupt", data=data[: len(data) // 2])
    refused("upload_corrupt", data=data[:-2])  # no EOI


def test_truncated_png_and_webp_refused():
    data = encode(photo(), "PNG")
    refused("upload_corrupt", data=data[: len(data) - 20])
    webp = encode(photo(), "WEBP")
    refused("upload_corrupt", data=webp[: len(webp) // 2])


def test_png_with_damaged_pixel_data_refused():
    data = bytearray(encode(photo(), "PNG"))
    start, end = images._png_layout(bytes(data)).pixel_ranges[0]
    data[start + 10 : start + 30] = b"\x55" * 20
    refused("upload_corrupt", data=bytes(data))


def test_header_only_jpeg_refused():
    refused("upload_corrupt", data=b"\xff\xd8\xff\xd9")
    refused("upload_corrupt", data=b"\xff\xd8\xff\xe0\x00")


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_mutated_files_never_escape_as_other_exceptions(fmt):
    # Any malformed upload is a ValidationFailed (HTTP 400), never a 500.
    base = encode(photo(240, 240), fmt)
    rng = random.Random(fmt)
    for _ in range(150):
        data = bytearray(base)
        for _ in range(rng.randint(1, 6)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        if rng.random() < 0.3:
            data = data[: rng.randrange(3, len(data))]
        try:
            card_photo_clean(data=bytes(data))
        except ValidationFailed as error:
            assert error.code.startswith("upload_")


# --- polyglots ------------------------------------------------------------------------------


def zip_bytes() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("shell.php", "<?= 1 ?>")
    return out.getvalue()


def test_jpeg_with_an_appended_zip_refused():
    data = jpeg() + zip_bytes()
    assert zipfile.is_zipfile(io.BytesIO(data))
    refused("upload_polyglot", data=data)


def test_zip_hidden_behind_padding_or_other_trailers_refused():
    refused("upload_polyglot", data=jpeg() + b"\x00" * 16 + zip_bytes())
    refused("upload_polyglot", data=jpeg() + b"SEFH-like trailer" + zip_bytes())


def test_png_with_script_in_a_text_chunk_refused():
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "<script>alert(document.cookie)</script>")
    data = encode(photo(), "PNG", pnginfo=info)
    assert b"tEXt" in data
    refused("upload_polyglot", data=data)


def test_png_with_script_in_a_compressed_text_chunk_refused():
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "<SCRIPT src=//evil.example/x.js></SCRIPT>" * 20, zip=True)
    data = encode(photo(), "PNG", pnginfo=info)
    assert b"zTXt" in data and b"SCRIPT" not in data  # only visible once decompressed
    refused("upload_polyglot", data=data)


@pytest.mark.parametrize(
    "trailer",
    [
        b"<?php system($_GET['c']); ?>",
        b"<HTML><body onload=alert(1)>",
        b"<svg/onload=alert(1)>",
        b"<!DOCTYPE html>",
        b"MZ\x90\x00\x03\x00\x00\x00",
        b"\n#!/bin/sh\nrm -rf /\n",
        b"\x7fELF\x02\x01\x01",
        b"%PDF-1.4\n",
        b"Rar!\x1a\x07\x01\x00",
        b"7z\xbc\xaf\x27\x1c\x00\x04",
    ],
)
def test_other_formats_after_the_image_refused(trailer):
    refused("upload_polyglot", data=jpeg() + trailer)


def test_active_content_in_metadata_refused():
    refused("upload_polyglot", data=jpeg(comment=b"<iframe src=//evil.example>"))
    refused("upload_polyglot", data=jpeg(comment=b"javascript:alert(1)"))
    refused("upload_polyglot", data=jpeg(comment=b"%PDF-1.5 hidden in a comment"))


def test_polyglots_after_png_iend_and_beyond_the_webp_riff_length():
    refused("upload_polyglot", data=encode(photo(), "PNG") + b"<script>alert(1)</script>")
    refused("upload_polyglot", data=encode(photo(), "WEBP") + zip_bytes())
    exif = Image.Exif()
    exif[0x010E] = "<script>alert(1)</script>"
    refused("upload_polyglot", data=encode(photo(), "WEBP", exif=exif.tobytes()))


def test_harmless_text_in_metadata_accepted():
    info = PngImagePlugin.PngInfo()
    info.add_text("Software", "Camera <v2> script html svg")
    assert card_photo_clean(data=encode(photo(), "PNG", pnginfo=info)).source_format == "PNG"
