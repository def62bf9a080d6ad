"""Schemathesis hooks (named in schemathesis.toml): image parts are real images.

The documents say an image part is `image/*`; JSON Schema cannot say "decodes as an image", so
without this hook every generated "image" would be random bytes, and every valid request a 422.
The images are small and varied: sizes from 1 px to a few hundred, grey, colour and alpha,
shapes and noise, in PNG, JPEG and WebP.
"""

from __future__ import annotations

import io

import schemathesis
from hypothesis import strategies as st
from PIL import Image, ImageDraw

FORMATS = {"image/png": "PNG", "image/jpeg": "JPEG", "image/webp": "WEBP"}


@st.composite
def images(draw: st.DrawFn, image_format: str) -> bytes:
    mode = draw(st.sampled_from(["L", "RGB", "RGBA"] if image_format != "JPEG" else ["L", "RGB"]))
    size = (draw(st.integers(1, 320)), draw(st.integers(1, 320)))
    colour = draw(st.integers(0, 255))
    image = Image.new(mode, size, colour if mode == "L" else (colour,) * len(mode))
    pen = ImageDraw.Draw(image)
    for _ in range(draw(st.integers(0, 4))):
        box = (
            sorted(draw(st.tuples(st.integers(0, size[0]), st.integers(0, size[0])))),
            sorted(draw(st.tuples(st.integers(0, size[1]), st.integers(0, size[1])))),
        )
        fill = draw(st.integers(0, 255))
        pen.rectangle((box[0][0], box[1][0], box[0][1], box[1][1]), fill=fill if mode == "L" else (fill,) * len(mode))
    buffer = io.BytesIO()
    image.save(buffer, image_format)
    return buffer.getvalue()


for media_type, image_format in FORMATS.items():
    schemathesis.openapi.media_type(media_type, images(image_format))
