"""The organisation's seal image: a red round seal drawn with Pillow, the organisation's name
around the rim, a five-pointed star in the middle and 「合同专用章」 below it, on a transparent
background so that the text under it stays visible in the sealed PDF."""

from __future__ import annotations

import io
import math

from PIL import Image, ImageDraw, ImageFont

SEAL_RED = (214, 30, 36, 235)
SEAL_PURPOSE = "合同专用章"


def _rim_text(org_name: str) -> str:
    # Seals carry characters only: fullwidth and ASCII brackets would look like stray strokes.
    return "".join(ch for ch in org_name if ch not in "（）()【】[] ")


def _star(cx: float, cy: float, outer: float) -> list[tuple[float, float]]:
    inner = outer * 0.382
    points = []
    for k in range(10):
        radius = outer if k % 2 == 0 else inner
        angle = math.radians(-90 + 36 * k)
        points.append((cx + radius * math.cos(angle), cy + radius * math.sin(angle)))
    return points


def seal_png_draw(*, org_name: str, font_path: str, size: int = 480) -> bytes:
    """Draw the seal and return it as PNG bytes (RGBA, `size` × `size` pixels)."""
    image = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    centre = size / 2
    rim = size / 2 - size * 0.02
    draw.ellipse(
        [centre - rim, centre - rim, centre + rim, centre + rim],
        outline=SEAL_RED,
        width=max(3, int(size * 0.035)),
    )
    draw.polygon(_star(centre, centre, size * 0.15), fill=SEAL_RED)

    text = _rim_text(org_name) or org_name
    font_size = int(size * 0.115)
    font = ImageFont.truetype(font_path, font_size, index=0)
    # The name runs clockwise along the upper rim, centred on the top, each character upright
    # relative to the rim (its foot towards the centre).
    span = min(250.0, 23.0 * len(text))
    text_radius = rim - size * 0.035 - font_size * 0.62
    tile = int(font_size * 1.5)
    stroke = max(1, size // 240)  # carved seals have heavy strokes
    for i, ch in enumerate(text):
        angle = -90.0 - span / 2 + span * (i + 0.5) / len(text)
        glyph = Image.new("RGBA", (tile, tile), (0, 0, 0, 0))
        ImageDraw.Draw(glyph).text(
            (tile / 2, tile / 2), ch, font=font, fill=SEAL_RED, anchor="mm", stroke_width=stroke
        )
        glyph = glyph.rotate(-(angle + 90.0), resample=Image.Resampling.BICUBIC, expand=True)
        x = centre + text_radius * math.cos(math.radians(angle)) - glyph.width / 2
        y = centre + text_radius * math.sin(math.radians(angle)) - glyph.height / 2
        image.alpha_composite(glyph, (int(round(x)), int(round(y))))

    purpose_font = ImageFont.truetype(font_path, int(size * 0.085), index=0)
    draw.text(
        (centre, centre + size * 0.27),
        SEAL_PURPOSE,
        font=purpose_font,
        fill=SEAL_RED,
        anchor="mm",
        stroke_width=stroke,
    )
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()
