"""A scratch PostgreSQL database with Immich's tables, and a helper that writes rows the way
Immich does after an OCR job (lines into asset_ocr, then asset_job_status.ocrAt)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from pathlib import Path

import asyncpg

from tests.helpers import serve
from tests.standins import ImmichServer, stock_immich_server

ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
SCHEMA = (Path(__file__).parent / "immich_schema.sql").read_text()


@contextlib.asynccontextmanager
async def immich_world(
    keys: dict[str, str], admins: tuple[str, ...] = (), rows: type[ImmichRows] | None = None
) -> AsyncIterator[tuple[str, ImmichRows, ImmichServer, str]]:
    """A scratch database with Immich's tables and a stand-in Immich API knowing `keys`
    (user id -> API key); yields (database name, row writer, API state, API URL)."""
    async with scratch_database() as name:
        pool = await asyncpg.create_pool(f"postgresql://postgres@127.0.0.1:5432/{name}", min_size=1, max_size=4)
        immich = ImmichServer()
        for user, key in keys.items():
            immich.add_user(user, key, is_admin=user in admins)
        try:
            with serve(stock_immich_server(immich)) as immich_url:
                yield name, (rows or ImmichRows)(pool), immich, immich_url
        finally:
            await pool.close()


@contextlib.asynccontextmanager
async def scratch_database() -> AsyncIterator[str]:
    """A new database with Immich's tables; yields its name, drops it afterwards."""
    name = f"aio_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(ADMIN_DSN)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        conn = await asyncpg.connect(f"postgresql://postgres@127.0.0.1:5432/{name}")
        await conn.execute(SCHEMA)
        await conn.close()
        yield name
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


class ImmichRows:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def asset(
        self,
        owner: str,
        lines: list[str] | None = None,
        *,
        visibility: str = "timeline",
        deleted: bool = False,
        taken: datetime | None = None,
        type: str = "IMAGE",
        favorite: bool = False,
    ) -> str:
        asset_id = await self.pool.fetchval(
            'INSERT INTO asset ("ownerId", visibility, "deletedAt", "fileCreatedAt", type, "isFavorite")'
            " VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            uuid.UUID(owner),
            visibility,
            datetime.now(timezone.utc) if deleted else None,
            taken or datetime.now(timezone.utc),
            type,
            favorite,
        )
        await self.pool.execute('INSERT INTO asset_job_status ("assetId") VALUES ($1)', asset_id)
        if lines is not None:
            await self.ocr(str(asset_id), lines)
        return str(asset_id)

    async def ocr(self, asset_id: str, lines: list[str]) -> None:
        """An OCR run: old lines replaced in one statement, then ocrAt stamped."""
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute('DELETE FROM asset_ocr WHERE "assetId" = $1', uuid.UUID(asset_id))
            await conn.executemany(
                'INSERT INTO asset_ocr ("assetId", x1, y1, x2, y2, x3, y3, x4, y4, "boxScore", "textScore", text)'
                " VALUES ($1, 0.1, $2::real, 0.9, $2::real, 0.9, $2::real + 0.05, 0.1, $2::real + 0.05, 0.9, 0.95, $3)",
                [(uuid.UUID(asset_id), i / 20, line) for i, line in enumerate(lines)],
            )
            await conn.execute(
                'UPDATE asset_job_status SET "ocrAt" = clock_timestamp() WHERE "assetId" = $1', uuid.UUID(asset_id)
            )

    async def clear_ocr(self, asset_id: str) -> None:
        await self.pool.execute('UPDATE asset_job_status SET "ocrAt" = NULL WHERE "assetId" = $1', uuid.UUID(asset_id))

    async def delete(self, asset_id: str) -> None:
        await self.pool.execute("DELETE FROM asset WHERE id = $1", uuid.UUID(asset_id))

    async def partner(self, shared_by: str, shared_with: str, in_timeline: bool) -> None:
        await self.pool.execute(
            'INSERT INTO partner ("sharedById", "sharedWithId", "inTimeline") VALUES ($1, $2, $3)',
            uuid.UUID(shared_by),
            uuid.UUID(shared_with),
            in_timeline,
        )


class ReprocessRows(ImmichRows):
    """The rows re-processing touches: smart_search vectors and tags."""

    async def embed(self, asset_id: str) -> None:
        await self.pool.execute(
            'INSERT INTO smart_search ("assetId", embedding) VALUES ($1, $2)', uuid.UUID(asset_id), [0.1] * 4
        )

    async def tag(self, owner: str, value: str, asset_ids: list[str]) -> str:
        tag_id = await self.pool.fetchval(
            'INSERT INTO tag ("userId", value) VALUES ($1, $2) RETURNING id', uuid.UUID(owner), value
        )
        await self.pool.executemany(
            'INSERT INTO tag_asset ("assetsId", "tagsId") VALUES ($1, $2)', [(uuid.UUID(a), tag_id) for a in asset_ids]
        )
        return str(tag_id)

    async def state(self, asset_id: str) -> dict[str, object]:
        """Whether the asset has an OCR result, a CLIP vector and tags."""
        row = await self.pool.fetchrow(
            'SELECT s."ocrAt" IS NOT NULL AS ocr,'
            ' EXISTS (SELECT 1 FROM smart_search v WHERE v."assetId" = $1) AS clip,'
            ' (SELECT count(*) FROM tag_asset t WHERE t."assetsId" = $1) AS tags'
            ' FROM asset_job_status s WHERE s."assetId" = $1',
            uuid.UUID(asset_id),
        )
        return dict(row)
