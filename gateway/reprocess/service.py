"""Re-processing through Immich's own jobs, so Immich keeps writing its own tables.

1. In one transaction: reset the asset's result in Immich's tables (ocrAt to NULL; its
   smart_search row deleted) and note the queues to start in `aio.reprocess_pending`, claimed
   (a committed `claimed_until`) by this request, so no other gateway or loop starts the same
   queues; no transaction is open while Immich is called.
2. The background loop claims the pending rows no one holds (left by a crash, a refusal or an
   unreachable Immich) the same way.
3. Start each queue without force (`PUT /api/jobs/{queue}`): Immich recomputes exactly the
   missing results through our /predict. Then clear the rows of the queues started. A queue
   that is already running stays pending (its claim released) and is started again by the
   background loop, as is everything a crash or an unreachable Immich left behind.
Photos tagged REPROCESS_TAG are re-processed by the same loop and then untagged the way Immich
untags: through its API for the admin's own tags, else in SQL (tag_asset and asset_exif.tags).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from aio_common.errors import ApiError, Unavailable
from gateway import metrics
from gateway.immich import sql
from gateway.immich.api import Credentials, ImmichClient, JobNotStarted
from gateway.immich.db import Database

log = logging.getLogger(__name__)

OCR_QUEUE = "ocr"
CLIP_QUEUE = "smartSearch"
FEATURE = "Re-processing"

# Noted and claimed by the request that resets them, in one statement: the background loop
# never starts a queue for a request that is about to start it itself.
NOTE_CLAIMED = """
INSERT INTO aio.reprocess_pending (asset_id, queue, claimed_until)
SELECT a, q, now() + $3::interval FROM unnest($1::uuid[]) a, unnest($2::text[]) q
ON CONFLICT (asset_id, queue) DO UPDATE SET claimed_until = excluded.claimed_until
RETURNING asset_id, queue, claimed_until
"""
CLAIM = """
UPDATE aio.reprocess_pending
SET claimed_until = now() + $1::interval
WHERE claimed_until IS NULL OR claimed_until < now()
RETURNING asset_id, queue, claimed_until
"""
CLEAR = """
DELETE FROM aio.reprocess_pending p
USING unnest($1::uuid[], $2::text[], $3::timestamptz[]) AS c(asset_id, queue, claimed_until)
WHERE p.asset_id = c.asset_id AND p.queue = c.queue AND p.claimed_until = c.claimed_until
"""
COUNT_PENDING = "SELECT count(DISTINCT asset_id) FROM aio.reprocess_pending"
RELEASE = """
UPDATE aio.reprocess_pending p SET claimed_until = NULL
FROM unnest($1::uuid[], $2::text[], $3::timestamptz[]) AS c(asset_id, queue, claimed_until)
WHERE p.asset_id = c.asset_id AND p.queue = c.queue AND p.claimed_until = c.claimed_until
"""


# Why a photo edited in Immich's editor keeps a result (see sql.EDITED).
KEPT_BECAUSE = {
    OCR_QUEUE: "cropped in Immich's editor: Immich's OCR job would read the unedited photo and show"
    " the cut-out text again",
    CLIP_QUEUE: "edited in Immich's editor: Immich's Smart Search job cannot encode an edited photo",
}


@dataclass
class Started:
    """Queues started now, queues left pending because Immich was already running them, and per
    queue the assets whose result was kept because Immich's job cannot redo them (edited)."""

    started: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)
    kept: dict[str, list[str]] = field(default_factory=dict)


class Reprocessor:
    def __init__(
        self, db: Database, immich_server: ImmichClient, *, admin_key: str, tag: str, claim_for: float
    ) -> None:
        self.db = db
        self.immich_server = immich_server
        self.admin = Credentials.api_key(admin_key) if admin_key else None
        self.tag = tag
        self.claim_for = timedelta(seconds=claim_for)
        self._admin_id: str | None = None

    def require_admin(self) -> Credentials:
        if self.admin is None:
            raise Unavailable(
                "Re-processing needs IMMICH_ADMIN_API_KEY: an API key of an Immich admin, to start Immich's jobs.",
            )
        return self.admin

    async def reprocess(self, asset_ids: list[uuid.UUID], *, ocr: bool, clip: bool) -> Started:
        """Reset and queue, except what Immich's jobs cannot redo for an edited photo (kept)."""
        self.require_admin()
        async with self.db.use(FEATURE) as (pool, facts), pool.acquire() as conn, conn.transaction():
            edited: dict[uuid.UUID, bool] = {}
            if facts.columns.asset_is_edited:
                edited = {row["asset_id"]: row["cropped"] for row in await conn.fetch(sql.EDITED, asset_ids)}
            plan = {
                OCR_QUEUE: [a for a in asset_ids if not edited.get(a)] if ocr else None,
                CLIP_QUEUE: [a for a in asset_ids if a not in edited] if clip else None,
            }
            resets = {OCR_QUEUE: sql.RESET_OCR, CLIP_QUEUE: sql.RESET_CLIP}
            claimed: list[Any] = []
            for queue, ids in plan.items():
                if ids:
                    await conn.execute(resets[queue], ids)
                    claimed += await conn.fetch(NOTE_CLAIMED, ids, [queue], self.claim_for)
        outcome = await self._start(claimed)
        for queue, ids in plan.items():
            kept = [str(a) for a in asset_ids if ids is not None and a not in ids]
            if kept:
                outcome.kept[queue] = kept
        log.info("re-processing queued", extra={"assets": len(asset_ids), **outcome.__dict__})
        return outcome

    async def start_pending(self) -> Started:
        """Claim the pending resets no one holds, start their queues, clear them."""
        self.require_admin()
        async with self.db.use(FEATURE) as (pool, _):
            claimed = await pool.fetch(CLAIM, self.claim_for)
        return await self._start(claimed)

    async def _start(self, claimed: list[Any]) -> Started:
        """Start the queues of the `claimed` rows; clear the rows of those started."""
        admin = self.require_admin()
        outcome = Started()
        for queue in dict.fromkeys(row["queue"] for row in claimed):
            try:
                await self.immich_server.start_job(queue, admin)
                outcome.started.append(queue)
                metrics.REPROCESS_STARTED.labels(queue).inc()
            except JobNotStarted:
                outcome.pending.append(queue)
            except ApiError:
                await self._settle(claimed, clear=outcome.started)
                raise
        await self._settle(claimed, clear=outcome.started)
        async with self.db.use(FEATURE) as (pool, _):
            metrics.REPROCESS_PENDING.set(await pool.fetchval(COUNT_PENDING))
        return outcome

    async def _settle(self, claimed: list[Any], clear: list[str]) -> None:
        """Clear the claimed rows of the queues started; release the others for a later try."""
        done = [row for row in claimed if row["queue"] in clear]
        left = [row for row in claimed if row["queue"] not in clear]
        async with self.db.use(FEATURE) as (pool, _), pool.acquire() as conn, conn.transaction():
            for statement, rows in ((CLEAR, done), (RELEASE, left)):
                if rows:
                    await conn.execute(statement, *_columns(rows))

    async def process_tagged(self) -> int:
        """Re-process every asset carrying the re-process tag, then remove the tag."""
        admin = self.require_admin()
        async with self.db.use(FEATURE) as (pool, facts):
            tagged = await pool.fetch(sql.tagged(facts.columns), self.tag)
        if not tagged:
            return 0
        assets = list(dict.fromkeys(row["asset_id"] for row in tagged))
        outcome = await self.reprocess(assets, ocr=True, clip=True)
        for queue, kept in outcome.kept.items():
            log.warning(
                "tagged photos kept their result", extra={"queue": queue, "assets": kept, "why": KEPT_BECAUSE[queue]}
            )
        admin_id = await self._admin_user_id(admin)
        by_api: dict[str, list[str]] = {}
        for row in tagged:
            if str(row["tag_owner"]) == admin_id:
                by_api.setdefault(str(row["tag_id"]), []).append(str(row["asset_id"]))
        for tag_id, ids in by_api.items():
            await self.immich_server.untag(tag_id, ids, admin)
        in_sql = [row for row in tagged if str(row["tag_owner"]) != admin_id]
        if in_sql:
            async with self.db.use(FEATURE) as (pool, facts), pool.acquire() as conn, conn.transaction():
                for statement in sql.untag(facts.columns):
                    await conn.execute(
                        statement,
                        [row["asset_id"] for row in in_sql],
                        [row["tag_id"] for row in in_sql],
                        [row["value"] for row in in_sql],
                    )
        return len(assets)

    async def _admin_user_id(self, admin: Credentials) -> str:
        if self._admin_id is None:
            self._admin_id = str((await self.immich_server.me(admin))["id"])
        return self._admin_id

    async def loop_step(self) -> None:
        """The background loop: start what is pending, then handle tagged photos."""
        started = await self.start_pending()
        if started.started:
            log.info("re-processing resumed", extra={"queues": started.started})
        await self.process_tagged()


def _columns(rows: list[Any]) -> tuple[list[Any], list[Any], list[Any]]:
    return [r["asset_id"] for r in rows], [r["queue"] for r in rows], [r["claimed_until"] for r in rows]
