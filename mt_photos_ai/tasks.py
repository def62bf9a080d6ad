"""The three things the service does, in one place both HTTP APIs call: embed an image, embed a
text, read the text in an image. Each decodes and checks its input, runs on the runtime's pool
(never on the event loop) and gives plain results; formatting belongs to the APIs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from aio_common.errors import Invalid
from mt_photos_ai.engines.clip import ClipEngine
from mt_photos_ai.engines.ocr import OcrEngine, OcrOptions, OcrResult
from mt_photos_ai.images import decode_image
from mt_photos_ai.metrics import timed
from mt_photos_ai.runtime import Runtime
from mt_photos_ai.settings import Settings


@dataclass(frozen=True)
class ImageEmbedding:
    vector: np.ndarray
    # The full upright image's size, as received (the API reports it).
    width: int
    height: int


@dataclass(frozen=True)
class ReadText:
    result: OcrResult
    width: int
    height: int


class Tasks:
    def __init__(self, settings: Settings, runtime: Runtime) -> None:
        self.settings = settings
        self.runtime = runtime
        self._limits = {"max_pixels": settings.max_image_pixels, "max_side": settings.max_image_side}

    def checked_text(self, text: object) -> str:
        if not isinstance(text, str):
            raise Invalid("'text' must be a string.")
        if not text:  # blank text is embedded, as the stock server does
            raise Invalid("'text' is empty.")
        if len(text) > self.settings.max_text_chars:
            raise Invalid(
                f"'text' has {len(text)} characters; the limit is {self.settings.max_text_chars} (MAX_TEXT_CHARS)."
            )
        return text

    async def embed_image(self, data: bytes) -> ImageEmbedding:
        def embed(engine: ClipEngine) -> ImageEmbedding:
            with timed("clip", "decode"):
                # A JPEG is decoded at reduced size when the model needs only its resolution.
                decoded = decode_image(data, min_side=engine.resolution, **self._limits)
            with timed("clip", "preprocess"):
                pixels = engine.preprocess(decoded.image)[None]
            with timed("clip", "forward"):
                vector = engine.encode_pixels(pixels)[0]
            return ImageEmbedding(vector, decoded.width, decoded.height)

        return await self.runtime.run(self.runtime.clip, embed)

    async def embed_text(self, text: str) -> np.ndarray:
        query = self.checked_text(text)

        def embed(engine: ClipEngine) -> np.ndarray:
            with timed("clip", "forward"):  # tokenizing takes microseconds of it
                vector: np.ndarray = engine.encode_texts([query])[0]
            return vector

        return await self.runtime.run(self.runtime.clip, embed)

    async def read_text(self, data: bytes, options: OcrOptions) -> ReadText:
        def read(engine: OcrEngine) -> ReadText:
            with timed("ocr", "decode"):
                decoded = decode_image(data, **self._limits)
            result = engine.read(decoded.image, options)  # it times its own stages
            return ReadText(result, decoded.width, decoded.height)

        return await self.runtime.run(self.runtime.ocr_for(options.model), read)
