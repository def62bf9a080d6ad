"""Test helpers: real uvicorn servers on 127.0.0.1, generated text images, Immich-shaped requests."""

from __future__ import annotations

import contextlib
import io
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
from PIL import Image, ImageDraw, ImageFont

from aio_common.protocol import predict_body

FONT_PATHS = [
    Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"),
    Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"),
]

OCR_ENTRIES = {
    "ocr": {
        "detection": {"modelName": "PP-OCRv5_mobile", "options": {"minScore": 0.5, "maxResolution": 736}},
        "recognition": {"modelName": "PP-OCRv5_mobile", "options": {"minScore": 0.8}},
    }
}
FACE_ENTRIES = {
    "facial-recognition": {
        "detection": {"modelName": "buffalo_l", "options": {"minScore": 0.7}},
        "recognition": {"modelName": "buffalo_l"},
    }
}


def clip_entries(kind: str, model: str = "RN50__openai") -> dict[str, Any]:
    options = {"language": "zh-CN"} if kind == "textual" else {}
    return {"clip": {kind: {"modelName": model, "options": options}}}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def serve(app: Any) -> Iterator[str]:
    """Run `app` on a real uvicorn server on 127.0.0.1; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


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


def immich_request(entries: Any, *, image: bytes | None = None, text: str | None = None) -> dict[str, Any]:
    """httpx keyword arguments for a /predict request shaped like the one Immich's server sends."""
    body, content_type = predict_body(entries, image=image, text=text)
    return {"content": body, "headers": {"content-type": content_type}}
