"""The passes that keep the word index `aio.ocr_index` equal to each asset's visible OCR text in
Immich: one row per asset with visible text (the lines in reading order, GIN-indexed tsvectors
of their folded words and of their grams, owner and taken time).

A pass reads each feed (feeds.py) after its watermark; each candidate asset is re-read and
written only if its visible text or taken time differs from the row, so passes are idempotent,
and a watermark moves with each committed batch, so a crash mid-pass is repaired by the next.
`reconcile` compares every asset with the index, for what no feed shows (a forced OCR run
truncates the table; a date edited in Immich), every INDEX_RECONCILE_INTERVAL. Deleted assets
leave by the foreign key.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from typing import Any

import asyncpg

from aio_common.progress import Progress
from gateway import aio_schema
from gateway.immich import sql as immich_sql
from gateway.immich.facts import ImmichFacts
from gateway.pg import Connection
from gateway.search import sql
from gateway.search.feeds import OCR_AT, Feed, feeds
from gateway.search.lanes import Lanes
from gateway.search.tokenize import FOLDING, JIEBA, LITERAL, SPLITTING
from gateway.search.words import LONG_QUERY_TIMEOUT, Words
from gateway.search.zhparser import remove_from

log = logging.getLogger(__name__)

SYNC_LOCK = aio_schema.MIGRATION_LOCK + 1
# Connections a long pass applies batches on at once (at most INDEX_WORKERS): the gateway's pool
# of 10 keeps room for searches.
MAX_LANES = 4


class IndexPasses:
    def __init__(self, batch_size: int, workers: int, words: Words) -> None:
        self.batch_size = batch_size
        self.workers = workers
        self.words = words

    async def prepare(self, pool: asyncpg.Pool) -> None:
        """Choose the tokenizer; rebuild the index when it or the folding changed."""
        async with pool.acquire() as conn:
            tokenizer = await self.words.choose(conn)
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", aio_schema.MIGRATION_LOCK)
            moved = await remove_from(conn)
            if moved:
                log.warning(
                    "zhparser taken out of Immich's database, so that Immich's backups restore without it",
                    extra={"done": moved, "now_in": self.words.zhparser.database},
                )
            wanted = {"tokenizer": tokenizer, "folding": FOLDING, "splitting": SPLITTING[tokenizer], "literal": LITERAL}
            built_with = {key: await aio_schema.get_meta(conn, key) for key in wanted}
            if built_with != wanted:
                if built_with["tokenizer"]:
                    log.warning(
                        "the OCR index was built another way: rebuilt", extra={"was": built_with, "now": wanted}
                    )
                await conn.execute(sql.REBUILD)
                for key, value in wanted.items():
                    await aio_schema.set_meta(conn, key, value)
        await self.words.use(tokenizer)
        log.info("OCR index ready", extra={"tokenizer": tokenizer, "folding": FOLDING})

    async def sync(self, pool: asyncpg.Pool, facts: ImmichFacts) -> int:
        """One pass over every change feed (waiting for another gateway's pass); rows written."""
        async with self._locked(pool, wait=True) as conn:
            assert conn is not None
            try:
                written = sum(
                    [await self._read(pool, conn, facts, feed, self.batch_size, bounded=False) for feed in feeds(facts)]
                )
            finally:
                self.words.idle()
            if written:
                await conn.execute(sql.CLEAN_PENDING, timeout=LONG_QUERY_TIMEOUT)
            return written

    async def catch_up(self, pool: asyncpg.Pool, facts: ImmichFacts, limit: int) -> int:
        """A bounded pass before a search, so a photo Immich has just read is found at once.
        One indexed query first asks whether any feed moved past its watermark; only then is
        the lock taken and the feeds read (changes that commit late, inside the re-read minute,
        are left to the background pass). Skipped when a sync holds the lock (a search never
        waits for one), and on 2.x, whose feed is a scan of a table Immich does not index:
        there searches see what the last background pass found (at most SYNC_INTERVAL old)."""
        active = feeds(facts)
        if OCR_AT in active:
            return 0
        moved = " OR ".join(
            f"({feed.first_after.format(mark=feed.stored_mark(f'${n}'))}) IS NOT NULL"
            for n, feed in enumerate(active, 1)
        )
        if not await pool.fetchval(f"SELECT {moved}", *[feed.key for feed in active]):
            return 0
        async with self._locked(pool, wait=False) as conn:
            if conn is None:
                return 0
            return sum([await self._read(pool, conn, facts, feed, limit, bounded=True) for feed in active])

    async def lag_seconds(self, pool: asyncpg.Pool, facts: ImmichFacts) -> float:
        """How long the oldest change the index has not read has waited (0 when caught up)."""
        oldest: datetime | None = None
        async with pool.acquire() as conn:
            for feed in feeds(facts):
                first = await conn.fetchval(feed.first_after.format(mark="$1"), await feed.mark(conn))
                if first is not None:
                    moment = feed.time_of(first)
                    oldest = moment if oldest is None else min(oldest, moment)
        return 0.0 if oldest is None else max(0.0, (datetime.now(timezone.utc) - oldest).total_seconds())

    @staticmethod
    async def rows(pool: asyncpg.Pool) -> int:
        """Rows in the index, by PostgreSQL's statistics (a count of 1M rows would cost a scan)."""
        return int(await pool.fetchval(sql.ROW_ESTIMATE) or 0)

    async def reconcile(self, pool: asyncpg.Pool, facts: ImmichFacts) -> int:
        """Compare every asset's visible text with the index and repair the differences."""
        async with self._locked(pool, wait=True) as conn:
            assert conn is not None
            differing = [
                r["asset_id"]
                for r in await conn.fetch(immich_sql.differing_assets(facts.columns), timeout=LONG_QUERY_TIMEOUT)
            ]
            written = 0
            spread = len(differing) > self.batch_size
            for start in range(0, len(differing), self.batch_size):
                async with conn.transaction():
                    written += await self._apply(conn, facts, differing[start : start + self.batch_size], spread=spread)
            if written:
                await conn.execute(sql.CLEAN_PENDING, timeout=LONG_QUERY_TIMEOUT)
                log.info("OCR index reconciled", extra={"written": written})
            return written

    @contextlib.asynccontextmanager
    async def _locked(self, pool: asyncpg.Pool, *, wait: bool) -> AsyncIterator[Connection | None]:
        """A connection holding the sync lock (one writer across gateways), or None when `wait`
        is false and another holds it. Taken outside the batch transactions, so each batch's
        snapshot sees the previous batch's rows."""
        async with pool.acquire() as conn:
            if wait:
                await conn.execute("SELECT pg_advisory_lock($1)", SYNC_LOCK, timeout=LONG_QUERY_TIMEOUT)
            elif not await conn.fetchval("SELECT pg_try_advisory_lock($1)", SYNC_LOCK):
                yield None
                return
            try:
                yield conn
            finally:
                await conn.execute("SELECT pg_advisory_unlock($1)", SYNC_LOCK)

    async def _read(
        self,
        pool: asyncpg.Pool,
        conn: Connection,
        facts: ImmichFacts,
        feed: Feed[Any],
        limit: int,
        *,
        bounded: bool,
    ) -> int:
        """Read a feed from LAG before its watermark in batches of `limit` (one when `bounded`).
        The first batch is applied and moves the watermark in one transaction; when it is full
        and not `bounded`, a long pass follows on several connections. Rows written."""
        watermark = await feed.watermark(conn)
        limit *= feed.rows_per_asset
        async with conn.transaction():
            changes = await conn.fetch(
                feed.statement, *feed.args(feed.start(watermark)), limit, timeout=LONG_QUERY_TIMEOUT
            )
            if not changes:
                return 0
            written = await self._apply(conn, facts, [row["asset_id"] for row in changes])
            position = feed.after(changes[-1])
            watermark = await feed.advance(conn, watermark, position)
        if bounded or len(changes) < limit:
            if written:
                log.info("OCR index sync", extra={"feed": feed.key, "written": written})
            return written
        left = await conn.fetchval(feed.count_after, *feed.args(position), timeout=LONG_QUERY_TIMEOUT)
        progress = Progress(f"OCR index sync ({feed.key})", len(changes) + left, "changes", log=log)
        progress.advance(len(changes))
        written += await self._read_long(pool, conn, facts, feed, limit, position, watermark, progress)
        progress.finish()
        return written

    async def _read_long(
        self,
        pool: asyncpg.Pool,
        conn: Connection,
        facts: ImmichFacts,
        feed: Feed[Any],
        limit: int,
        position: Any,
        watermark: Any,
        progress: Progress,
    ) -> int:
        """The rest of a long pass (a backfill): `conn` reads the feed ahead, INDEX_WORKERS lanes
        apply the batches (see lanes.py), and the watermark moves past each batch once it and
        every batch before it are committed, so a crash repeats at most the batches in flight."""
        width = max(1, min(self.workers, MAX_LANES))
        written = 0
        in_flight: collections.deque[tuple[Any, int, asyncio.Future[list[int]]]] = collections.deque()
        async with contextlib.AsyncExitStack() as stack:
            conns = [await stack.enter_async_context(pool.acquire()) for _ in range(width)]
            lanes = Lanes(conns, lambda lane, ids: self._apply(lane, facts, ids, spread=True))
            stack.push_async_callback(lanes.close)
            more = True
            while more or in_flight:
                if more:
                    changes = await conn.fetch(feed.statement, *feed.args(position), limit, timeout=LONG_QUERY_TIMEOUT)
                    more = len(changes) == limit
                    if changes:
                        position = feed.after(changes[-1])
                        in_flight.append((position, len(changes), lanes.submit([r["asset_id"] for r in changes])))
                while in_flight and (not more or len(in_flight) > 2 * width or in_flight[0][2].done()):
                    done_to, count, batch = in_flight.popleft()
                    written += sum(await batch)
                    watermark = await feed.advance(conn, watermark, done_to)
                    progress.advance(count)
        return written

    async def _apply(
        self, conn: Connection, facts: ImmichFacts, candidates: list[uuid.UUID], *, spread: bool = False
    ) -> int:
        """Make the index rows of `candidates` equal their current visible text and taken time
        (`spread`: part of a long pass, whose jieba splitting uses every worker)."""
        ids = list(dict.fromkeys(candidates))
        current = {row["asset_id"]: row for row in await conn.fetch(immich_sql.current_text(facts.columns), ids)}
        indexed = {row["asset_id"]: (row["text"], row["taken"]) for row in await conn.fetch(sql.INDEXED, ids)}
        changed = [row for asset_id, row in current.items() if indexed.get(asset_id) != (row["text"], row["taken"])]
        gone = [asset_id for asset_id in indexed if asset_id not in current]
        if changed:
            texts = [row["text"] for row in changed]
            documents, literal = await self.words.documents(texts, spread)
            await conn.execute(
                sql.UPSERT_WORDS[self.words.tokenizer or JIEBA],
                [row["asset_id"] for row in changed],
                [row["owner_id"] for row in changed],
                [row["taken"] for row in changed],
                texts,
                documents,
                literal,
            )
        if gone:
            await conn.execute(sql.DELETE_ROWS, gone)
        return len(changed) + len(gone)
