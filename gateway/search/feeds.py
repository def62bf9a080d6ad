"""The change feeds that keep the OCR index in step with Immich, each read after a watermark (its
position, kept in aio.meta), so a pass costs what changed, not the library:

- 2.x: `asset_job_status."ocrAt"` (Immich has no index on it: one scan of that narrow table);
- 3.0+: new lines by `asset_ocr."updateId"` (indexed, uuid v7) and deleted lines by
  `asset_ocr_audit` (indexed by time);
- 2.6+ also: edits made in Immich's editor by `asset_edit."updateId"` and removed by
  `asset_edit_audit` (both indexed): the editor's job hides the lines a crop cuts out (and shows
  them again when the edit is removed) without a mark in asset_ocr, a moment after the edit.

A feed is keyed by a uuid v7 or by a time with an id to break ties. Feeds are re-read from LAG
before their watermark: Immich stamps a change a moment before its transaction commits.
"""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from datetime import datetime, timedelta, timezone
from typing import Generic, TypeVar

import asyncpg

from gateway import aio_schema
from gateway.immich import sql
from gateway.immich.facts import ImmichFacts
from gateway.pg import Connection

LAG = timedelta(minutes=1)
NIL = uuid.UUID(int=0)
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

Position = TypeVar("Position", uuid.UUID, tuple[datetime, uuid.UUID])


class Feed(ABC, Generic[Position]):
    """One change feed: its statement, its watermark's key in aio.meta, and how it is keyed."""

    def __init__(self, key: str, statements: sql.FeedSql, rows_per_asset: int = 1) -> None:
        self.key = key
        self.statement, self.count_after, self.first_after = statements
        # Rows per asset: a feed of OCR lines reads this many rows for a batch of assets.
        self.rows_per_asset = rows_per_asset

    @abstractmethod
    def decode(self, stored: str) -> Position: ...

    @abstractmethod
    def encode(self, position: Position) -> str: ...

    @abstractmethod
    def start(self, watermark: Position | None) -> Position:
        """Where a pass starts reading: LAG before the watermark (or the beginning)."""

    @abstractmethod
    def after(self, row: asyncpg.Record) -> Position:
        """The keyset position of a row just read."""

    @abstractmethod
    def args(self, position: Position) -> list[object]:
        """The statement's arguments for reading after `position` (the limit follows them)."""

    @abstractmethod
    def stored_mark(self, key: str) -> str:
        """SQL for the watermark stored in aio.meta under the placeholder `key`, as `mark_of`
        gives it (the beginning when there is none)."""

    @abstractmethod
    def mark_of(self, watermark: Position | None) -> uuid.UUID | datetime:
        """The watermark as `first_after` takes it."""

    @abstractmethod
    def time_of(self, mark: uuid.UUID | datetime) -> datetime:
        """When the change `first_after` found was made."""

    @abstractmethod
    def is_past(self, position: Position, watermark: Position) -> bool: ...

    async def watermark(self, conn: Connection) -> Position | None:
        stored = await aio_schema.get_meta(conn, self.key)
        return None if stored is None else self.decode(stored)

    async def mark(self, conn: Connection) -> uuid.UUID | datetime:
        """The stored watermark as `first_after` takes it."""
        return self.mark_of(await self.watermark(conn))

    async def advance(self, conn: Connection, watermark: Position | None, position: Position) -> Position:
        """Store `position` as the watermark when it is past it; the watermark now."""
        if watermark is not None and not self.is_past(position, watermark):
            return watermark
        await aio_schema.set_meta(conn, self.key, self.encode(position))
        return position


class UuidFeed(Feed[uuid.UUID]):
    """Keyed by a uuid v7 (`updateId`), which carries its own time."""

    def decode(self, stored: str) -> uuid.UUID:
        return uuid.UUID(stored)

    def encode(self, position: uuid.UUID) -> str:
        return str(position)

    def start(self, watermark: uuid.UUID | None) -> uuid.UUID:
        return NIL if watermark is None else uuid7_floor(uuid7_time(watermark) - LAG)

    def after(self, row: asyncpg.Record) -> uuid.UUID:
        return row["mark"]  # type: ignore[no-any-return]

    def args(self, position: uuid.UUID) -> list[object]:
        return [position]

    def stored_mark(self, key: str) -> str:
        return f"coalesce((SELECT value FROM aio.meta WHERE key = {key}), '{NIL}')::uuid"

    def mark_of(self, watermark: uuid.UUID | None) -> uuid.UUID:
        return NIL if watermark is None else watermark

    def time_of(self, mark: uuid.UUID | datetime) -> datetime:
        assert isinstance(mark, uuid.UUID)
        return uuid7_time(mark)

    def is_past(self, position: uuid.UUID, watermark: uuid.UUID) -> bool:
        return position > watermark


class TimeFeed(Feed[tuple[datetime, uuid.UUID]]):
    """Keyed by a time and an id that breaks ties (stored as `time|id`)."""

    def decode(self, stored: str) -> tuple[datetime, uuid.UUID]:
        moment, tie = stored.split("|")
        return datetime.fromisoformat(moment), uuid.UUID(tie)

    def encode(self, position: tuple[datetime, uuid.UUID]) -> str:
        return f"{position[0].isoformat()}|{position[1]}"

    def start(self, watermark: tuple[datetime, uuid.UUID] | None) -> tuple[datetime, uuid.UUID]:
        return (EPOCH, NIL) if watermark is None else (watermark[0] - LAG, NIL)

    def after(self, row: asyncpg.Record) -> tuple[datetime, uuid.UUID]:
        return row["mark"], row.get("id", row["asset_id"])

    def args(self, position: tuple[datetime, uuid.UUID]) -> list[object]:
        return list(position)

    def stored_mark(self, key: str) -> str:
        stored = f"(SELECT value FROM aio.meta WHERE key = {key})"
        return f"coalesce(split_part({stored}, '|', 1), '{EPOCH.isoformat()}')::timestamptz"

    def mark_of(self, watermark: tuple[datetime, uuid.UUID] | None) -> datetime:
        return EPOCH if watermark is None else watermark[0]

    def time_of(self, mark: uuid.UUID | datetime) -> datetime:
        assert isinstance(mark, datetime)
        return mark

    def is_past(self, position: tuple[datetime, uuid.UUID], watermark: tuple[datetime, uuid.UUID]) -> bool:
        return position > watermark


OCR_AT = TimeFeed("feed:ocrAt", sql.BY_OCR_AT)
UPDATE_ID = UuidFeed("feed:updateId", sql.BY_OCR_UPDATE, rows_per_asset=4)
AUDIT = TimeFeed("feed:audit", sql.BY_OCR_AUDIT, rows_per_asset=4)
EDIT = UuidFeed("feed:edit", sql.BY_EDIT)
EDIT_AUDIT = TimeFeed("feed:editAudit", sql.BY_EDIT_AUDIT)

AnyFeed = UuidFeed | TimeFeed


def feeds(facts: ImmichFacts) -> list[AnyFeed]:
    """The feeds the connected release has."""
    columns = facts.columns
    ocr: list[AnyFeed] = [UPDATE_ID, AUDIT] if columns.ocr_update_id and columns.ocr_audit else [OCR_AT]
    return ocr + ([EDIT, EDIT_AUDIT] if columns.ocr_is_visible and columns.edit_feeds else [])


def uuid7_time(value: uuid.UUID) -> datetime:
    """The creation time a uuid v7 carries in its first 48 bits (milliseconds since 1970)."""
    return datetime.fromtimestamp((value.int >> 80) / 1000, tz=timezone.utc)


def uuid7_floor(moment: datetime) -> uuid.UUID:
    """The smallest uuid v7 of `moment`: every later uuid v7 sorts after it."""
    return uuid.UUID(int=max(0, int(moment.timestamp() * 1000)) << 80)
