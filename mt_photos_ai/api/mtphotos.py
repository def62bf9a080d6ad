"""The MT Photos AI API: field names and value formats exactly as MT Photos reads them."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import orjson
from fastapi import APIRouter, BackgroundTasks, Depends, Request

from aio_common import openapi
from aio_common.errors import BadRequest, Invalid
from aio_common.metrics import CLIP_IMAGE, CLIP_TEXT, OCR_TASK, set_task
from mt_photos_ai.api import docs
from mt_photos_ai.api.deps import read_form, refuse_wrong_key, require_key, service_of
from mt_photos_ai.engines.ocr import OcrOptions, OcrResult

router = APIRouter(tags=["mt-photos"])

# MT Photos' own service uses RapidOCR's defaults, which keep lines scoring above 0.5.
MT_PHOTOS_OCR = OcrOptions(box_min_score=0.5, max_resolution=736, text_min_score=0.5)


@router.post(
    "/check",
    dependencies=[Depends(refuse_wrong_key)],
    summary="MT Photos' connection test: no key needed, a wrong one is refused",
    responses={
        **openapi.ok(
            {
                **docs.PASS,
                "properties": {
                    **docs.PASS["properties"],
                    "title": {"type": "string"},
                    "help": {"type": "string"},
                    "device": {"type": "string"},
                },
            },
            {"result": "pass", "title": "mt-photos-ai", "help": "OCR: RapidOCR", "device": "cpu"},
        ),
        **docs.mt_errors(401),
    },
    openapi_extra={"security": [{}, *openapi.KEY_REQUIRED]},
)
async def check(request: Request) -> dict[str, str]:
    settings = service_of(request).settings
    return {
        "result": "pass",
        "title": "mt-photos-ai (RapidOCR + Chinese-CLIP)",
        "help": f"OCR: RapidOCR; CLIP: Chinese-CLIP {settings.clip_model}",
        "device": settings.resolved_device,
    }


_RESTART = {
    "dependencies": [Depends(require_key)],
    "summary": "Reload the preloaded models (answered first, done after)",
    "responses": {**openapi.ok(docs.PASS, {"result": "pass"}), **docs.mt_errors(401)},
    "openapi_extra": {"security": openapi.KEY_REQUIRED},
}


@router.post("/restart", **_RESTART)  # type: ignore[arg-type]
@router.post("/restart_v2", **_RESTART)  # type: ignore[arg-type]
async def restart(request: Request, background: BackgroundTasks) -> dict[str, str]:
    # Answer first, then unload and load again the models that were preloaded.
    service = service_of(request)

    async def reload() -> None:
        await asyncio.to_thread(service.runtime.unload_all)  # may wait for a load in progress
        await service.runtime.load(service.settings.preload)

    background.add_task(reload)
    return {"result": "pass"}


@router.post(
    "/ocr",
    dependencies=[Depends(require_key)],
    summary="The text in an image, as MT Photos reads it",
    responses={
        **openapi.ok(
            docs.OCR_ANSWER,
            {
                "result": {
                    "texts": ["发票"],
                    "scores": ["0.98"],
                    "boxes": [{"x": "10.0", "y": "20.0", "width": "80.0", "height": "24.0"}],
                }
            },
        ),
        **docs.mt_errors(400, 401, 413, 422, 503),
    },
    openapi_extra={**docs.FILE_BODY, "security": openapi.KEY_REQUIRED},
)
async def ocr(request: Request) -> dict[str, Any]:
    set_task(request.scope, OCR_TASK)
    read = await service_of(request).tasks.read_text(await _image(request), MT_PHOTOS_OCR)
    return {"result": mt_photos_ocr_result(read.result)}


@router.post(
    "/clip/img",
    dependencies=[Depends(require_key)],
    summary="The CLIP vector of an image",
    responses={
        **openapi.ok(docs.VECTOR_ANSWER, {"result": ["0.0123456789012345", "-0.0456789012345678"]}),
        **docs.mt_errors(400, 401, 413, 422, 503),
    },
    openapi_extra={**docs.FILE_BODY, "security": openapi.KEY_REQUIRED},
)
async def clip_image(request: Request) -> dict[str, list[str]]:
    set_task(request.scope, CLIP_IMAGE)
    embedded = await service_of(request).tasks.embed_image(await _image(request))
    return {"result": _vector_strings(embedded.vector)}


@router.post(
    "/clip/txt",
    dependencies=[Depends(require_key)],
    summary="The CLIP vector of a text",
    responses={
        **openapi.ok(docs.VECTOR_ANSWER, {"result": ["0.0123456789012345", "-0.0456789012345678"]}),
        **docs.mt_errors(401, 413, 422, 503),
    },
    openapi_extra={"security": openapi.KEY_REQUIRED},
)
async def clip_text(request: Request) -> dict[str, list[str]]:
    set_task(request.scope, CLIP_TEXT)
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        raise Invalid('The body must be JSON: {"text": "..."}.') from None
    if not isinstance(body, dict) or "text" not in body:
        raise Invalid('The body must be JSON with a "text" field: {"text": "..."}.')
    return {"result": _vector_strings(await service_of(request).tasks.embed_text(body["text"]))}


async def _image(request: Request) -> bytes:
    image = (await read_form(request)).get("file")
    if image is None:
        raise BadRequest("The image must be sent as the multipart file field 'file'.")
    return image


def _fixed(value: float) -> str:
    # The format MT Photos' own service sends: Python's str of a value rounded to 2 places.
    return str(round(float(value), 2))


def _vector_strings(vector: np.ndarray) -> list[str]:
    return [f"{value:.16f}" for value in vector.tolist()]


def mt_photos_ocr_result(result: OcrResult) -> dict[str, list[Any]]:
    """texts, scores and the axis-aligned pixel box of each line."""
    boxes = []
    for corners in result.boxes:
        left, top = corners.min(axis=0)
        right, bottom = corners.max(axis=0)
        boxes.append(
            {"x": _fixed(left), "y": _fixed(top), "width": _fixed(right - left), "height": _fixed(bottom - top)}
        )
    return {"texts": result.texts, "scores": [_fixed(s) for s in result.text_scores], "boxes": boxes}
