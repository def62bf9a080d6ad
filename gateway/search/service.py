"""The search's moving parts: the database connection, the index and its sync loop, Immich's API.

The database is optional for the rest of the gateway: without it /predict still works, plain
searches are still forwarded and `ocr:` searches answer 503 naming the problem, until the
database is reachable again and the index catches up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import asyncpg

from aio_common.http import ApiError
from gateway.search.immich_api import ImmichApi
from gateway.search.index import OcrIndex
from gateway.search.tokenize import JIEBA, warm_up_jieba
from gateway.settings import Settings

log = logging.getLogger(__name__)

DATABASE_ERRORS = (OSError, asyncio.TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)


class SearchService:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.immich = ImmichApi(
            settings.immich_server_url,
            settings.connect_timeout,
            settings.read_timeout,
            settings.asset_fetch_concurrency,
        )
        self.index: OcrIndex | None = None
        self.error = "the database has not been reached yet"
        self._connecting = asyncio.Lock()

    async def connect(self) -> None:
        async with self._connecting:
            if self.index is None:
                await self._connect()

    async def _connect(self) -> None:
        s = self.settings
        try:
            pool = await asyncpg.create_pool(
                host=s.db_hostname,
                port=s.db_port,
                user=s.db_username,
                password=s.db_password,
                database=s.db_database_name,
                min_size=1,
                max_size=10,
                timeout=s.connect_timeout,
            )
        except DATABASE_ERRORS as exc:
            self.error = f"database {s.db_hostname}:{s.db_port}/{s.db_database_name} unreachable: {exc}"
            log.warning("OCR index unavailable", extra={"error": self.error})
            return
        index = OcrIndex(pool, s.sync_batch_size)
        try:
            await index.migrate()
        except DATABASE_ERRORS as exc:
            self.error = f"the OCR index could not be set up: {exc}"
            log.warning("OCR index unavailable", extra={"error": self.error})
            await pool.close()
            return
        self.index = index

    @contextlib.asynccontextmanager
    async def database(self) -> AsyncIterator[OcrIndex]:
        """The index (connecting first if the database was down), with database failures turned
        into a 503 that names them."""
        if self.index is None:
            await self.connect()
        index = self.index
        if index is None:
            raise ApiError(503, f"ocr: search is unavailable: {self.error}")
        try:
            yield index
        except DATABASE_ERRORS as exc:
            raise ApiError(503, f"ocr: search is unavailable: database error: {exc}") from None

    async def sync_forever(self) -> None:
        await self.connect()
        if self.index is not None and self.index.tokenizer == JIEBA:
            await asyncio.to_thread(warm_up_jieba)  # its dictionary loads in about a second
        while True:
            if self.index is None:
                await self.connect()
            if self.index is not None:
                try:
                    await self.index.sync()
                except DATABASE_ERRORS as exc:
                    log.warning("OCR index sync failed; retrying", extra={"error": str(exc)})
            await asyncio.sleep(self.settings.sync_interval)

    async def close(self) -> None:
        await self.immich.close()
        if self.index is not None:
            await self.index.pool.close()
