"""Immich's ML protocol: GET /ping and POST /predict for the clip and ocr tasks."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import PlainTextResponse

from aio_common import openapi, protocol, protocol_docs
from aio_common.errors import BadRequest, Invalid
from aio_common.forms import text_field
from aio_common.http import JsonResponse
from aio_common.metrics import predict_task, set_task
from mt_photos_ai.api.deps import read_form, require_key, service_of
from mt_photos_ai.engines.ocr import OcrOptions, OcrResult

log = logging.getLogger(__name__)
router = APIRouter()

SERVED = {protocol.CLIP: {protocol.VISUAL, protocol.TEXTUAL}, protocol.OCR: {protocol.DETECTION, protocol.RECOGNITION}}


@router.get(
    "/ping",
    response_class=PlainTextResponse,
    summary="Liveness, as Immich checks its ML server",
    responses=openapi.ok({"type": "string", "const": "pong"}, "pong", media_type="text/plain"),
)
async def ping() -> str:
    return "pong"


@router.post(
    "/predict",
    dependencies=[Depends(require_key)],
    summary="Immich's ML protocol: CLIP of an image or a text, OCR of an image",
    responses={
        **openapi.ok(protocol_docs.PREDICT_ANSWER, protocol_docs.PREDICT_EXAMPLE),
        **openapi.errors(400, 401, 413, 422, 503),
    },
    openapi_extra={"security": openapi.KEY_REQUIRED},
)
async def predict(request: Request) -> JsonResponse:
    tasks = service_of(request).tasks
    form = await read_form(request)
    entries = protocol.parse_entries(form.get("entries"))
    _check_served(entries)
    image = form.get("image")
    text = text_field(form, "text")
    set_task(request.scope, predict_task(entries, image is not None))
    log.debug("predict", extra={"models": {t: {k: c.modelName for k, c in m.items()} for t, m in entries.items()}})

    answer: dict[str, Any] = {}
    if image is None:  # as the stock server: an image wins over a text
        if text is None:
            raise BadRequest("Either image or text must be provided.")
        if protocol.OCR in entries or protocol.VISUAL in entries.get(protocol.CLIP, {}):
            raise Invalid("ocr and clip.visual need an 'image', but only text was sent.")
        answer[protocol.CLIP] = protocol.embedding_literal((await tasks.embed_text(text)).tolist())
        return JsonResponse(answer)
    if protocol.TEXTUAL in entries.get(protocol.CLIP, {}):
        raise Invalid("clip.textual needs 'text', but an image was sent.")
    options = _ocr_options(entries[protocol.OCR]) if protocol.OCR in entries else None
    # Both tasks of one request run at once, each on the inference pool.
    embedded, read = await asyncio.gather(
        tasks.embed_image(image) if protocol.CLIP in entries else _nothing(),
        tasks.read_text(image, options) if options is not None else _nothing(),
    )
    if read is not None:
        answer.update(immich_ocr_answer(read.result, read.width, read.height))
    if embedded is not None:
        answer.update(
            {
                protocol.CLIP: protocol.embedding_literal(embedded.vector.tolist()),
                "imageHeight": embedded.height,
                "imageWidth": embedded.width,
            }
        )
    return JsonResponse(answer)


async def _nothing() -> None:
    return None


def _check_served(entries: protocol.Entries) -> None:
    for task, types in entries.items():
        if task not in SERVED:
            raise Invalid(
                f"This service serves the clip and ocr tasks only, not '{task}': send faces and other "
                "tasks to the stock Immich ML server (the gateway does this)."
            )
        unknown = set(types) - SERVED[task]
        if unknown:
            raise Invalid(f"Invalid request format: {task} has no model type {sorted(unknown)}.")
    ocr = entries.get(protocol.OCR)
    if ocr is not None and set(ocr) != SERVED[protocol.OCR]:
        raise BadRequest("ocr needs both a detection and a recognition model.")


def _ocr_options(ocr: dict[str, protocol.EntryConfig]) -> OcrOptions:
    detection = protocol.parse_options(protocol.DetectionOptions, ocr[protocol.DETECTION].options, "ocr.detection")
    recognition = protocol.parse_options(
        protocol.RecognitionOptions, ocr[protocol.RECOGNITION].options, "ocr.recognition"
    )
    return OcrOptions(
        detection.minScore, detection.maxResolution, recognition.minScore, ocr[protocol.RECOGNITION].modelName
    )


def immich_ocr_answer(result: OcrResult, width: int, height: int) -> dict[str, Any]:
    """Immich's OCR answer: flat boxes of 8 numbers per line, normalised to 0-1."""
    boxes = result.boxes.copy()
    boxes[:, :, 0] /= width
    boxes[:, :, 1] /= height
    return {
        protocol.OCR: {
            "text": result.texts,
            "box": boxes.clip(0, 1).reshape(-1).tolist(),
            "boxScore": result.box_scores,
            "textScore": result.text_scores,
        },
        "imageHeight": height,
        "imageWidth": width,
    }
