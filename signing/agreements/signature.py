"""Per-character handwritten signatures: validate the strokes and render each character's PNG
on the server from them (a client image is never trusted)."""

from __future__ import annotations

import hashlib
import io
import math
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from PIL import Image, ImageDraw

from core.errors import ValidationFailed
from core.hashchain import canonical_json

BOX_MIN, BOX_MAX = 80, 1200  # CSS pixels of the drawing box, either side
MAX_STROKES = 40
MAX_POINTS = 4000
MIN_DURATION_MS = 120  # a real character takes longer than this to write
MAX_DURATION_MS = 120_000
OUT_OF_BOX_TOLERANCE = 0.02  # of the box side: a finger's edge may touch the frame
RENDER_SIZE = 256


@dataclass(frozen=True)
class CleanCharacter:
    strokes: list[list[dict]]
    width: int
    height: int
    png: bytes
    png_sha256: str
    strokes_sha256: str


def _bad(message: str) -> ValidationFailed:
    return ValidationFailed("signature_invalid", message, fields={"strokes": [message]})


def _number(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _bad(f"笔迹数据格式不正确（{name}）")
    # 1e400 parses as infinity; int(inf) and Pillow would raise a 500 further on.
    if isinstance(value, float) and not math.isfinite(value):
        raise _bad(f"笔迹数据格式不正确（{name}）")
    return float(value)


def finite_strokes(strokes) -> None:
    """Validator for the strokes of the API's input serializer: every number of every point
    finite (JSON's 1e400 is infinity in Python). Raises Django's ValidationError, which DRF
    answers as 400 `invalid_input`; the view runs it only once the agreement and the box are
    found open (signing/agreements/flow.py `signature_character_put`)."""
    for stroke in strokes if isinstance(strokes, list) else ():
        for point in stroke if isinstance(stroke, list) else ():
            if not isinstance(point, dict):
                continue
            for value in point.values():
                if isinstance(value, float) and not math.isfinite(value):
                    raise ValidationError("笔迹数据中的数值无效")


def character_clean(*, strokes, width, height) -> CleanCharacter:
    """Check one character: not empty, ink inside the box, a plausible stroke count and
    writing time; then render it. Raises `signature_invalid` with a Chinese reason."""
    width, height = int(_number(width, "width")), int(_number(height, "height"))
    if not (BOX_MIN <= width <= BOX_MAX and BOX_MIN <= height <= BOX_MAX):
        raise _bad("签字框尺寸不正确")
    if not isinstance(strokes, list) or not strokes:
        raise _bad("请在签字框内书写")
    if len(strokes) > MAX_STROKES:
        raise _bad("笔画过多，请点击「清除」后重新书写")
    clean: list[list[dict]] = []
    total, times = 0, []
    tol_x, tol_y = width * OUT_OF_BOX_TOLERANCE, height * OUT_OF_BOX_TOLERANCE
    for stroke in strokes:
        if not isinstance(stroke, list) or not stroke:
            raise _bad("笔迹数据格式不正确")
        points = []
        for point in stroke:
            if not isinstance(point, dict):
                raise _bad("笔迹数据格式不正确")
            x, y, t = (
                _number(point.get("x"), "x"),
                _number(point.get("y"), "y"),
                _number(point.get("t"), "t"),
            )
            p = _number(point.get("p", 0.5), "p")
            if not (-tol_x <= x <= width + tol_x and -tol_y <= y <= height + tol_y):
                raise _bad("笔迹超出签字框，请点击「清除」后在框内重新书写")
            points.append(
                {"x": round(x, 2), "y": round(y, 2), "t": int(t), "p": round(min(max(p, 0), 1), 3)}
            )
            times.append(int(t))
        total += len(points)
        clean.append(points)
    if total > MAX_POINTS:
        raise _bad("笔迹数据过大")
    duration = max(times) - min(times)
    if duration < MIN_DURATION_MS or duration > MAX_DURATION_MS:
        raise _bad("书写时间异常，请重新书写")
    if total < 3:
        raise _bad("请在签字框内书写完整的字")
    png = render_png(clean, width, height)
    return CleanCharacter(
        strokes=clean,
        width=width,
        height=height,
        png=png,
        png_sha256=hashlib.sha256(png).hexdigest(),
        strokes_sha256=hashlib.sha256(canonical_json(clean).encode()).hexdigest(),
    )


def render_png(strokes: list[list[dict]], width: int, height: int) -> bytes:
    """Black ink on transparent, RENDER_SIZE square, line width following pressure."""
    scale = RENDER_SIZE / max(width, height)
    image = Image.new("RGBA", (RENDER_SIZE, RENDER_SIZE), (255, 255, 255, 0))
    draw = ImageDraw.Draw(image)
    for stroke in strokes:
        points = [(p["x"] * scale, p["y"] * scale) for p in stroke]
        pressure = sum(p["p"] for p in stroke) / len(stroke)
        line = max(3, int(RENDER_SIZE * (0.018 + 0.02 * pressure)))
        if len(points) == 1:
            x, y = points[0]
            draw.ellipse(
                (x - line / 2, y - line / 2, x + line / 2, y + line / 2), fill=(0, 0, 0, 255)
            )
        else:
            draw.line(points, fill=(0, 0, 0, 255), width=line, joint="curve")
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()
