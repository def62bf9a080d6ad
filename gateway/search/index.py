"""The OCR word index: our table `aio.ocr_index` mirrors each asset's visible OCR text in Immich.

One row per asset with visible text: the lines in reading order and a GIN-indexed tsvector of
their folded words. Changes are found through change feeds read after a watermark, so a pass
costs what changed, not the library:
- 2.x: `asset_job_status."ocrAt"` (Immich has no index on it: one scan of that narrow table);
- 3.0+: new lines by `asset_ocr."updateId"` (indexed, uuid v7) and deleted lines by
  `asset_ocr_audit` (indexed by time).
- 2.6+ also: edits made in Immich's editor by `asset_edit."updateId"` and removed by
  `asset_edit_audit` (both indexed): the editor's job hides the lines a crop cuts out (and shows
  them again when the edit is removed) without a mark in asset_ocr, a moment after the edit.
Each candidate asset is re-read and written only if its visible text differs from the row, so
passes are idempotent; watermarks move with each committed batch, so a crash mid-sync is
repaired by the next pass. Feeds are re-read from a minute before their watermark: Immich stamps
a change a moment before its transaction commits. `reconcile` compares every asset's text with
the index: it catches what no feed shows (a forced OCR run truncates the table; a date edited in
Immich) and runs every INDEX_RECONCILE_INTERVAL. Deleted assets leave by the
foreign key.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Literal

import asyncpg

from aio_common.progress import Progress
from gateway import aio_schema
from gateway.immich import sql
from gateway.immich.dto import SmartSearch
from gateway.immich.facts import ImmichFacts
from gateway.immich.filters import Params, search_conditions
from gateway.pg import Connection
from gateway.search.jieba_workers import JiebaWorkers
from gateway.search.lanes import Lanes
from gateway.search.tokenize import FOLDING, JIEBA, SPLITTING, ZHPARSER, Tokenizer, fold, tsquery_sql, zhparser_query
from gateway.search.zhparser import Zhparser, ZhparserUnavailable, remove_from

log = logging.getLogger(__name__)

SYNC_LOCK = aio_schema.MIGRATION_LOCK + 1
LAG = timedelta(minutes=1)
NIL = uuid.UUID(int=0)
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
# Connections a long pass applies batches on at once (at most INDEX_WORKERS): the gateway's pool
# of 10 keeps room for searches.
MAX_LANES = 4
# Statements that read or write the whole library run without the per-query timeout.
LONG_QUERY_TIMEOUT = 3600.0

# `words` from each row's document: jieba's words parsed by `simple`, or zhparser's tsvector text.
UPSERT = """
INSERT INTO aio.ocr_index (asset_id, owner_id, taken, text, words)
SELECT u.asset_id, u.owner_id, u.taken, u.text, {words}
FROM unnest($1::uuid[], $2::uuid[], $3::timestamptz[], $4::text[], $5::text[])
  AS u(asset_id, owner_id, taken, text, document)
ON CONFLICT (asset_id) DO UPDATE
SET owner_id = excluded.owner_id, taken = excluded.taken, text = excluded.text, words = excluded.words
"""
UPSERT_WORDS = {
    JIEBA: UPSERT.format(words="to_tsvector('simple', u.document)"),
    ZHPARSER: UPSERT.format(words="u.document::tsvector"),
}
INDEXED = "SELECT asset_id, taken, text FROM aio.ocr_index WHERE asset_id = ANY($1::uuid[])"
DELETE_ROWS = "DELETE FROM aio.ocr_index WHERE asset_id = ANY($1::uuid[])"
ROW_ESTIMATE = "SELECT n_live_tup FROM pg_stat_user_tables WHERE schemaname = 'aio' AND relname = 'ocr_index'"


Position = tuple[datetime, uuid.UUID] | uuid.UUID


@dataclass(frozen=True)
class Feed:
    """One change feed: its statement, its watermark's key in aio.meta, and how it is keyed."""

    key: str
    statement: str
    keyed_by: Literal["time", "uuid"]
    count_after: str  # changes after a position (for progress)
    first_after: str  # the first change after a mark (for the lag)
    # Rows per asset: a feed of OCR lines reads this many rows for a batch of assets.
    rows_per_asset: int = 1

    def decode(self, stored: str | None) -> Position | None:
        if stored is None:
            return None
        if self.keyed_by == "uuid":
            return uuid.UUID(stored)
        moment, tie = stored.split("|")
        return datetime.fromisoformat(moment), uuid.UUID(tie)

    @staticmethod
    def encode(position: Position) -> str:
        if isinstance(position, uuid.UUID):
            return str(position)
        return f"{position[0].isoformat()}|{position[1]}"

    def start(self, watermark: Position | None) -> Position:
        """Where a pass starts reading: LAG before the watermark (or the beginning)."""
        if self.keyed_by == "uuid":
            return NIL if watermark is None else uuid7_floor(uuid7_time(watermark) - LAG)  # type: ignore[arg-type]
        return (EPOCH, NIL) if watermark is None else (watermark[0] - LAG, NIL)  # type: ignore[index]

    def after(self, row: asyncpg.Record) -> Position:
        """The keyset position of a row just read."""
        if self.keyed_by == "uuid":
            return row["mark"]  # type: ignore[no-any-return]
        return row["mark"], row.get("id", row["asset_id"])

    def args(self, position: Position, limit: int) -> list[object]:
        return [position, limit] if isinstance(position, uuid.UUID) else [*position, limit]

    def stored_mark(self, key: str) -> str:
        """SQL for the watermark stored in aio.meta under the placeholder `key`, as `mark_of`
        gives it (the beginning when there is none)."""
        stored = f"(SELECT value FROM aio.meta WHERE key = {key})"
        if self.keyed_by == "uuid":
            return f"coalesce({stored}, '{NIL}')::uuid"
        return f"coalesce(split_part({stored}, '|', 1), '{EPOCH.isoformat()}')::timestamptz"

    def mark_of(self, watermark: Position | None) -> uuid.UUID | datetime:
        """The watermark as `first_after` takes it: a uuid, or a time without its tie-breaker."""
        if self.keyed_by == "uuid":
            return NIL if watermark is None else watermark  # type: ignore[return-value]
        return EPOCH if watermark is None else watermark[0]  # type: ignore[index]

    @staticmethod
    def time_of(mark: uuid.UUID | datetime) -> datetime:
        return uuid7_time(mark) if isinstance(mark, uuid.UUID) else mark


OCR_AT = Feed("feed:ocrAt", sql.CHANGED_BY_OCR_AT, "time", sql.COUNT_AFTER_OCR_AT, sql.FIRST_AFTER_OCR_AT)
UPDATE_ID = Feed(
    "feed:updateId",
    sql.CHANGED_BY_UPDATE_ID,
    "uuid",
    sql.COUNT_AFTER_UPDATE_ID,
    sql.FIRST_AFTER_UPDATE_ID,
    rows_per_asset=4,
)
AUDIT = Feed("feed:audit", sql.CHANGED_BY_AUDIT, "time", sql.COUNT_AFTER_AUDIT, sql.FIRST_AFTER_AUDIT, rows_per_asset=4)
EDIT = Feed("feed:edit", sql.CHANGED_BY_EDIT, "uuid", sql.COUNT_AFTER_EDIT, sql.FIRST_AFTER_EDIT)
EDIT_AUDIT = Feed(
    "feed:editAudit", sql.CHANGED_BY_EDIT_AUDIT, "time", sql.COUNT_AFTER_EDIT_AUDIT, sql.FIRST_AFTER_EDIT_AUDIT
)


def uuid7_time(value: uuid.UUID) -> datetime:
    """The creation time a uuid v7 carries in its first 48 bits (milliseconds since 1970)."""
    return datetime.fromtimestamp((value.int >> 80) / 1000, tz=timezone.utc)


def uuid7_floor(moment: datetime) -> uuid.UUID:
    """The smallest uuid v7 of `moment`: every later uuid v7 sorts after it."""
    return uuid.UUID(int=max(0, int(moment.timestamp() * 1000)) << 80)


def feeds(facts: ImmichFacts) -> list[Feed]:
    columns = facts.columns
    ocr = [UPDATE_ID, AUDIT] if columns.ocr_update_id and columns.ocr_audit else [OCR_AT]
    return ocr + ([EDIT, EDIT_AUDIT] if columns.ocr_is_visible and columns.edit_feeds else [])


class OcrIndex:
    def __init__(
        self, batch_size: int, tokenizer: Literal["auto", "zhparser", "jieba"], workers: int, zhparser: Zhparser
    ) -> None:
        self.batch_size = batch_size
        self.wanted = tokenizer
        self.workers = workers
        self.zhparser = zhparser
        self.tokenizer: Tokenizer | None = None  # chosen by `prepare`
        self._jieba: JiebaWorkers | None = None  # started when jieba is chosen

    async def prepare(self, pool: asyncpg.Pool) -> None:
        """Choose the tokenizer; rebuild the index when it or the folding changed."""
        async with pool.acquire() as conn:
            tokenizer = await self._choose_tokenizer(conn)
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", aio_schema.MIGRATION_LOCK)
            moved = await remove_from(conn)
            if moved:
                log.warning(
                    "zhparser taken out of Immich's database, so that Immich's backups restore without it",
                    extra={"done": moved, "now_in": self.zhparser.database},
                )
            wanted = {"tokenizer": tokenizer, "folding": FOLDING, "splitting": SPLITTING[tokenizer]}
            built_with = {key: await aio_schema.get_meta(conn, key) for key in wanted}
            if built_with != wanted:
                if built_with["tokenizer"]:
                    log.warning(
                        "the OCR index was built another way: rebuilt", extra={"was": built_with, "now": wanted}
                    )
                await conn.execute("TRUNCATE aio.ocr_index; DELETE FROM aio.meta WHERE key LIKE 'feed:%'")
                for key, value in wanted.items():
                    await aio_schema.set_meta(conn, key, value)
        self.tokenizer = tokenizer
        if tokenizer == ZHPARSER:
            self._stop_jieba()
        elif self._jieba is None:
            self._jieba = JiebaWorkers(self.workers)
            await self._jieba.query("")  # the worker loads jieba's dictionary now, not in a search
        log.info("OCR index ready", extra={"tokenizer": tokenizer, "folding": FOLDING})

    async def _choose_tokenizer(self, conn: Connection) -> Tokenizer:
        """zhparser when the server has it and its database can be opened (OCR_TOKENIZER=auto),
        else jieba; a forced choice that cannot be had raises."""
        available = await conn.fetchval("SELECT count(*) FROM pg_available_extensions WHERE name = 'zhparser'")
        if self.wanted == JIEBA or (self.wanted == "auto" and not available):
            await self.zhparser.close()
            return JIEBA
        if not available:
            raise RuntimeError("OCR_TOKENIZER=zhparser, but this PostgreSQL server has no zhparser extension")
        try:
            await self.zhparser.open(conn)
        except ZhparserUnavailable as exc:
            if self.wanted == ZHPARSER:
                raise
            log.warning("zhparser is installed but cannot be used: using jieba", extra={"error": exc.message})
            return JIEBA
        return ZHPARSER

    def _stop_jieba(self) -> None:
        if self._jieba is not None:
            self._jieba.idle()
            self._jieba = None

    async def close(self) -> None:
        self._stop_jieba()
        await self.zhparser.close()

    async def sync(self, pool: asyncpg.Pool, facts: ImmichFacts) -> int:
        """One pass over every change feed (waiting for another gateway's pass); rows written."""
        async with self._locked(pool, wait=True) as conn:
            assert conn is not None
            try:
                return sum(
                    [await self._read(pool, conn, facts, feed, self.batch_size, bounded=False) for feed in feeds(facts)]
                )
            finally:
                if self._jieba is not None:
                    self._jieba.idle()

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
                watermark = feed.decode(await aio_schema.get_meta(conn, feed.key))
                first = await conn.fetchval(feed.first_after.format(mark="$1"), feed.mark_of(watermark))
                if first is not None:
                    moment = feed.time_of(first)
                    oldest = moment if oldest is None else min(oldest, moment)
        return 0.0 if oldest is None else max(0.0, (datetime.now(timezone.utc) - oldest).total_seconds())

    @staticmethod
    async def rows(pool: asyncpg.Pool) -> int:
        """Rows in the index, by PostgreSQL's statistics (a count of 1M rows would cost a scan)."""
        return int(await pool.fetchval(ROW_ESTIMATE) or 0)

    async def reconcile(self, pool: asyncpg.Pool, facts: ImmichFacts) -> int:
        """Compare every asset's visible text with the index and repair the differences."""
        async with self._locked(pool, wait=True) as conn:
            assert conn is not None
            differing = [
                r["asset_id"] for r in await conn.fetch(sql.differing_assets(facts.columns), timeout=LONG_QUERY_TIMEOUT)
            ]
            written = 0
            spread = len(differing) > self.batch_size
            for start in range(0, len(differing), self.batch_size):
                async with conn.transaction():
                    written += await self._apply(conn, facts, differing[start : start + self.batch_size], spread=spread)
            if written:
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
        self, pool: asyncpg.Pool, conn: Connection, facts: ImmichFacts, feed: Feed, limit: int, *, bounded: bool
    ) -> int:
        """Read a feed from LAG before its watermark in batches of `limit` (one when `bounded`).
        The first batch is applied and moves the watermark in one transaction; when it is full
        and not `bounded`, a long pass follows on several connections. Rows written."""
        watermark = feed.decode(await aio_schema.get_meta(conn, feed.key))
        limit *= feed.rows_per_asset
        async with conn.transaction():
            changes = await conn.fetch(
                feed.statement, *feed.args(feed.start(watermark), limit), timeout=LONG_QUERY_TIMEOUT
            )
            if not changes:
                return 0
            written = await self._apply(conn, facts, [row["asset_id"] for row in changes])
            position = feed.after(changes[-1])
            watermark = await _advance(conn, feed, watermark, position)
        if bounded or len(changes) < limit:
            if written:
                log.info("OCR index sync", extra={"feed": feed.key, "written": written})
            return written
        left = await conn.fetchval(feed.count_after, *feed.args(position, 0)[:-1], timeout=LONG_QUERY_TIMEOUT)
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
        feed: Feed,
        limit: int,
        position: Position,
        watermark: Position | None,
        progress: Progress,
    ) -> int:
        """The rest of a long pass (a backfill): `conn` reads the feed ahead, INDEX_WORKERS lanes
        apply the batches (see lanes.py), and the watermark moves past each batch once it and
        every batch before it are committed, so a crash repeats at most the batches in flight."""
        width = max(1, min(self.workers, MAX_LANES))
        written = 0
        in_flight: collections.deque[tuple[Position, int, asyncio.Future[list[int]]]] = collections.deque()
        async with contextlib.AsyncExitStack() as stack:
            conns = [await stack.enter_async_context(pool.acquire()) for _ in range(width)]
            lanes = Lanes(conns, lambda lane, ids: self._apply(lane, facts, ids, spread=True))
            stack.push_async_callback(lanes.close)
            more = True
            while more or in_flight:
                if more:
                    changes = await conn.fetch(feed.statement, *feed.args(position, limit), timeout=LONG_QUERY_TIMEOUT)
                    more = len(changes) == limit
                    if changes:
                        position = feed.after(changes[-1])
                        in_flight.append((position, len(changes), lanes.submit([r["asset_id"] for r in changes])))
                while in_flight and (not more or len(in_flight) > 2 * width or in_flight[0][2].done()):
                    done_to, count, batch = in_flight.popleft()
                    written += sum(await batch)
                    watermark = await _advance(conn, feed, watermark, done_to)
                    progress.advance(count)
        return written

    async def _apply(
        self, conn: Connection, facts: ImmichFacts, candidates: list[uuid.UUID], *, spread: bool = False
    ) -> int:
        """Make the index rows of `candidates` equal their current visible text and taken time
        (`spread`: part of a long pass, whose jieba splitting uses every worker)."""
        ids = list(dict.fromkeys(candidates))
        current = {row["asset_id"]: row for row in await conn.fetch(sql.current_text(facts.columns), ids)}
        indexed = {row["asset_id"]: (row["text"], row["taken"]) for row in await conn.fetch(INDEXED, ids)}
        changed = [row for asset_id, row in current.items() if indexed.get(asset_id) != (row["text"], row["taken"])]
        gone = [asset_id for asset_id in indexed if asset_id not in current]
        if changed:
            texts = [row["text"] for row in changed]
            documents = await self._documents(texts, spread)
            await conn.execute(
                UPSERT_WORDS[self.tokenizer or JIEBA],
                [row["asset_id"] for row in changed],
                [row["owner_id"] for row in changed],
                [row["taken"] for row in changed],
                texts,
                documents,
            )
        if gone:
            await conn.execute(DELETE_ROWS, gone)
        return len(changed) + len(gone)

    async def _documents(self, texts: list[str], spread: bool) -> list[str]:
        """The UPSERT's documents: zhparser's words of the folded texts, or folded jieba words."""
        if self._jieba is None:
            folded = await asyncio.to_thread(lambda: [fold(text) for text in texts])
            return await self.zhparser.documents(folded, timeout=LONG_QUERY_TIMEOUT)
        return await self._jieba.documents(texts, spread=spread)

    async def tsquery(self, pool: asyncpg.Pool, text: str) -> str:
        """The query's words as tsquery text, folded and split like the documents; '' when
        nothing is left (only stop words or punctuation). A NUL, which no PostgreSQL text holds,
        separates words."""
        text = text.replace("\x00", " ")
        if self._jieba is None:
            folded = await asyncio.to_thread(fold, text)
            words = zhparser_query(await self.zhparser.tokens(folded))
        else:
            words = await self._jieba.query(text)
        expression, params = tsquery_sql(words)
        return str(await pool.fetchval(f"SELECT ({expression})::text", *params))

    async def search(
        self,
        pool: asyncpg.Pool,
        facts: ImmichFacts,
        tsquery: str,
        dto: SmartSearch,
        user_id: str,
        limit: int,
        offset: int,
        by_date: Literal["asc", "desc"] | None = None,
        by_vector: str | None = None,
    ) -> list[str]:
        """Asset ids matching `tsquery` that `user_id` may see and `dto`'s filters keep: best
        first, or by taken time (`by_date`) as Immich's metadata search orders them, or by CLIP
        distance to `by_vector` as Immich's smart search orders them."""
        params = Params()
        query = params.add(tsquery, "tsquery")
        me = params.add(user_id, "uuid")
        conditions = search_conditions(dto, facts, me, params)
        owners = sql.searchable_owners(me)
        vector = params.add(by_vector, "vector") if by_vector is not None else None
        # bigint: a page far out (up to Immich's largest) is an empty answer, as Immich gives.
        paging = params.add(limit, "bigint"), params.add(offset, "bigint")
        if vector is not None:
            statement = sql.clip_ranked_ocr_search(conditions, query, owners, vector, *paging)
        elif by_date is None:
            statement = sql.ranked_ocr_search(conditions, query, owners, *paging)
        else:
            statement = sql.dated_ocr_search(conditions, query, owners, by_date.upper(), *paging)
        return [str(row["asset_id"]) for row in await pool.fetch(statement, *params.values)]


async def _advance(conn: Connection, feed: Feed, watermark: Position | None, position: Position) -> Position:
    """Store `position` as the feed's watermark when it is past it; the watermark now."""
    if watermark is not None and position <= watermark:  # type: ignore[operator]
        return watermark
    await aio_schema.set_meta(conn, feed.key, feed.encode(position))
    return position
