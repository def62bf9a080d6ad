"""The OCR word index: our own schema `aio` in Immich's database, kept in step with asset_ocr.

One row per asset with an OCR result: its text (lines in reading order), a tsvector of its words
(GIN-indexed) and the `ocrAt` it was built from. Syncing compares that `ocrAt` with Immich's, so
it is idempotent and a crash mid-sync is repaired by the next one; deleted assets vanish through
the foreign key (ON DELETE CASCADE).
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

from gateway.search import immich_sql
from gateway.search.tokenize import JIEBA, ZHPARSER, jieba_document, jieba_query, jieba_tsquery_sql

log = logging.getLogger(__name__)

ZHPARSER_SQL = (Path(__file__).parent / "zhparser.sql").read_text()
# Advisory locks: one migration at a time, one sync batch at a time (across gateways too).
MIGRATION_LOCK = 0x41494F  # "AIO"
SYNC_LOCK = MIGRATION_LOCK + 1
# Immich stamps ocrAt a moment before its transaction commits, so a result may become visible
# with an ocrAt a little older than the newest one indexed; the catch-up looks back this far
# (the full sync of the background loop looks at everything).
CATCH_UP_LAG = timedelta(minutes=1)

# Versioned, append-only: a database at version N runs the statements after N.
MIGRATIONS: list[str] = [
    f"""
    CREATE TABLE aio.ocr_index (
      asset_id uuid PRIMARY KEY REFERENCES public.{immich_sql.ASSET_TABLE}(id) ON DELETE CASCADE,
      owner_id uuid NOT NULL,
      text text NOT NULL,
      words tsvector NOT NULL,
      ocr_at timestamptz NOT NULL
    );
    CREATE INDEX ocr_index_words ON aio.ocr_index USING gin (words);
    CREATE INDEX ocr_index_owner ON aio.ocr_index (owner_id);
    CREATE INDEX ocr_index_ocr_at ON aio.ocr_index (ocr_at);
    """,
    # Re-process requests whose reset is done but whose queue start is not yet confirmed.
    f"""
    CREATE TABLE aio.reprocess_pending (
      asset_id uuid NOT NULL REFERENCES public.{immich_sql.ASSET_TABLE}(id) ON DELETE CASCADE,
      queue text NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (asset_id, queue)
    );
    """,
]

UPSERT = """
INSERT INTO aio.ocr_index (asset_id, owner_id, text, words, ocr_at)
SELECT u.asset_id, u.owner_id, u.text, to_tsvector($6::regconfig, u.document), u.ocr_at
FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::timestamptz[])
  AS u(asset_id, owner_id, text, document, ocr_at)
ON CONFLICT (asset_id) DO UPDATE
SET owner_id = excluded.owner_id, text = excluded.text, words = excluded.words, ocr_at = excluded.ocr_at
"""


class OcrIndex:
    def __init__(self, pool: asyncpg.Pool, batch_size: int) -> None:
        self.pool = pool
        self.batch_size = batch_size
        self.tokenizer = JIEBA

    @property
    def config(self) -> str:
        """The text search configuration documents and queries are parsed with."""
        return "chinese" if self.tokenizer == ZHPARSER else "simple"

    async def migrate(self) -> None:
        """Create or update our schema (idempotent), choose the tokenizer, rebuild if it changed."""
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
            await conn.execute(
                "CREATE SCHEMA IF NOT EXISTS aio;"
                "CREATE TABLE IF NOT EXISTS aio.meta (key text PRIMARY KEY, value text NOT NULL)"
            )
            meta = dict(await conn.fetch("SELECT key, value FROM aio.meta"))
            version = int(meta.get("schema_version", 0))
            for statement in MIGRATIONS[version:]:
                await conn.execute(statement)
            await _set_meta(conn, "schema_version", str(len(MIGRATIONS)))
            self.tokenizer = await _choose_tokenizer(conn)
            if meta.get("tokenizer") != self.tokenizer:
                if meta.get("tokenizer"):
                    log.warning("tokenizer changed to %s: the OCR index is rebuilt", self.tokenizer)
                await conn.execute("TRUNCATE aio.ocr_index")
                await _set_meta(conn, "tokenizer", self.tokenizer)
        log.info("OCR index ready", extra={"tokenizer": self.tokenizer, "schema_version": len(MIGRATIONS)})

    async def sync(self) -> int:
        """Index every asset whose OCR result changed (logging progress) and drop rows whose
        result was cleared."""
        total: int | None = None
        done, started = 0, time.monotonic()
        while True:
            count = await self._sync_batch(None)
            if count and total is None:  # counted only when there is work to report on
                total = await self.pool.fetchval(immich_sql.COUNT_OCR_DONE)
            done += count
            if count:
                rate = done / max(time.monotonic() - started, 1e-6)
                log.info("OCR index sync", extra={"done": done, "total": total, "rows_per_s": round(rate)})
            if count < self.batch_size:
                break
        removed = await self.pool.execute(immich_sql.STALE_INDEX_ROWS)
        if removed != "DELETE 0":
            log.info("OCR index: cleared results removed", extra={"result": removed})
        return done

    async def catch_up(self, limit: int) -> int:
        """A bounded sync before a search, so a photo Immich has just OCR'd is found at once."""
        return await self._sync_batch(await self._watermark(), limit)

    async def _watermark(self) -> datetime | None:
        newest = await self.pool.fetchval("SELECT max(ocr_at) FROM aio.ocr_index")
        return newest - CATCH_UP_LAG if newest else None

    async def _sync_batch(self, since: datetime | None, limit: int | None = None) -> int:
        async with self.pool.acquire() as conn:
            # Taken before the transaction, so its snapshot sees the previous batch's rows:
            # two writers of one row in repeatable read would fail to serialise.
            await conn.execute("SELECT pg_advisory_lock($1)", SYNC_LOCK)
            try:
                async with conn.transaction(isolation="repeatable_read"):
                    return await self._index_changed(conn, since, limit or self.batch_size)
            finally:
                await conn.execute("SELECT pg_advisory_unlock($1)", SYNC_LOCK)

    async def _index_changed(self, conn: asyncpg.Connection, since: datetime | None, limit: int) -> int:
        """Index one batch of changed assets; their ocrAt and lines are read in one snapshot."""
        changed = await conn.fetch(immich_sql.CHANGED_OCR, since, limit)
        if not changed:
            return 0
        ocr_at = {row["asset_id"]: row["ocr_at"] for row in changed}
        rows = await conn.fetch(immich_sql.OCR_TEXT, list(ocr_at))
        texts = [row["text"] for row in rows]
        documents = await asyncio.to_thread(_documents, texts) if self.tokenizer == JIEBA else texts
        await conn.execute(
            UPSERT,
            [row["asset_id"] for row in rows],
            [row["owner_id"] for row in rows],
            texts,
            documents,
            [ocr_at[row["asset_id"]] for row in rows],
            self.config,
        )
        return len(changed)

    async def tsquery(self, text: str) -> str:
        """The query's words as tsquery text, parsed like the documents; '' when nothing is left
        (only stop words or punctuation)."""
        if self.tokenizer == ZHPARSER:
            return await self.pool.fetchval("SELECT plainto_tsquery('chinese', $1)::text", text)
        expression, params = jieba_tsquery_sql(await asyncio.to_thread(jieba_query, text))
        return await self.pool.fetchval(f"SELECT ({expression})::text", *params)

    async def search(self, query: str, user_id: str, filters: dict[str, Any], limit: int, offset: int) -> list[str]:
        rows = await self.pool.fetch(
            immich_sql.SEARCH,
            query,
            user_id,
            filters["visibility"],
            filters["withDeleted"],
            filters["type"],
            filters["isFavorite"],
            filters["createdAfter"],
            filters["createdBefore"],
            filters["takenAfter"],
            filters["takenBefore"],
            limit,
            offset,
        )
        return [str(row["asset_id"]) for row in rows]


def _documents(texts: list[str]) -> list[str]:
    return [jieba_document(text) for text in texts]


async def _set_meta(conn: asyncpg.Connection, key: str, value: str) -> None:
    await conn.execute(
        "INSERT INTO aio.meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        key,
        value,
    )


async def _choose_tokenizer(conn: asyncpg.Connection) -> str:
    available = await conn.fetchval("SELECT count(*) FROM pg_available_extensions WHERE name = 'zhparser'")
    if not available:
        return JIEBA
    try:
        async with conn.transaction():
            await conn.execute(ZHPARSER_SQL)
    except asyncpg.PostgresError as exc:
        log.warning("zhparser is installed but cannot be enabled: using jieba", extra={"error": str(exc)})
        return JIEBA
    return ZHPARSER
