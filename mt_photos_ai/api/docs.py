"""What the AI service's routes take and answer, for its OpenAPI document (docs/openapi-ai.json).

The routes parse their bodies themselves; these schemas say the same rules: change one, change
both (the fuzzing campaign in the tests holds them together).
"""

from __future__ import annotations

from typing import Any

from aio_common import openapi as o
from aio_common import protocol as p
from aio_common import protocol_docs as pd
from mt_photos_ai.settings import Settings


def text_schema(settings: Settings) -> o.Schema:
    return {"type": "string", "minLength": 1, "maxLength": settings.max_text_chars}


def predict_body(settings: Settings) -> dict[str, Any]:
    image_entries = pd.entries({p.CLIP: pd.clip_task(p.VISUAL), p.OCR: pd.OCR_TASK})
    text_entries = pd.entries({p.CLIP: pd.clip_task(p.TEXTUAL)}, required=[p.CLIP])
    return pd.predict_body(image_entries, text_entries, text_schema(settings))


# The MT Photos API: its clients read `result` and `msg`.
MT_ERROR: o.Schema = {
    "type": "object",
    "required": ["result", "msg", "detail"],
    "properties": {"result": {"type": "array", "maxItems": 0}, "msg": {"type": "string"}, "detail": {"type": "string"}},
}


def mt_errors(*codes: int) -> dict[int | str, Any]:
    return o.errors(*codes, schema=MT_ERROR, example=lambda message: {"result": [], "msg": message, "detail": message})


FILE_BODY = o.multipart_body(
    {"type": "object", "required": ["file"], "properties": {"file": pd.IMAGE}}, {"file": {"contentType": "image/*"}}
)
FIXED = {"type": "string", "description": "A number as MT Photos' own service writes it"}
OCR_ANSWER: o.Schema = {
    "type": "object",
    "required": ["result"],
    "properties": {
        "result": {
            "type": "object",
            "required": ["texts", "scores", "boxes"],
            "properties": {
                "texts": o.string_array("The lines, in reading order"),
                "scores": {"type": "array", "items": FIXED},
                "boxes": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["x", "y", "width", "height"],
                        "properties": {"x": FIXED, "y": FIXED, "width": FIXED, "height": FIXED},
                    },
                },
            },
        }
    },
}
VECTOR_ANSWER: o.Schema = {
    "type": "object",
    "required": ["result"],
    "properties": {"result": {"type": "array", "items": FIXED, "description": "The normalised vector"}},
}
PASS: o.Schema = {"type": "object", "required": ["result"], "properties": {"result": {"const": "pass"}}}


def clip_text_body(settings: Settings) -> dict[str, Any]:
    schema = {"type": "object", "required": ["text"], "properties": {"text": text_schema(settings)}}
    return o.json_body(schema, {"text": "海边的日落"})
