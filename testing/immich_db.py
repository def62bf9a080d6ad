"""Scratch PostgreSQL databases with Immich's tables as a given release has them (2.2 or 3.2),
rows written the way that release writes them, and a stand-in Immich API beside them."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import asyncpg
import orjson

from gateway import aio_schema
from gateway.immich.db import Database
from gateway.immich.facts import Version
from gateway.search.passes import MAX_LANES
from gateway.search.zhparser import Zhparser
from testing.servers import serve
from testing.standins import ImmichServer, stock_immich_server

ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
# The Immich releases the tests run against: the schema file and the version the API reports.
RELEASES = {"2.2": "2.2.3", "3.2": "3.2.2"}


def database_for(name: str, release: str = "3.2", query_timeout: float = 10, port: int = 5432) -> Database:
    """The gateway's connection to the scratch database `name`, as Immich `release` (not yet
    connected: `await database.ensure()`)."""

    async def version() -> Version:
        return Version(*map(int, RELEASES[release].split(".")))

    return Database(
        host="127.0.0.1",
        port=port,
        user="postgres",
        password="",
        database=name,
        connect_timeout=10,
        query_timeout=query_timeout,
        server_version=version,
        set_up=aio_schema.migrate,
    )


def zhparser_beside(database: str = "zhparser", port: int = 5432) -> Zhparser:
    """zhparser's database on the tests' PostgreSQL, as the gateway reaches it."""
    connection = {"host": "127.0.0.1", "port": port, "user": "postgres", "password": "", "database": database}
    return Zhparser(connection, connect_timeout=10, query_timeout=60, size=MAX_LANES + 2)


SCHEMAS = Path(__file__).parent / "schemas"
HAS_PGVECTOR = "SELECT count(*) = 1 FROM pg_available_extensions WHERE name = 'vector'"
# The length of the stand-in's CLIP vectors.
DIMENSION = 4


def dsn(database: str) -> str:
    return f"postgresql://postgres@127.0.0.1:5432/{database}"


@contextlib.asynccontextmanager
async def scratch_database(release: str = "3.2") -> AsyncIterator[str]:
    """A new database with Immich's tables of `release`; yields its name, drops it afterwards."""
    name = f"aio_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(ADMIN_DSN)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        conn = await asyncpg.connect(dsn(name))
        await conn.execute((SCHEMAS / f"immich_{release.replace('.', '_')}.sql").read_text())
        if await conn.fetchval(HAS_PGVECTOR):  # Immich's own column type, where the server has it
            await conn.execute(
                f"CREATE EXTENSION vector; ALTER TABLE smart_search ALTER COLUMN embedding TYPE vector({DIMENSION})"
            )
        await conn.close()
        yield name
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@dataclass
class World:
    """A scratch Immich: its database, a row writer, the stand-in API's state and URL."""

    release: str
    database: str
    rows: ImmichRows
    immich: ImmichServer
    url: str


@contextlib.asynccontextmanager
async def immich_world(release: str, keys: dict[str, str], admins: tuple[str, ...] = ()) -> AsyncIterator[World]:
    """A scratch database of `release` and a stand-in Immich API of that release knowing `keys`
    (user id -> API key)."""
    async with scratch_database(release) as name:
        pool = await asyncpg.create_pool(dsn(name), min_size=1, max_size=4)
        immich = ImmichServer(version=RELEASES[release], database=dsn(name))
        for user, key in keys.items():
            immich.add_user(user, key, is_admin=user in admins)
        try:
            with serve(stock_immich_server(immich)) as url:
                yield World(release, name, ImmichRows(pool, release), immich, url)
        finally:
            await pool.close()


class ImmichRows:
    """Writes rows the way Immich of `release` does."""

    def __init__(self, pool: asyncpg.Pool, release: str) -> None:
        self.pool = pool
        self.release = release
        self.version = tuple(int(part) for part in release.split("."))
        self.tag_columns = ("assetId", "tagId") if self.version >= (2, 3) else ("assetsId", "tagsId")

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
        await self.pool.execute('INSERT INTO asset_exif ("assetId") VALUES ($1)', asset_id)
        await self.preview(str(asset_id))
        if lines is not None:
            await self.ocr(str(asset_id), lines)
        return str(asset_id)

    async def preview(self, asset_id: str) -> None:
        """A generated preview, as each release records it."""
        await self.pool.execute(
            "INSERT INTO asset_file (\"assetId\", type, path) VALUES ($1, 'preview', '/p.jpg')", uuid.UUID(asset_id)
        )
        if self.version < (2, 5):
            await self.pool.execute(
                'UPDATE asset_job_status SET "previewAt" = now() WHERE "assetId" = $1', uuid.UUID(asset_id)
            )

    async def ocr(self, asset_id: str, lines: list[str]) -> None:
        """An OCR run: old lines replaced in one transaction, then ocrAt stamped. Before 3.0, a
        run that found no text left the old lines in place."""
        key = uuid.UUID(asset_id)
        async with self.pool.acquire() as conn, conn.transaction():
            if lines or self.version >= (3, 0):
                await conn.execute('DELETE FROM asset_ocr WHERE "assetId" = $1', key)
                await conn.executemany(
                    'INSERT INTO asset_ocr ("assetId", x1, y1, x2, y2, x3, y3, x4, y4, "boxScore", "textScore", text)'
                    " VALUES ($1, 0.1, $2::real, 0.9, $2::real, 0.9, $2::real + 0.05, 0.1, $2::real + 0.05,"
                    " 0.9, 0.95, $3)",
                    [(key, i / 20, line) for i, line in enumerate(lines)],
                )
            await conn.execute('UPDATE asset_job_status SET "ocrAt" = clock_timestamp() WHERE "assetId" = $1', key)

    async def crop_out(self, asset_id: str, texts: list[str]) -> None:
        """An edit whose crop hides these lines (2.5+): isVisible turns false, nothing else moves."""
        await self.pool.execute(
            'UPDATE asset_ocr SET "isVisible" = false WHERE "assetId" = $1 AND text = ANY($2::text[])',
            uuid.UUID(asset_id),
            texts,
        )

    async def edit(self, asset_id: str, actions: list[str], hidden: tuple[str, ...] = ()) -> None:
        """An edit in Immich's editor (2.5+), `actions` ("crop", "rotate", "mirror"; none: the edit
        removed), then its job: the lines a crop cuts out (`hidden`) turn invisible and the rest
        visible, and the asset row is updated."""
        asset = uuid.UUID(asset_id)
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute('DELETE FROM asset_edit WHERE "assetId" = $1', asset)
            for sequence, action in enumerate(actions):
                await conn.execute(
                    'INSERT INTO asset_edit ("assetId", action, parameters, sequence) VALUES ($1, $2, $3, $4)',
                    asset,
                    action,
                    "{}",
                    sequence,
                )
        await self.pool.execute(
            'UPDATE asset_ocr SET "isVisible" = NOT (text = ANY($2::text[])) WHERE "assetId" = $1', asset, list(hidden)
        )
        await self.pool.execute('UPDATE asset SET "fileCreatedAt" = "fileCreatedAt" WHERE id = $1', asset)

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

    async def embed(self, asset_id: str, vector: list[float] | None = None) -> None:
        """A CLIP vector (DIMENSION long), in pgvector's text form: it casts to either column type."""
        literal = ",".join(map(str, vector or [0.1] * DIMENSION))
        kind = await self.pool.fetchval(
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute"
            " WHERE attrelid = 'smart_search'::regclass AND attname = 'embedding'"
        )
        text = f"[{literal}]" if kind.startswith("vector") else f"{{{literal}}}"
        await self.pool.execute(
            f'INSERT INTO smart_search ("assetId", embedding) VALUES ($1, $2::text::{kind})', uuid.UUID(asset_id), text
        )

    async def configure(self, config: dict[str, object]) -> None:
        """Immich's saved system config (what differs from the defaults)."""
        await self.pool.execute(
            "INSERT INTO system_metadata (key, value) VALUES ('system-config', $1::text::jsonb)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            orjson.dumps(config).decode(),
        )

    async def tag(self, owner: str, value: str, asset_ids: list[str]) -> str:
        """A tag applied the way Immich's tag API does: tag_asset rows, and (2.5+) the value in
        each asset's asset_exif.tags."""
        asset_col, tag_col = self.tag_columns
        tag_id = await self.pool.fetchval(
            'INSERT INTO tag ("userId", value) VALUES ($1, $2) RETURNING id', uuid.UUID(owner), value
        )
        await self.pool.executemany(
            f'INSERT INTO tag_asset ("{asset_col}", "{tag_col}") VALUES ($1, $2)',
            [(uuid.UUID(a), tag_id) for a in asset_ids],
        )
        if self.version >= (2, 5):
            await self.pool.execute(
                "UPDATE asset_exif SET tags = array_append(coalesce(tags, '{}'), $2::varchar)"
                ' WHERE "assetId" = ANY($1::uuid[])',
                [uuid.UUID(a) for a in asset_ids],
                value,
            )
        return str(tag_id)

    async def state(self, asset_id: str) -> dict[str, object]:
        """Whether the asset has an OCR result and a CLIP vector, how many tags, and its stored
        tag values (None before 2.5)."""
        asset_col, _ = self.tag_columns
        key = uuid.UUID(asset_id)
        row = await self.pool.fetchrow(
            'SELECT s."ocrAt" IS NOT NULL AS ocr,'
            ' EXISTS (SELECT 1 FROM smart_search v WHERE v."assetId" = $1) AS clip,'
            f' (SELECT count(*) FROM tag_asset t WHERE t."{asset_col}" = $1) AS tags'
            ' FROM asset_job_status s WHERE s."assetId" = $1',
            key,
        )
        state = dict(row)
        if self.version >= (2, 5):
            state["exifTags"] = await self.pool.fetchval(
                "SELECT coalesce(tags, '{}') FROM asset_exif WHERE \"assetId\" = $1", key
            )
        return state
