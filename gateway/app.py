"""The gateway application: Immich's ML endpoint (/ping, /health; /predict in gateway.predict) and its wiring."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse

from aio_common.http import BodyLimitMiddleware, install_error_handler
from gateway import reprocess
from gateway.backends import Backend
from gateway.clip_models import SUGGESTED_NAME
from gateway.predict import PredictEndpoint
from gateway.reprocess import Reprocessor
from gateway.routing import Router
from gateway.search import routes as search_routes
from gateway.search.service import SearchService
from gateway.settings import Settings

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        timeouts = {"connect_timeout": settings.connect_timeout, "read_timeout": settings.read_timeout}
        ai = Backend.create(
            "mt-photos-ai", settings.ai_urls, headers={"api-key": settings.mt_photos_api_key}, **timeouts
        )
        immich = Backend.create("immich-ml", settings.immich_urls, headers={}, **timeouts)
        router = Router(settings, ai, immich)
        app.state.router = router
        app.state.search = search = SearchService(settings)
        app.state.reprocessor = reprocessor = Reprocessor(search)
        tasks = [
            asyncio.create_task(_watch_health(router, settings.health_interval)),
            asyncio.create_task(search.sync_forever()),
            asyncio.create_task(reprocessor.run_forever()),
        ]
        yield
        for task in tasks:
            task.cancel()
        await asyncio.gather(ai.close(), immich.close(), search.close())

    app = FastAPI(title="immich-all-in-one gateway", lifespan=lifespan)
    app.add_middleware(PredictEndpoint)
    app.add_middleware(BodyLimitMiddleware, limit=settings.max_request_bytes)  # the outer one
    install_error_handler(app)

    @app.get("/")
    async def root() -> dict[str, str]:
        return {"message": "Immich ML gateway: OCR and CLIP to mt-photos-ai, faces to the stock Immich ML server"}

    @app.get("/ping", response_class=PlainTextResponse)
    async def ping() -> str:
        return "pong"

    @app.get("/health")
    async def health(request: Request) -> dict[str, Any]:
        router: Router = request.app.state.router
        clip: dict[str, Any] = {
            "model": router.clip.model,
            "dimension": router.clip.dimension,
            "immichModelName": SUGGESTED_NAME.get(router.clip.model or ""),
            "fittingImmichModelNames": router.clip.fitting_names(),
        }
        if router.refused_clip_name:
            clip["warning"] = f"Immich asked for {router.refused_clip_name}, whose dimension does not fit"
        search: SearchService = request.app.state.search
        index = search.index
        return {
            "backends": {b.name: b.state() for b in (router.ai, router.immich)},
            "clip": clip,
            "ocrSearch": {
                "available": index is not None,
                "tokenizer": index.tokenizer if index else None,
                "error": None if index else search.error,
            },
        }

    app.include_router(search_routes.router)
    app.include_router(reprocess.router)
    return app


async def _watch_health(router: Router, interval: float) -> None:
    while True:
        try:
            await asyncio.gather(router.ai.check_all(), router.immich.check_all())
            if router.ai.state()["healthy"]:
                await router.refresh_clip_info()
        except Exception:  # the loop must outlive any single failure
            log.exception("health check failed")
        await asyncio.sleep(interval)
