"""Generated test images: Chinese and English text drawn with a CJK font."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont

FONT_PATHS = [
    Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"),
    Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"),
]


def font(size: int) -> ImageFont.FreeTypeFont:
    for path in FONT_PATHS:
        if path.exists():
            return ImageFont.truetype(str(path), size)
    raise RuntimeError("no Chinese font: install fonts-wqy-microhei (the CI script does)")


@dataclass
class TextImage:
    data: bytes
    width: int
    height: int
    # The drawn text's pixel bounding box per line: (left, top, right, bottom).
    boxes: list[tuple[int, int, int, int]]


def text_image(
    lines: list[str], size: tuple[int, int] = (1440, 960), font_size: int = 48, fmt: str = "JPEG"
) -> TextImage:
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    face = font(font_size)
    boxes = []
    for i, line in enumerate(lines):
        position = (80, 80 + i * int(font_size * 2.5))
        draw.text(position, line, font=face, fill="black")
        boxes.append(draw.textbbox(position, line, font=face))
    return TextImage(encode(image, fmt), size[0], size[1], boxes)


def encode(image: Image.Image, fmt: str = "JPEG", **params: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()
