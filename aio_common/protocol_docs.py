"""Immich's ML protocol as OpenAPI schemas: the `entries` of a /predict request and its answer.
Both services' documents are built from these (the AI service serves clip and ocr; the gateway
also passes facial-recognition on)."""

from __future__ import annotations

from aio_common import openapi, protocol

ENTRY: openapi.Schema = {
    "type": "object",
    "required": ["modelName"],
    "properties": {
        "modelName": {"type": "string", "description": "Any name: the served models answer"},
        "options": {"type": "object", "description": "Model options; others than those below are ignored"},
    },
}


def with_options(options: openapi.Schema) -> openapi.Schema:
    return {**ENTRY, "properties": {**ENTRY["properties"], "options": {"type": "object", "properties": options}}}


IMAGE: openapi.Schema = {"type": "string", "format": "binary", "description": "The image: JPEG, PNG, WebP, ..."}
SCORE = {"type": "number", "minimum": 0, "maximum": 1}
OCR_TASK: openapi.Schema = {
    "type": "object",
    "required": [protocol.DETECTION, protocol.RECOGNITION],
    "additionalProperties": False,
    "properties": {
        protocol.DETECTION: with_options(
            {"minScore": SCORE, "maxResolution": {"type": "integer", "minimum": 1, "maximum": protocol.MAX_RESOLUTION}}
        ),
        protocol.RECOGNITION: with_options({"minScore": SCORE}),
    },
}


def clip_task(model_type: str, entry: openapi.Schema = ENTRY) -> openapi.Schema:
    return {
        "type": "object",
        "required": [model_type],
        "additionalProperties": False,
        "properties": {model_type: entry},
    }


def predict_body(
    image_entries: openapi.Schema, text_entries: openapi.Schema, text: openapi.Schema
) -> dict[str, object]:
    """An image with the tasks that read images, or a text with clip.textual (an image wins:
    a text sent beside it is not read)."""
    # The parts at the top (where multipart encoders look for them), the two shapes below.
    schema = {
        "type": "object",
        "required": ["entries"],
        "properties": {"entries": {"anyOf": [image_entries, text_entries]}, "image": IMAGE, "text": {"type": "string"}},
        "oneOf": [
            {"title": "image", "required": ["image"], "properties": {"entries": image_entries}},
            {
                "title": "text",
                "required": ["text"],
                "properties": {"entries": text_entries, "text": text},
                "not": {"required": ["image"]},
            },
        ],
    }
    return openapi.multipart_body(
        schema, {"entries": {"contentType": openapi.JSON}, "image": {"contentType": "image/*"}}
    )


def entries(tasks: dict[str, openapi.Schema], required: list[str] | None = None) -> openapi.Schema:
    return {
        "type": "object",
        "minProperties": 1,
        "additionalProperties": False,
        "properties": tasks,
        **({"required": required} if required else {}),
        "description": "Immich's tasks and models, a JSON object (sent as a JSON string)",
    }


VECTOR_LITERAL = {"type": "string", "description": "The normalised vector as a JSON array in a string"}
PREDICT_ANSWER: openapi.Schema = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        protocol.CLIP: VECTOR_LITERAL,
        protocol.OCR: {
            "type": "object",
            "required": ["text", "box", "boxScore", "textScore"],
            "additionalProperties": False,
            "properties": {
                "text": openapi.string_array("The lines, in reading order"),
                "box": {"type": "array", "items": {"type": "number"}, "description": "8 numbers (0-1) per line"},
                "boxScore": {"type": "array", "items": {"type": "number"}},
                "textScore": {"type": "array", "items": {"type": "number"}},
            },
        },
        "imageHeight": {"type": "integer"},
        "imageWidth": {"type": "integer"},
    },
}
PREDICT_EXAMPLE = {
    protocol.OCR: {
        "text": ["增值税电子普通发票"],
        "box": [0.1, 0.2, 0.9, 0.2, 0.9, 0.3, 0.1, 0.3],
        "boxScore": [0.93],
        "textScore": [0.98],
    },
    "imageHeight": 1080,
    "imageWidth": 1440,
}
