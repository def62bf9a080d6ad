"""Immich's machine-learning protocol: the `entries` form field and the answer shapes.

Facts from Immich's ML server and its server-side client (see README, "Protocol"). Both the
AI service and the gateway parse requests here, so they agree on what is a client fault.
"""

from __future__ import annotations

import secrets
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from aio_common.errors import Invalid

CLIP = "clip"
OCR = "ocr"
FACES = "facial-recognition"

VISUAL = "visual"
TEXTUAL = "textual"
DETECTION = "detection"
RECOGNITION = "recognition"

IMAGE_SIZE_KEYS = ("imageHeight", "imageWidth")
MAX_RESOLUTION = 2**31 - 1
# The AI service's default bound on a CLIP text's length (its MAX_TEXT_CHARS).
DEFAULT_MAX_TEXT_CHARS = 1000

OptionsT = TypeVar("OptionsT", bound=BaseModel)


class EntryConfig(BaseModel):
    """One model of one task: `{"modelName": ..., "options": {...}}`. Unknown keys are kept, so
    the gateway forwards an entry exactly as it came (see `predict_body`)."""

    model_config = ConfigDict(extra="allow")

    modelName: str
    options: dict[str, Any] = {}


# task -> model type -> config. Task and type stay strings: the gateway passes tasks it does
# not know to the stock server instead of refusing them.
Entries = dict[str, dict[str, EntryConfig]]
_entries_adapter = TypeAdapter(Entries)


def parse_entries(raw: str | bytes | None) -> Entries:
    """Parse and validate the `entries` field; 422 names what is wrong, as the stock server does."""
    if raw is None:
        raise Invalid("Invalid request format: the 'entries' form field is missing.")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise Invalid(f"Invalid request format: 'entries' is not JSON ({exc}).") from None
    try:
        entries = _entries_adapter.validate_python(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise Invalid(f"Invalid request format: entries.{where}: {first['msg']}.") from None
    if not entries or any(not types for types in entries.values()):
        raise Invalid("Invalid request format: 'entries' names no task or a task without a model.")
    return entries


def embedding_literal(values: list[float]) -> str:
    """An embedding the way Immich stores it: a JSON array in a string (a pgvector literal)."""
    return orjson.dumps(values).decode()


def merge_answers(answers: list[dict[str, Any]]) -> dict[str, Any]:
    """Merge per-task answers into one: each task's key once, the image size once."""
    merged: dict[str, Any] = {}
    for answer in answers:
        for key, value in answer.items():
            if key in IMAGE_SIZE_KEYS and key in merged:
                continue
            merged[key] = value
    return merged


class DetectionOptions(BaseModel):
    """OCR detection options as Immich sends them; unknown options are ignored. Immich allows any
    maxResolution >= 1 (a 32-bit integer in its settings); the engine bounds the detector's input
    itself (see its /info)."""

    # Strict: a JSON true is not a score (pydantic would read it as 1).
    minScore: float = Field(default=0.5, ge=0, le=1, strict=True)
    maxResolution: int = Field(default=736, ge=1, le=MAX_RESOLUTION, strict=True)


class RecognitionOptions(BaseModel):
    minScore: float = Field(default=0.8, ge=0, le=1, strict=True)


def parse_options(model: type[OptionsT], options: dict[str, Any], where: str) -> OptionsT:
    try:
        return model.model_validate(options)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise Invalid(f"Invalid request format: {where}.options.{field}: {first['msg']}.") from None


def predict_body(
    entries: Entries | dict[str, Any] | str, *, image: bytes | memoryview | None = None, text: str | None = None
) -> tuple[bytes, str]:
    """A /predict body as Immich's server sends it (Node FormData, always multipart): `entries`
    as a JSON string, then `image` as a Blob named `blob` (octet-stream) or `text`.
    Returns (body, content type)."""
    if isinstance(entries, str):
        entries_json = entries.encode()
    else:
        entries_json = orjson.dumps(entries, default=lambda config: config.model_dump(exclude_unset=True))
    boundary = f"----formdata-aio-{secrets.token_hex(12)}"
    parts = [_part(boundary, 'name="entries"', entries_json)]
    if image is not None:
        parts.append(_part(boundary, 'name="image"; filename="blob"', image, "application/octet-stream"))
    if text is not None:
        parts.append(_part(boundary, 'name="text"', text.encode()))
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def _part(boundary: str, disposition: str, value: bytes | memoryview, content_type: str | None = None) -> bytes:
    head = f"--{boundary}\r\nContent-Disposition: form-data; {disposition}\r\n"
    if content_type:
        head += f"Content-Type: {content_type}\r\n"
    return head.encode() + b"\r\n" + value + b"\r\n"
