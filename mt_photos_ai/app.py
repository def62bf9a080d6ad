"""The AI service application: settings, runtime and tasks wired to both HTTP APIs."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse

from aio_common import openapi
from aio_common.background import Loops
from aio_common.http import DEFAULT_KEY, BodyLimitMiddleware, error_body, install_error_handlers
from aio_common.metrics import install as install_metrics
from aio_common.metrics import separate_server
from mt_photos_ai.api import docs, immich, mtphotos
from mt_photos_ai.api.deps import Service, require_key, service_of
from mt_photos_ai.clip_models import MODELS
from mt_photos_ai.engines.ocr import MAX_DETECTION_SIDE, MAX_UPSCALE
from mt_photos_ai.metrics import METRICS
from mt_photos_ai.runtime import Runtime
from mt_photos_ai.settings import Settings
from mt_photos_ai.tasks import Tasks

log = logging.getLogger(__name__)

NAME = "mt-photos-ai: Chinese OCR (RapidOCR) and Chinese-CLIP for Immich and MT Photos"
MESSAGE: openapi.Schema = {"type": "object", "required": ["message"], "properties": {"message": {"type": "string"}}}
INFO: openapi.Schema = {
    "type": "object",
    "required": ["clip", "ocr", "device", "versions"],
    "properties": {
        "clip": {
            "type": "object",
            "required": ["model", "dimension"],
            "properties": {"model": {"type": "string"}, "dimension": {"type": "integer"}},
        },
        "ocr": {"type": "object", "properties": {"maxDetectionSide": {"type": "integer"}}},
        "device": {"enum": ["cpu", "cuda"]},
        "versions": {"type": "object", "additionalProperties": {"type": ["string", "null"]}},
    },
}
MT_PHOTOS_PATHS = {route.path for route in mtphotos.router.routes}  # type: ignore[attr-defined]


def error_shape(path: str, message: str) -> dict[str, Any]:
    """MT Photos reads `msg` and expects `result`; Immich reads `detail`."""
    if path in MT_PHOTOS_PATHS:
        return {"result": [], "msg": message, **error_body(message)}
    return error_body(message)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = Runtime(settings)
        app.state.service = Service(settings, runtime, Tasks(settings, runtime))
        if not settings.api_auth_required:
            log.warning("API key check is off (API_AUTH_REQUIRED=false): anyone who reaches the port can use it")
        elif settings.api_auth_key == DEFAULT_KEY:
            log.warning("API_AUTH_KEY is the well-known default: set your own here and in the gateway")
        await runtime.load(settings.preload)
        loops = Loops()
        if settings.model_ttl > 0:
            # Off the event loop: an unload may wait for a load that holds the slot.
            loops.add("unload-idle", lambda: asyncio.to_thread(runtime.unload_idle), max(1.0, settings.model_ttl / 4))
        if settings.idle_memory_release_s > 0:
            interval = max(0.1, settings.idle_memory_release_s / 4)
            loops.add("release-idle-memory", lambda: asyncio.to_thread(runtime.release_idle_memory), interval)
        loops.start()
        with contextlib.ExitStack() as exit_stack:
            if settings.metrics and settings.metrics_port:
                exit_stack.enter_context(separate_server(METRICS, settings.http_host, settings.metrics_port))
            yield
        await loops.stop()
        await asyncio.to_thread(runtime.shutdown)

    app = FastAPI(title="mt-photos-ai", description=NAME, lifespan=lifespan)
    app.add_middleware(BodyLimitMiddleware, limit=settings.max_request_bytes, shape=error_shape)
    install_error_handlers(app, error_shape)
    if settings.metrics:
        install_metrics(app, METRICS, separate_port=bool(settings.metrics_port))

    @app.get(
        "/",
        response_model=None,
        summary="What this service is (HTML for a browser)",
        responses={
            200: {
                "description": "The service's name",
                "content": {
                    openapi.JSON: {"schema": MESSAGE, "example": {"message": NAME}},
                    "text/html": {"schema": {"type": "string"}},
                },
            }
        },
    )
    async def root(request: Request) -> HTMLResponse | dict[str, str]:
        if "text/html" in request.headers.get("accept", ""):
            return HTMLResponse(f"<!doctype html><title>mt-photos-ai</title><p>{NAME}</p>")
        return {"message": NAME}

    @app.get(
        "/info",
        dependencies=[Depends(require_key)],
        summary="The served models, their state, the device and the versions",
        responses={**openapi.ok(INFO), **openapi.errors(401)},
        openapi_extra={"security": openapi.KEY_REQUIRED},
    )
    async def info(request: Request) -> dict[str, Any]:
        runtime = service_of(request).runtime
        model = MODELS[settings.clip_model]
        ocr_engine = runtime.ocr.current
        clip_engine = runtime.clip.current
        return {
            "clip": {
                "model": model.name,
                "dimension": model.dimension,
                "resolution": model.resolution,
                "runtime": settings.resolved_runtime,
                "providers": clip_engine.session.providers if clip_engine else None,
                "weights": str(settings.clip_download_root / model.weights),
                **runtime.clip.state(),
            },
            "ocr": {
                "maxDetectionSide": MAX_DETECTION_SIDE,
                "maxUpscale": MAX_UPSCALE,
                "angleClassifier": settings.ocr_angle_classifier,
                # The model name asked for (Immich's, else OCR_MODEL), the one serving every
                # request instead (OCR_SERVE_MODEL), the files that serve, and why the bundled
                # models serve instead, when they do.
                "asked": runtime.ocr_loader.asked or None,
                "serveModel": settings.ocr_serve_model or None,
                "models": ocr_engine.models if ocr_engine else None,
                "fallback": runtime.ocr_loader.model.missing if runtime.ocr_loader.model else None,
                "providers": ocr_engine.providers if ocr_engine else None,
                **runtime.ocr.state(),
            },
            "device": settings.resolved_device,
            "versions": {
                pkg: _version(pkg) for pkg in ("cn-clip", "torch", "rapidocr", "onnxruntime", "onnxruntime-gpu")
            },
        }

    app.include_router(immich.router)
    app.include_router(mtphotos.router)
    # Bodies whose limits are settings (MAX_TEXT_CHARS).
    bodies = {"/predict": docs.predict_body(settings), "/clip/txt": docs.clip_text_body(settings)}
    openapi.install(
        app,
        version=_version("immich-all-in-one") or "0",
        schemes={openapi.API_KEY: openapi.API_KEY_SCHEME},
        post_bodies=bodies,
    )
    return app


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None
