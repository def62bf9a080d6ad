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

from aio_common import openapi as o
from aio_common.background import Loops
from aio_common.errors import BackendFailed, BackendTimedOut, Unavailable
from aio_common.http import DEFAULT_KEY, BodyLimitMiddleware, install_error_handlers, keys_equal
from aio_common.metrics import install as install_metrics
from aio_common.metrics import separate_server
from gateway import docs
from gateway.backends import Backend
from gateway.clip_models import SUGGESTED_NAME, ClipNames
from gateway.heal import Healer
from gateway.immich.db import NOT_UP_ERRORS
from gateway.metrics import METRICS
from gateway.predict import PATH as PREDICT_PATH
from gateway.predict import PredictEndpoint
from gateway.reprocess import routes as reprocess_routes
from gateway.routing import Router
from gateway.search import routes as search_routes
from gateway.search.clip_query import QueryVectors
from gateway.services import Services
from gateway.settings import Settings

log = logging.getLogger(__name__)

# What the loops meet while Immich or its database is not up yet, or down: a WARNING, no traceback.
OUTAGES = (*NOT_UP_ERRORS, Unavailable, BackendTimedOut)
# ... and, for the loops that call Immich's API, Immich answering 5xx (as it does while its own
# database restarts).
IMMICH_OUTAGES = (*OUTAGES, BackendFailed)
MESSAGE: o.Schema = {"type": "object", "required": ["message"], "properties": {"message": {"type": "string"}}}
HEALTH: o.Schema = {
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
        timeouts = {"connect_timeout": settings.connect_timeout, "read_timeout": settings.read_timeout}
        ai = Backend.create(
            "mt-photos-ai", settings.ai_urls, headers={"api-key": settings.mt_photos_api_key}, **timeouts
        )
        immich = Backend.create("immich-ml", settings.immich_urls, headers={}, **timeouts)
        app.state.router = router = Router(settings, ai, immich)
        services = Services(settings)
        app.state.services = services
        app.state.search = services.search
        app.state.query_vectors = QueryVectors(router, services.immich)
        app.state.reprocessor = services.reprocessor
        app.state.healer = healer = Healer(services.immich, services.reprocessor.admin)
        router.on_missing_results = healer.note_missing

        async def watch_backends() -> None:
            await asyncio.gather(ai.check_all(), immich.check_all())
            if any(replica.healthy for replica in ai.replicas):  # the served models, as they are now
                await router.refresh_clip_info()

        async def heal() -> None:
            # Replicas count as healthy until checked: wait for the first round of checks.
            checked = backends_loop.last_success is not None
            await healer.step(checked and any(replica.healthy for replica in ai.replicas))

        async def watch_database() -> None:
            generation = services.db.generation
            await services.db.ensure()
            if services.db.generation != generation:
                index_loop.wake()  # a new connection: prepare and catch up now

        loops = app.state.loops = Loops()
        backends_loop = loops.add("backends", watch_backends, settings.health_interval)
        loops.add("database", watch_database, settings.health_interval, max_backoff=60, expected=OUTAGES)
        loops.add("ml-urls", services.ml_urls.step, settings.health_interval, max_backoff=120, expected=OUTAGES)
        index_loop = loops.add(
            "ocr-index", services.search.sync_step, settings.sync_interval, max_backoff=120, expected=OUTAGES
        )
        if services.reprocessor.admin is not None:
            loops.add(
                "reprocess",
                services.reprocessor.loop_step,
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
        await loops.stop()
        await ai.close()
        await immich.close()
        await services.close()

    app = FastAPI(title="immich-all-in-one gateway", lifespan=lifespan)
    app.add_middleware(PredictEndpoint)
    app.add_middleware(BodyLimitMiddleware, limit=settings.max_request_bytes)
    install_error_handlers(app)
    if settings.metrics:  # the outermost middleware: it sees /predict and every 413
        install_metrics(app, METRICS, separate_port=bool(settings.metrics_port), extra_routes=[PREDICT_PATH])

    @app.get(
        "/",
        summary="What this service is",
        responses=o.ok(MESSAGE, {"message": "Immich ML gateway"}),
    )
    async def root() -> dict[str, str]:
        return {"message": "Immich ML gateway: OCR and CLIP to mt-photos-ai, faces to the stock Immich ML server"}

    @app.get(
        "/ping",
        response_class=PlainTextResponse,
        summary="Liveness, as Immich checks its ML server",
        responses=o.ok({"type": "string", "const": "pong"}, "pong", media_type="text/plain"),
    )
    async def ping() -> str:
        return "pong"

    @app.get(
        "/health",
        summary="Backends, the served CLIP model, the OCR index and the Immich release found",
        responses=o.ok(HEALTH),
    )
    async def health(request: Request) -> dict[str, Any]:
        """Up or down for anyone; the details (URLs, database, errors) for local callers or with the key."""
        router: Router = request.app.state.router
        services: Services = request.app.state.services
        up = {
            "backends": {b.name: b.state()["healthy"] for b in (router.ai, router.immich)},
            "ocrSearch": services.search.ready,
        }
        if not _may_see_details(request, settings):
            return up
        clip: dict[str, Any] = {
            "model": router.clip.model,
            "dimension": router.clip.dimension,
            "immichModelName": SUGGESTED_NAME.get(router.clip.model or ""),
            "fittingImmichModelNames": router.fitting_names(),
        }
        if router.clip_refusal:
            clip["refused"] = router.clip_refusal
        facts = services.db.facts
        return {
            "backends": {b.name: b.state() for b in (router.ai, router.immich)},
            "clip": clip,
            "ocr": {
                "maxDetectionSide": router.max_detection_side,
                **router.ocr_model,
                "note": "Immich's OCR maxResolution scales the short side; the AI service caps the long side "
                "of the detector's input at maxDetectionSide pixels.",
            },
            "ocrSearch": services.search.state(),
            "immich": facts.state() if facts else None,
            "immichMlUrls": services.ml_urls.state(),
            "selfHealing": request.app.state.healer.state(),
            "loops": request.app.state.loops.state(),
        }

    app.include_router(search_routes.router)
    app.include_router(reprocess_routes.router)

    def predict_path() -> dict[str, Any]:
        router: Router | None = getattr(app.state, "router", None)
        names = router.fitting_names() if router else []
        return {PREDICT_PATH: docs.predict_path(names or sorted(ClipNames(settings.clip_extra_models).dimensions))}

    schemes = {o.API_KEY: o.API_KEY_SCHEME, **docs.IMMICH_SCHEMES}
    o.install(app, version=_version(), schemes=schemes, components=docs.SEARCH_PARTS, extra_paths=predict_path)
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
