"""The gateway application: Immich's ML endpoint (/ping, /health; /predict in gateway.predict),
search and re-processing routes, and the supervised background loops that keep them fed."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import ipaddress
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse

from aio_common import openapi
from aio_common.errors import BackendFailed, BackendTimedOut, Unavailable
from aio_common.http import DEFAULT_KEY, BodyLimitMiddleware, install_error_handlers, keys_equal
from aio_common.metrics import install as install_metrics
from aio_common.metrics import separate_server
from gateway import docs
from gateway.clip_models import SUGGESTED_NAME, ClipNames
from gateway.immich.db import NOT_UP_ERRORS
from gateway.metrics import METRICS
from gateway.parts import Parts, parts_of
from gateway.predict import PATH as PREDICT_PATH
from gateway.predict import PredictEndpoint
from gateway.reprocess import routes as reprocess_routes
from gateway.search import routes as search_routes
from gateway.settings import Settings

log = logging.getLogger(__name__)

# What the loops meet while Immich or its database is not up yet, or down: a WARNING, no traceback.
OUTAGES = (*NOT_UP_ERRORS, Unavailable, BackendTimedOut)
# For the loops that call Immich's API, Immich answering 5xx too (as it does while its own
# database restarts).
IMMICH_OUTAGES = (*OUTAGES, BackendFailed)
MESSAGE: openapi.Schema = {"type": "object", "required": ["message"], "properties": {"message": {"type": "string"}}}
HEALTH: openapi.Schema = {
    "type": "object",
    "required": ["backends", "ocrSearch"],
    "properties": {"backends": {"type": "object"}, "ocrSearch": {}},
    "description": "Up or down for anyone; the details (URLs, errors) for local callers or with the api-key",
}


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.mt_photos_api_key == DEFAULT_KEY:
            log.warning("MT_PHOTOS_API_KEY is the well-known default: set the same new key here and in the AI service")
        parts = app.state.parts = Parts(settings)
        ai, keeper = parts.ai, parts.index_keeper

        async def watch_backends() -> None:
            await asyncio.gather(ai.check_all(), parts.stock_ml.check_all())
            if any(replica.healthy for replica in ai.replicas):  # the served models, as they are now
                await parts.ai_info.refresh()

        async def heal() -> None:
            # Replicas count as healthy until checked: wait for the first round of checks.
            checked = backends_loop.last_success is not None
            await parts.healer.step(checked and any(replica.healthy for replica in ai.replicas))

        async def watch_database() -> None:
            generation = parts.db.generation
            await parts.db.ensure()
            if parts.db.generation != generation:
                index_loop.wake()  # a new connection: prepare and catch up now

        loops = parts.loops
        backends_loop = loops.add("backends", watch_backends, settings.health_interval)
        loops.add("database", watch_database, settings.health_interval, max_backoff=60, expected=OUTAGES)
        loops.add("ml-urls", parts.ml_urls.step, settings.health_interval, max_backoff=120, expected=OUTAGES)
        index_loop = loops.add("ocr-index", keeper.sync_step, settings.sync_interval, max_backoff=120, expected=OUTAGES)
        if parts.reprocessor.admin is not None:
            loops.add(
                "reprocess",
                parts.reprocessor.loop_step,
                settings.sync_interval,
                max_backoff=300,
                expected=IMMICH_OUTAGES,
            )
            loops.add("heal", heal, settings.health_interval, max_backoff=60, expected=IMMICH_OUTAGES)
        else:
            log.info("IMMICH_ADMIN_API_KEY is not set: re-processing and self-healing after outages are off")
        loops.start()
        with contextlib.ExitStack() as exit_stack:
            if settings.metrics and settings.metrics_port:
                exit_stack.enter_context(separate_server(METRICS, settings.host, settings.metrics_port))
            yield
        await parts.close()

    app = FastAPI(title="immich-all-in-one gateway", lifespan=lifespan)
    app.add_middleware(PredictEndpoint)
    app.add_middleware(BodyLimitMiddleware, limit=settings.max_request_bytes)
    install_error_handlers(app)
    if settings.metrics:  # the outermost middleware: it sees /predict and every 413
        install_metrics(app, METRICS, separate_port=bool(settings.metrics_port), extra_routes=[PREDICT_PATH])

    @app.get(
        "/",
        summary="What this service is",
        responses=openapi.ok(MESSAGE, {"message": "Immich ML gateway"}),
    )
    async def root() -> dict[str, str]:
        return {"message": "Immich ML gateway: OCR and CLIP to mt-photos-ai, faces to the stock Immich ML server"}

    @app.get(
        "/ping",
        response_class=PlainTextResponse,
        summary="Liveness, as Immich checks its ML server",
        responses=openapi.ok({"type": "string", "const": "pong"}, "pong", media_type="text/plain"),
    )
    async def ping() -> str:
        return "pong"

    @app.get(
        "/health",
        summary="Backends, the served CLIP model, the OCR index and the Immich release found",
        responses=openapi.ok(HEALTH),
    )
    async def health(request: Request) -> dict[str, Any]:
        """Up or down for anyone; the details (URLs, database, errors) for local callers or with the key."""
        parts = parts_of(request)
        backends = (parts.ai, parts.stock_ml)
        up = {
            "backends": {b.name: b.state()["healthy"] for b in backends},
            "ocrSearch": parts.index_keeper.ready,
        }
        if not _may_see_details(request, settings):
            return up
        info = parts.ai_info
        clip: dict[str, Any] = {
            "model": info.clip.model,
            "dimension": info.clip.dimension,
            "immichModelName": SUGGESTED_NAME.get(info.clip.model or ""),
            "fittingImmichModelNames": info.fitting_names(),
        }
        if parts.clip_guard.refusal:
            clip["refused"] = parts.clip_guard.refusal
        facts = parts.db.facts
        return {
            "backends": {b.name: b.state() for b in backends},
            "clip": clip,
            "ocr": {
                "maxDetectionSide": info.max_detection_side,
                **info.ocr_model,
                "note": "Immich's OCR maxResolution scales the short side; the AI service caps the long side "
                "of the detector's input at maxDetectionSide pixels.",
            },
            "ocrSearch": parts.index_keeper.state(),
            "immich": facts.state() if facts else None,
            "immichMlUrls": parts.ml_urls.state(),
            "selfHealing": parts.healer.state(),
            "loops": parts.loops.state(),
        }

    app.include_router(search_routes.router)
    app.include_router(reprocess_routes.router)

    def predict_path() -> dict[str, Any]:
        parts: Parts | None = getattr(app.state, "parts", None)
        names = parts.ai_info.fitting_names() if parts else []
        return {PREDICT_PATH: docs.predict_path(names or sorted(ClipNames(settings.clip_extra_models).dimensions))}

    schemes = {openapi.API_KEY: openapi.API_KEY_SCHEME, **docs.IMMICH_SCHEMES}
    openapi.install(app, version=_version(), schemes=schemes, components=docs.SEARCH_PARTS, extra_paths=predict_path)
    return app


def _version() -> str:
    try:
        return importlib.metadata.version("immich-all-in-one")
    except importlib.metadata.PackageNotFoundError:
        return "0"


def _may_see_details(request: Request, settings: Settings) -> bool:
    if keys_equal(request.headers.get("api-key"), settings.mt_photos_api_key):
        return True
    host = request.client.host if request.client else ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
