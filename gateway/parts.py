"""The gateway's parts, built from its settings: one typed object that the HTTP app's routes
(through `parts_of`), its background loops and the command line all reach them through. Built
inside a running event loop (the backends' HTTP sessions need one)."""

from __future__ import annotations

from typing import cast

from fastapi import Request

from aio_common.background import Loops
from gateway import aio_schema
from gateway.ai_info import AiServiceInfo
from gateway.backends import Backend
from gateway.clip_guard import ClipGuard
from gateway.clip_models import ClipNames
from gateway.heal import Healer
from gateway.immich.api import ImmichClient
from gateway.immich.db import Database
from gateway.immich.ml_urls import MlUrlCheck
from gateway.reprocess.service import Reprocessor
from gateway.search.core import SearchCore
from gateway.search.keeper import IndexKeeper
from gateway.search.query_vectors import QueryVectors
from gateway.settings import Settings
from gateway.task_router import TaskRouter


class Parts:
    def __init__(self, settings: Settings) -> None:
        s = self.settings = settings
        timeouts = {"connect_timeout": s.connect_timeout, "read_timeout": s.read_timeout}
        # The two machine-learning servers /predict routes to.
        self.ai = Backend.create("mt-photos-ai", s.ai_urls, headers={"api-key": s.mt_photos_api_key}, **timeouts)
        self.stock_ml = Backend.create("immich-ml", s.stock_ml_urls, headers={}, **timeouts)
        # The Immich server, and its database.
        self.immich_server = ImmichClient(
            s.immich_server_url, s.connect_timeout, s.read_timeout, s.asset_fetch_concurrency
        )
        self.db = Database(
            **s.db_connection(),
            connect_timeout=s.connect_timeout,
            query_timeout=s.db_query_timeout,
            server_version=self.immich_server.server_version,
            set_up=aio_schema.migrate,
        )
        self.reprocessor = Reprocessor(
            self.db,
            self.immich_server,
            admin_key=s.immich_admin_api_key,
            tag=s.reprocess_tag,
            claim_for=s.read_timeout + 60,
        )
        self.healer = Healer(self.immich_server, self.reprocessor.admin)
        self.ai_info = AiServiceInfo(self.ai, ClipNames(s.clip_extra_models))
        self.clip_guard = ClipGuard(self.ai_info, self.healer)
        self.tasks = TaskRouter(s, self.ai, self.stock_ml, self.clip_guard, self.healer)
        self.index_keeper = IndexKeeper(s, self.db)
        self.search = SearchCore(s, self.index_keeper, self.immich_server, QueryVectors(self.tasks, self.immich_server))
        self.ml_urls = MlUrlCheck(self.db, s.connect_timeout)
        self.loops = Loops()

    async def close(self) -> None:
        await self.loops.stop()
        await self.ai.close()
        await self.stock_ml.close()
        await self.index_keeper.index.close()
        await self.ml_urls.close()
        await self.immich_server.close()
        await self.db.close()


def parts_of(request: Request) -> Parts:
    return cast(Parts, request.app.state.parts)
