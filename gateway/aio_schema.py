"""Our own schema `aio` in Immich's database: versioned, append-only migrations.

Immich's migrations never see it; our rows reference `asset(id)` with ON DELETE CASCADE, so a
deleted asset leaves no trace here. A database at version N runs the statements after N, under
an advisory lock so two gateways never migrate at once.
"""

from __future__ import annotations

import asyncpg

from gateway.immich.sql import ASSET_TABLE
from gateway.pg import Connection

MIGRATION_LOCK = 0x41494F  # "AIO"

MIGRATIONS: list[str] = [
    f"""
    CREATE TABLE aio.ocr_index (
      asset_id uuid PRIMARY KEY REFERENCES public.{ASSET_TABLE}(id) ON DELETE CASCADE,
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
      asset_id uuid NOT NULL REFERENCES public.{ASSET_TABLE}(id) ON DELETE CASCADE,
      queue text NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (asset_id, queue)
    );
    """,
    # The index mirrors each asset's visible OCR text, found through change feeds with
    # watermarks in aio.meta; a row exists only for an asset with visible text.
    """
    DROP INDEX aio.ocr_index_ocr_at;
    ALTER TABLE aio.ocr_index DROP COLUMN ocr_at;
    DELETE FROM aio.ocr_index WHERE text = '';
    """,
    # Pending queue starts are claimed (committed) before Immich is called, never locked across it.
    """
    ALTER TABLE aio.reprocess_pending ADD COLUMN claimed_until timestamptz;
    """,
    # A search ranks the caller's (and partners') hits in the index alone, then looks up only
    # the assets a page needs: each row keeps its asset's taken time (the tie-break), and one
    # GIN index serves owner and words (btree_gin, a contrib module of every PostgreSQL Immich
    # runs; kept in our schema, so dropping the schema removes it too). Indexes go before the
    # fill and come back after it: one build instead of a rewrite of every entry.
    f"""
    CREATE EXTENSION IF NOT EXISTS btree_gin SCHEMA aio;
    DROP INDEX aio.ocr_index_words;
    DROP INDEX aio.ocr_index_owner;
    ALTER TABLE aio.ocr_index ADD COLUMN taken timestamptz;
    UPDATE aio.ocr_index i SET taken = a."fileCreatedAt" FROM public.{ASSET_TABLE} a WHERE a.id = i.asset_id;
    ALTER TABLE aio.ocr_index ALTER COLUMN taken SET NOT NULL;
    CREATE INDEX ocr_index_owner_words ON aio.ocr_index USING gin (owner_id, words);
    """,
    # Literal matching: the grams in a column and GIN index of their own, so that ranking by
    # words reads only the small `words`; each owner's rows newest first, where a fragment most
    # photos hold is looked for (search/query.py). The rows are rebuilt (tokenize.LITERAL).
    """
    ALTER TABLE aio.ocr_index ADD COLUMN grams tsvector NOT NULL DEFAULT '';
    ALTER TABLE aio.ocr_index ALTER COLUMN grams DROP DEFAULT;
    CREATE INDEX ocr_index_owner_grams ON aio.ocr_index USING gin (owner_id, grams);
    CREATE INDEX ocr_index_owner_taken ON aio.ocr_index (owner_id, taken DESC, asset_id);
    """,
]


async def migrate(conn: Connection) -> None:
    """Create or update our schema; idempotent."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
        await conn.execute(
            "CREATE SCHEMA IF NOT EXISTS aio;"
            "CREATE TABLE IF NOT EXISTS aio.meta (key text PRIMARY KEY, value text NOT NULL)"
        )
        version = int(await conn.fetchval("SELECT value FROM aio.meta WHERE key = 'schema_version'") or 0)
        for statement in MIGRATIONS[version:]:
            await conn.execute(statement)
        await set_meta(conn, "schema_version", str(len(MIGRATIONS)))


async def set_meta(conn: Connection | asyncpg.Pool, key: str, value: str) -> None:
    await conn.execute(
        "INSERT INTO aio.meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        key,
        value,
    )


async def get_meta(conn: Connection | asyncpg.Pool, key: str) -> str | None:
    value = await conn.fetchval("SELECT value FROM aio.meta WHERE key = $1", key)
    return str(value) if value is not None else None
