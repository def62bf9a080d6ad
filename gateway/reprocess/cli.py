"""`python -m gateway reprocess ASSET_ID... [--ocr] [--clip] | --all-missing`: for operators."""

from __future__ import annotations

import argparse
import asyncio
import uuid

from aio_common.errors import ApiError, Unavailable
from gateway.immich import sql
from gateway.immich.api import JobNotStarted
from gateway.reprocess.service import CLIP_QUEUE, FEATURE, OCR_QUEUE
from gateway.services import Services
from gateway.settings import Settings


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m gateway reprocess", description=__doc__)
    parser.add_argument("assets", nargs="*", help="asset ids to re-process")
    parser.add_argument("--ocr", action="store_true", help="regenerate OCR text (default: both)")
    parser.add_argument("--clip", action="store_true", help="regenerate the CLIP vector (default: both)")
    parser.add_argument("--all-missing", action="store_true", help="queue every asset that has no result")
    args = parser.parse_args(argv)
    if not args.assets and not args.all_missing:
        parser.error("name asset ids, or --all-missing")
    try:
        ids = [uuid.UUID(a) for a in args.assets]
    except ValueError as exc:
        parser.error(f"not an asset id: {exc}")
    both = not (args.ocr or args.clip)
    try:
        asyncio.run(_run(Settings(), ids, args.all_missing, ocr=both or args.ocr, clip=both or args.clip))
    except ApiError as exc:
        raise SystemExit(f"error: {exc.message}") from None


async def _run(settings: Settings, ids: list[uuid.UUID], all_missing: bool, *, ocr: bool, clip: bool) -> None:
    services = Services(settings)
    try:
        reprocessor = services.reprocessor
        admin = reprocessor.require_admin()
        try:
            await services.db.ensure()
        except Exception:
            raise Unavailable(f"{FEATURE} is unavailable: {services.db.error}") from None
        if ids:
            outcome = await reprocessor.reprocess(ids, ocr=ocr, clip=clip)
            print(f"{len(ids)} assets reset; queues started: {', '.join(outcome.started) or 'none'}")
            if outcome.pending:
                print(f"already running, started again later by the gateway: {', '.join(outcome.pending)}")
        if all_missing:
            async with services.db.use(FEATURE) as (pool, facts):
                counts = {
                    OCR_QUEUE: await pool.fetchval(sql.MISSING_OCR),
                    CLIP_QUEUE: await pool.fetchval(sql.missing_clip(facts)),
                }
            for queue, count in counts.items():
                if (queue == OCR_QUEUE and ocr) or (queue == CLIP_QUEUE and clip):
                    try:
                        await services.immich.start_job(queue, admin)
                    except JobNotStarted:
                        print(f"{queue}: already running; its {count} assets without a result are picked up by it")
                    else:
                        print(f"{queue}: {count} assets without a result queued")
    finally:
        await services.close()
