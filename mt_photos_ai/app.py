"""The AI service application: wiring of settings, engines, runtime and routes."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse

from aio_common.http import BodyLimitMiddleware, error_body, install_error_handlers
from mt_photos_ai.api import immich, mtphotos
from mt_photos_ai.api.deps import require_key, runtime_of
from mt_photos_ai.engines.clip import ClipEngine, ClipUnavailable, model_facts
from mt_photos_ai.engines.ocr import MAX_DETECTION_SIDE, OcrEngine
from mt_photos_ai.runtime import ModelSlot, Runtime
from mt_photos_ai.settings import Settings

log = logging.getLogger(__name__)

NAME = "mt-photos-ai: Chinese OCR (RapidOCR) and Chinese-CLIP for Immich and MT Photos"
MT_PHOTOS_PATHS = {route.path for route in mtphotos.router.routes}  # type: ignore[attr-defined]


def error_shape(path: str, message: str) -> dict[str, Any]:
    """MT Photos reads `msg` and expects `result`; Immich reads `detail`."""
    if path in MT_PHOTOS_PATHS:
        return {"result": [], "msg": message, **error_body(message)}
    return error_body(message)


def build_runtime(settings: Settings) -> Runtime:
    device = settings.resolved_device
    return Runtime(
        settings,
        {
            "ocr": ModelSlot("ocr", lambda: OcrEngine(device), RuntimeError),
            "clip": ModelSlot(
                "clip",
                lambda: ClipEngine(
                    settings.clip_model, settings.clip_download_root, device, settings.clip_auto_download
                ),
                ClipUnavailable,
            ),
        },
    )


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = build_runtime(settings)
        app.state.runtime = runtime
        if not settings.api_auth_required:
            log.warning("API key check is off (API_AUTH_REQUIRED=false): anyone who reaches the port can use it")
        await runtime.load(settings.preload)
        unloader = asyncio.create_task(runtime.unload_idle_forever()) if settings.model_ttl > 0 else None
        yield
        if unloader:
            unloader.cancel()
        runtime.shutdown()

    app = FastAPI(title="mt-photos-ai", lifespan=lifespan)
    app.state.settings = settings
    app.add_middleware(BodyLimitMiddleware, limit=settings.max_request_bytes, shape=error_shape)
    install_error_handlers(app, error_shape)

    @app.get("/", response_model=None)
    async def root(request: Request) -> HTMLResponse | dict[str, str]:
        if "text/html" in request.headers.get("accept", ""):
            return HTMLResponse(f"<!doctype html><title>mt-photos-ai</title><p>{NAME}</p>")
        return {"message": NAME}

    @app.get("/info", dependencies=[Depends(require_key)])
    async def info(request: Request) -> dict[str, Any]:
        runtime = runtime_of(request)
        clip = runtime.slots["clip"]
        ocr = runtime.slots["ocr"]
        ocr_engine = ocr.current
        dimension, resolution, filename = model_facts(settings.clip_model)
        return {
            "clip": {
                "model": settings.clip_model,
                "dimension": dimension,
                "resolution": resolution,
                "weights": str(settings.clip_download_root / filename),
                "loaded": clip.current is not None,
                "error": clip.error,
            },
            "ocr": {
                "maxDetectionSide": MAX_DETECTION_SIDE,
                "models": ocr_engine.models if ocr_engine else None,
                "providers": ocr_engine.providers if ocr_engine else None,
                "loaded": ocr_engine is not None,
                "error": ocr.error,
            },
            "device": settings.resolved_device,
            "versions": {pkg: _version(pkg) for pkg in ("cn-clip", "torch", "rapidocr", "onnxruntime")},
        }

    app.include_router(immich.router)
    app.include_router(mtphotos.router)
    return app


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None
