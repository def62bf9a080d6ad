"""Image decoding with limits: size checks before pixels are read, EXIF orientation, JPEG draft."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

from aio_common.errors import ImageEmpty, ImageTooLarge, ImageUndecodable

# Our own limits below replace Pillow's global bomb guard, which would raise before we can
# answer with a message naming the setting.
Image.MAX_IMAGE_PIXELS = None


# EXIF orientations that swap width and height.
_TRANSPOSED = {5, 6, 7, 8}


@dataclass(frozen=True)
class Decoded:
    image: Image.Image
    # Size of the full upright image as received, even when `image` was decoded smaller.
    width: int
    height: int


def decode_image(data: bytes, *, max_pixels: int, max_side: int, min_side: int | None = None) -> Decoded:
    """Decode `data` into an upright RGB image.

    `min_side`: the smallest short side the caller needs; a JPEG much larger than that is
    decoded at a reduced scale (Pillow's draft mode: the DCT does the downscaling, far cheaper
    than decoding every pixel and resizing).
    """
    if not data:
        raise ImageEmpty("The image is empty (0 bytes).")
    try:
        image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise ImageUndecodable("The image could not be decoded: not a known image format.") from None
    width, height = image.size
    if width > max_side or height > max_side:
        raise ImageTooLarge(f"The image is {width}x{height} px; the limit is {max_side} px on a side.")
    if width * height > max_pixels:
        raise ImageTooLarge(f"The image has {width * height} pixels; the limit is {max_pixels} (MAX_IMAGE_PIXELS).")
    if image.getexif().get(0x0112) in _TRANSPOSED:
        width, height = height, width
    if min_side is not None and image.format == "JPEG":
        # draft() picks the largest scale (1/2, 1/4, 1/8) that stays >= the requested size.
        image.draft("RGB", (min_side, min_side))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            image.load()
        upright = ImageOps.exif_transpose(image)
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageUndecodable(f"The image could not be decoded: {exc}.") from None
    rgb = upright if upright.mode == "RGB" else upright.convert("RGB")
    return Decoded(rgb, width, height)
