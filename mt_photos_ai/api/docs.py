"""What the AI service's routes take and answer, for its OpenAPI document (docs/openapi-ai.json).

The routes parse their bodies themselves; these schemas say the same rules: change one, change
both (the fuzzing campaign in the tests holds them together).
"""

from __future__ import annotations

from typing import Any

from aio_common import openapi, protocol, protocol_docs
from mt_photos_ai.settings import Settings


def text_schema(settings: Settings) -> openapi.Schema:
    return {"type": "string", "minLength": 1, "maxLength": settings.max_text_chars}


def predict_body(settings: Settings) -> dict[str, Any]:
    image_entries = protocol_docs.entries(
        {protocol.CLIP: protocol_docs.clip_task(protocol.VISUAL), protocol.OCR: protocol_docs.OCR_TASK}
    )
    text_entries = protocol_docs.entries(
        {protocol.CLIP: protocol_docs.clip_task(protocol.TEXTUAL)}, required=[protocol.CLIP]
    )
    return protocol_docs.predict_body(image_entries, text_entries, text_schema(settings))


# The MT Photos API: its clients read `result` and `msg`.
MT_ERROR: openapi.Schema = {
    "type": "object",
    "required": ["result", "msg", "detail"],
    "properties": {"result": {"type": "array", "maxItems": 0}, "msg": {"type": "string"}, "detail": {"type": "string"}},
}


def mt_errors(*codes: int) -> dict[int | str, Any]:
    return openapi.errors(
        *codes, schema=MT_ERROR, example=lambda message: {"result": [], "msg": message, "detail": message}
    )


FILE_BODY = openapi.multipart_body(
    {"type": "object", "required": ["file"], "properties": {"file": protocol_docs.IMAGE}},
    {"file": {"contentType": "image/*"}},
)
FIXED = {"type": "string", "description": "A number as MT Photos' own service writes it"}
OCR_ANSWER: openapi.Schema = {
    "type": "object",
    "required": ["result"],
    "properties": {
        "result": {
            "type": "object",
            "required": ["texts", "scores", "boxes"],
            "properties": {
                "texts": openapi.string_array("The lines, in reading order"),
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
VECTOR_ANSWER: openapi.Schema = {
    "type": "object",
    "required": ["result"],
    "properties": {"result": {"type": "array", "items": FIXED, "description": "The normalised vector"}},
}
PASS: openapi.Schema = {"type": "object", "required": ["result"], "properties": {"result": {"const": "pass"}}}


def clip_text_body(settings: Settings) -> dict[str, Any]:
    schema = {"type": "object", "required": ["text"], "properties": {"text": text_schema(settings)}}
    return openapi.json_body(schema, {"text": "海边的日落"})
