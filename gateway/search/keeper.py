"""The keeper of the OCR index: its loop's step (prepare after each connection, sync, reconcile)
and whether the index can answer a search now.

The database is optional for the rest of the gateway: without it /predict still works, plain
searches are answered by Immich's CLIP ranking alone and `ocr:` searches answer 503 naming the
problem at once, until the database loop has it back and the index has caught up.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import asyncpg

from aio_common.errors import Unavailable
from gateway import metrics
from gateway.immich.db import Database
from gateway.immich.facts import ImmichFacts
from gateway.search.index import OcrIndex
from gateway.search.passes import MAX_LANES
from gateway.search.zhparser import Zhparser
from gateway.settings import Settings

log = logging.getLogger(__name__)

OCR_SEARCH = "ocr: search"


class IndexKeeper:
    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings = settings
        self.db = db
        zhparser = Zhparser(
            {**settings.db_connection(), "database": settings.zhparser_database},
            settings.connect_timeout,
            settings.db_query_timeout,
            size=MAX_LANES + 2,  # a long pass's lanes, and searches beside it
        )
        self.index = OcrIndex(settings.sync_batch_size, settings.ocr_tokenizer, settings.index_workers, zhparser)
        self._prepared_for = 0  # the database connection (generation) the index was prepared on
        self._synced_for = 0  # the one its last full pass completed on
        self._reconciled_at: float | None = None

    @property
    def ready(self) -> bool:
        return self.db.up and self._prepared_for == self.db.generation

    async def sync_step(self) -> None:
        """The index loop's step: prepare after each (re)connection, sync, reconcile when due.
        Nothing to do while the database is down (its own loop reports why)."""
        if not self.db.up:
            return
        started = time.perf_counter()
        try:
            async with self.db.use("OCR index sync") as (pool, facts):
                if self._prepared_for != self.db.generation:
                    await self.index.passes.prepare(pool)
                    self._prepared_for = self.db.generation
                await self.index.passes.sync(pool, facts)
                self._synced_for = self.db.generation
                now = time.monotonic()
                if self._reconciled_at is None or now - self._reconciled_at >= self.settings.index_reconcile_interval:
                    await self.index.passes.reconcile(pool, facts)
                    self._reconciled_at = now
                metrics.INDEX_LAG.set(await self.index.passes.lag_seconds(pool, facts))
                metrics.INDEX_ROWS.set(await self.index.passes.rows(pool))
        except Exception:
            metrics.SYNC_ERRORS.inc()
            raise
        metrics.SYNC_SECONDS.observe(time.perf_counter() - started)
        metrics.INDEX_SYNCED.set_to_current_time()

    @contextlib.asynccontextmanager
    async def searchable(self) -> AsyncIterator[tuple[asyncpg.Pool, ImmichFacts]]:
        """The database for a search, or at once a 503 that says why there is none."""
        async with self.db.use(OCR_SEARCH) as (pool, facts):
            if not self.ready:
                raise Unavailable(f"{OCR_SEARCH} is unavailable: the OCR index is being prepared")
            yield pool, facts

    def state(self) -> dict[str, Any]:
        return {
            "available": self.ready,
            # False while the first pass after a (re)connection runs: results may be partial.
            "caughtUp": self.ready and self._synced_for == self.db.generation,
            "tokenizer": self.index.words.tokenizer if self.ready else None,
            # Immich's `ocr` search field answered from the index (OCR_FIELD_SEARCH).
            "ocrField": self.settings.ocr_field_search,
            "error": None if self.ready else (self.db.error if not self.db.up else "the OCR index is being prepared"),
        }
