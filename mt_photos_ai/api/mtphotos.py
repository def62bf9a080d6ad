"""The MT Photos AI API: field names and value formats exactly as MT Photos reads them."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, BackgroundTasks, Depends, Request

from aio_common.errors import BadRequest, Invalid
from mt_photos_ai.api.deps import checked_text, read_form, refuse_wrong_key, require_key, runtime_of, settings_of
from mt_photos_ai.engines.clip import ClipEngine
from mt_photos_ai.engines.ocr import OcrEngine, OcrOptions, OcrResult
from mt_photos_ai.images import decode_image

router = APIRouter(tags=["mt-photos"])

# MT Photos' own service uses RapidOCR's defaults, which keep lines scoring above 0.5.
MT_PHOTOS_OCR = OcrOptions(box_min_score=0.5, max_resolution=736, text_min_score=0.5)


@router.post("/check", dependencies=[Depends(refuse_wrong_key)])
async def check(request: Request) -> dict[str, str]:
    settings = settings_of(request)
    return {
        "result": "pass",
        "title": "mt-photos-ai (RapidOCR + Chinese-CLIP)",
        "help": f"OCR: RapidOCR; CLIP: Chinese-CLIP {settings.clip_model}",
        "device": settings.resolved_device,
    }


@router.post("/restart", dependencies=[Depends(require_key)])
@router.post("/restart_v2", dependencies=[Depends(require_key)])
async def restart(request: Request, background: BackgroundTasks) -> dict[str, str]:
    # Answer first, then unload and load again the models that were preloaded.
    runtime = runtime_of(request)

    async def reload() -> None:
        runtime.unload_all()
        await runtime.load(settings_of(request).preload)

    background.add_task(reload)
    return {"result": "pass"}


@router.post("/ocr", dependencies=[Depends(require_key)])
async def ocr(request: Request) -> dict[str, Any]:
    image = await _image(request)
    settings = settings_of(request)

    def read(engine: OcrEngine) -> OcrResult:
        decoded = decode_image(image, max_pixels=settings.max_image_pixels, max_side=settings.max_image_side)
        return engine.read(decoded.image, MT_PHOTOS_OCR)

    return {"result": mt_photos_ocr_result(await runtime_of(request).run("ocr", read))}


@router.post("/clip/img", dependencies=[Depends(require_key)])
async def clip_image(request: Request) -> dict[str, list[str]]:
    image = await _image(request)
    settings = settings_of(request)

    def embed(engine: ClipEngine) -> list[float]:
        decoded = decode_image(
            image,
            max_pixels=settings.max_image_pixels,
            max_side=settings.max_image_side,
            min_side=engine.resolution,
        )
        return engine.encode_images([decoded.image])[0].tolist()

    return {"result": _vector_strings(await runtime_of(request).run("clip", embed))}


@router.post("/clip/txt", dependencies=[Depends(require_key)])
async def clip_text(request: Request) -> dict[str, list[str]]:
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        raise Invalid('The body must be JSON: {"text": "..."}.') from None
    if not isinstance(body, dict) or "text" not in body:
        raise Invalid('The body must be JSON with a "text" field: {"text": "..."}.')
    text = checked_text(body["text"], settings_of(request))
    vector = await runtime_of(request).run("clip", lambda engine: engine.encode_texts([text])[0].tolist())
    return {"result": _vector_strings(vector)}


async def _image(request: Request) -> bytes:
    image = (await read_form(request)).get("file")
    if image is None:
        raise BadRequest("The image must be sent as the multipart file field 'file'.")
    return image


def _fixed(value: float) -> str:
    # The format MT Photos' own service sends: Python's str of a value rounded to 2 places.
    return str(round(float(value), 2))


def _vector_strings(vector: list[float]) -> list[str]:
    return [f"{value:.16f}" for value in vector]


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
