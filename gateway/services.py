"""The gateway's parts built from its settings, shared by the HTTP app and the command line."""

from __future__ import annotations

from gateway.immich.api import ImmichApi
from gateway.immich.db import Database
from gateway.immich.ml_urls import MlUrlCheck
from gateway.reprocess.service import Reprocessor
from gateway.search.service import SearchService
from gateway.settings import Settings


class Services:
    def __init__(self, settings: Settings) -> None:
        s = settings
        self.immich = ImmichApi(s.immich_server_url, s.connect_timeout, s.read_timeout, s.asset_fetch_concurrency)
        self.db = Database(
            **s.db_connection(),
            connect_timeout=s.connect_timeout,
            query_timeout=s.db_query_timeout,
            server_version=self.immich.server_version,
        )
        self.search = SearchService(s, self.db, self.immich)
        self.ml_urls = MlUrlCheck(self.db, s.connect_timeout)
        self.reprocessor = Reprocessor(
            self.db,
            self.immich,
            admin_key=s.immich_admin_api_key,
            tag=s.reprocess_tag,
            claim_for=s.read_timeout + 60,
        )

    async def close(self) -> None:
        await self.search.index.close()
        await self.ml_urls.close()
        await self.immich.close()
        await self.db.close()
