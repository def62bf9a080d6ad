"""Re-processing one asset's OCR text or CLIP vector through Immich's own jobs.

Reset the asset's result in Immich's tables (ocrAt to NULL; its smart_search row deleted) and,
in the same transaction, note the queues to start in `aio.reprocess_pending`; then start those
queues without force (Immich recomputes exactly the missing results through our /predict and
writes its own tables); then clear the note. A crash between reset and queue start leaves the
note, and the background loop starts the queues again. Photos tagged REPROCESS_TAG in Immich's
UI are re-processed by the same loop, and untagged only after their queues are started.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import uuid
from typing import Any

import asyncpg
from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, ValidationError

from aio_common.http import ApiError, JsonResponse
from gateway.search import immich_sql
from gateway.search.immich_api import ImmichRefused, credentials_of
from gateway.search.service import DATABASE_ERRORS, SearchService
from gateway.settings import Settings

log = logging.getLogger(__name__)
router = APIRouter()

OCR_QUEUE = "ocr"
CLIP_QUEUE = "smartSearch"


class ReprocessRequest(BaseModel):
    ocr: bool = True
    clip: bool = True


class Reprocessor:
    def __init__(self, service: SearchService) -> None:
        self.service = service
        self.admin_key = service.settings.immich_admin_api_key

    def require_admin_key(self) -> str:
        if not self.admin_key:
            raise ApiError(
                503,
                "Re-processing needs IMMICH_ADMIN_API_KEY: an API key of an Immich admin, to start Immich's jobs.",
            )
        return self.admin_key

    async def reprocess(self, asset_ids: list[uuid.UUID], *, ocr: bool, clip: bool) -> list[str]:
        """Reset and queue; returns the queues asked for."""
        admin_key = self.require_admin_key()
        queues = [queue for queue, wanted in ((OCR_QUEUE, ocr), (CLIP_QUEUE, clip)) if wanted]
        async with self.service.database() as index, index.pool.acquire() as conn:
            async with conn.transaction():
                if ocr:
                    await conn.execute(immich_sql.RESET_OCR, asset_ids)
                if clip:
                    await conn.execute(immich_sql.RESET_CLIP, asset_ids)
                await conn.execute(
                    "INSERT INTO aio.reprocess_pending (asset_id, queue)"
                    " SELECT a, q FROM unnest($1::uuid[]) a, unnest($2::text[]) q ON CONFLICT DO NOTHING",
                    asset_ids,
                    queues,
                )
            await self._start_pending(conn, admin_key, asset_ids)
        log.info("re-processing queued", extra={"assets": len(asset_ids), "queues": queues})
        return queues

    async def resume_pending(self) -> None:
        """Start the queues of resets whose queue start was not confirmed (a crash, Immich down)."""
        async with self.service.database() as index, index.pool.acquire() as conn:
            started = await self._start_pending(conn, self.require_admin_key())
        if started:
            log.info("re-processing resumed", extra={"queues": started})

    async def _start_pending(
        self, conn: asyncpg.Connection, admin_key: str, asset_ids: list[uuid.UUID] | None = None
    ) -> list[str]:
        """Start the queues of pending resets (of `asset_ids`, or all) and clear them. The rows
        stay locked until then, so a request and the background loop never both start a queue
        for the same reset: each queue start is sent once."""
        async with conn.transaction():
            rows = await conn.fetch(
                "SELECT asset_id, queue FROM aio.reprocess_pending"
                " WHERE $1::uuid[] IS NULL OR asset_id = ANY($1::uuid[]) FOR UPDATE SKIP LOCKED",
                asset_ids,
            )
            queues = list(dict.fromkeys(row["queue"] for row in rows))
            for queue in queues:
                await self.service.immich.start_queue(queue, admin_key)
            await conn.execute(
                "DELETE FROM aio.reprocess_pending p USING unnest($1::uuid[], $2::text[]) AS d(asset_id, queue)"
                " WHERE p.asset_id = d.asset_id AND p.queue = d.queue",
                [row["asset_id"] for row in rows],
                [row["queue"] for row in rows],
            )
        return queues

    async def process_tagged(self) -> int:
        async with self.service.database() as index:
            tagged = await index.pool.fetch(immich_sql.TAGGED, self.service.settings.reprocess_tag)
        if not tagged:
            return 0
        assets = list(dict.fromkeys(row["asset_id"] for row in tagged))
        await self.reprocess(assets, ocr=True, clip=True)
        async with self.service.database() as index:
            await index.pool.execute(
                immich_sql.UNTAG, [row["asset_id"] for row in tagged], [row["tag_id"] for row in tagged]
            )
        return len(assets)

    async def run_forever(self) -> None:
        if not self.admin_key:
            log.info("IMMICH_ADMIN_API_KEY is not set: re-processing by tag is off")
            return
        while True:
            await asyncio.sleep(self.service.settings.sync_interval)
            try:
                await self.resume_pending()
                await self.process_tagged()
            except (ApiError, *DATABASE_ERRORS) as exc:
                log.warning("re-processing loop failed; retrying", extra={"error": getattr(exc, "message", str(exc))})


@router.post("/api/ai/assets/{asset_id}/reprocess", status_code=202)
async def reprocess_asset(asset_id: str, request: Request) -> Response:
    reprocessor: Reprocessor = request.app.state.reprocessor
    reprocessor.require_admin_key()
    body = await request.body()
    try:
        wanted = ReprocessRequest.model_validate_json(body) if body.strip() else ReprocessRequest()
    except ValidationError as exc:
        raise ApiError(422, f'Body must be {{"ocr": bool, "clip": bool}}: {exc.errors()[0]["msg"]}') from None
    if not (wanted.ocr or wanted.clip):
        raise ApiError(422, 'Nothing to re-process: set "ocr" or "clip" to true.')
    service = reprocessor.service
    try:
        user = await service.immich.me(credentials_of(request))
    except ImmichRefused as refused:
        return refused.response
    try:
        asset = uuid.UUID(asset_id)
    except ValueError:
        raise ApiError(404, f"Asset {asset_id} not found.") from None
    async with service.database() as index:
        owner = await index.pool.fetchval(immich_sql.ASSET_OWNER, asset)
    if owner is None or (str(owner) != user["id"] and not user.get("isAdmin")):
        raise ApiError(404, f"Asset {asset_id} not found.")
    queued = await reprocessor.reprocess([asset], ocr=wanted.ocr, clip=wanted.clip)
    return JsonResponse({"assetId": asset_id, "queued": queued}, status_code=202)


def cli(argv: list[str]) -> None:
    """`python -m gateway reprocess ASSET_ID... [--ocr] [--clip] | --all-missing`"""
    parser = argparse.ArgumentParser(prog="python -m gateway reprocess", description=cli.__doc__)
    parser.add_argument("assets", nargs="*", help="asset ids to re-process")
    parser.add_argument("--ocr", action="store_true", help="regenerate OCR text (default: both)")
    parser.add_argument("--clip", action="store_true", help="regenerate the CLIP vector (default: both)")
    parser.add_argument("--all-missing", action="store_true", help="queue every asset that has no result")
    args = parser.parse_args(argv)
    if not args.assets and not args.all_missing:
        parser.error("name asset ids, or --all-missing")
    both = not (args.ocr or args.clip)
    asyncio.run(_cli(Settings(), args, ocr=both or args.ocr, clip=both or args.clip))


async def _cli(settings: Settings, args: Any, *, ocr: bool, clip: bool) -> None:
    service = SearchService(settings)
    try:
        reprocessor = Reprocessor(service)
        reprocessor.require_admin_key()
        if args.assets:
            ids = [uuid.UUID(a) for a in args.assets]
            queued = await reprocessor.reprocess(ids, ocr=ocr, clip=clip)
            print(f"{len(ids)} assets reset; queues started: {', '.join(queued)}")
        if args.all_missing:
            async with service.database() as index:
                counts = {
                    OCR_QUEUE: await index.pool.fetchval(immich_sql.MISSING_OCR),
                    CLIP_QUEUE: await index.pool.fetchval(immich_sql.MISSING_CLIP),
                }
            for queue, count in counts.items():
                if (queue == OCR_QUEUE and ocr) or (queue == CLIP_QUEUE and clip):
                    await service.immich.start_queue(queue, reprocessor.require_admin_key())
                    print(f"{queue}: {count} assets without a result queued")
    except ApiError as exc:
        raise SystemExit(f"error: {exc.message}") from None
    finally:
        await service.close()
