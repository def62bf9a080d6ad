"""`python -m gateway reprocess ASSET_ID... [--ocr] [--clip] | --all-missing [--no-wait]`: for
operators. `--all-missing` starts Immich's queues, then follows them until every asset has its
result (progress on a terminal, log lines elsewhere); Ctrl-C stops following, not the queues."""

from __future__ import annotations

import argparse
import asyncio
import logging
import time
import uuid

from aio_common.errors import ApiError, Unavailable
from aio_common.progress import Progress
from gateway.immich import sql
from gateway.immich.api import JobNotStarted
from gateway.parts import Parts
from gateway.reprocess.service import CLIP_QUEUE, FEATURE, KEPT_BECAUSE, OCR_QUEUE
from gateway.settings import Settings

log = logging.getLogger(__name__)

FOLLOW_EVERY_S = 5.0
# Nothing done for this long: Immich's queue ended with failures or was paused.
STALL_AFTER_S = 300.0


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="immich-gateway reprocess", description=__doc__)
    parser.add_argument("assets", nargs="*", help="asset ids to re-process")
    parser.add_argument("--ocr", action="store_true", help="regenerate OCR text (default: both)")
    parser.add_argument("--clip", action="store_true", help="regenerate the CLIP vector (default: both)")
    parser.add_argument("--all-missing", action="store_true", help="queue every asset that has no result")
    parser.add_argument("--no-wait", action="store_true", help="with --all-missing: start the queues and return")
    args = parser.parse_args(argv)
    if not args.assets and not args.all_missing:
        parser.error("name asset ids, or --all-missing")
    try:
        ids = [uuid.UUID(a) for a in args.assets]
    except ValueError as exc:
        parser.error(f"not an asset id: {exc}")
    both = not (args.ocr or args.clip)
    try:
        asyncio.run(
            run(
                Settings(),
                ids,
                args.all_missing,
                ocr=both or args.ocr,
                clip=both or args.clip,
                follow_every=None if args.no_wait else FOLLOW_EVERY_S,
            )
        )
    except ApiError as exc:
        raise SystemExit(f"error: {exc.message}") from None
    except KeyboardInterrupt:
        raise SystemExit("stopped following; Immich's queues keep running") from None


async def run(
    settings: Settings,
    ids: list[uuid.UUID],
    all_missing: bool,
    *,
    ocr: bool,
    clip: bool,
    follow_every: float | None,
    stall_after: float = STALL_AFTER_S,
) -> None:
    parts = Parts(settings)
    try:
        reprocessor = parts.reprocessor
        admin = reprocessor.require_admin()
        try:
            await parts.db.ensure()
        except Exception:
            raise Unavailable(f"{FEATURE} is unavailable: {parts.db.error}") from None
        if ids:
            outcome = await reprocessor.reprocess(ids, ocr=ocr, clip=clip)
            print(f"{len(ids)} assets reset; queues started: {', '.join(outcome.started) or 'none'}")
            for queue, kept in outcome.kept.items():
                print(f"{queue} kept for {len(kept)} assets, {KEPT_BECAUSE[queue]}: {' '.join(kept)}")
            if outcome.pending:
                print(f"already running, started again later by the gateway: {', '.join(outcome.pending)}")
        if all_missing:
            queues = [queue for queue, wanted in ((OCR_QUEUE, ocr), (CLIP_QUEUE, clip)) if wanted]
            counts = await _missing(parts, queues)
            for queue, count in counts.items():
                try:
                    await parts.immich_server.start_job(queue, admin)
                except JobNotStarted:
                    print(f"{queue}: already running; its {count} assets without a result are picked up by it")
                else:
                    print(f"{queue}: {count} assets without a result queued")
            if follow_every is not None:
                await _follow(parts, counts, follow_every, stall_after)
    finally:
        await parts.close()


async def _missing(parts: Parts, queues: list[str]) -> dict[str, int]:
    async with parts.db.use(FEATURE) as (pool, facts):
        statements = {OCR_QUEUE: sql.MISSING_OCR, CLIP_QUEUE: sql.missing_clip(facts)}
        return {queue: int(await pool.fetchval(statements[queue])) for queue in queues}


async def _follow(parts: Parts, counts: dict[str, int], every: float, stall_after: float) -> None:
    """Watch the assets without a result go down until none is left, or nothing moved for
    `stall_after` seconds (Immich's queue ended with failures, or was paused)."""
    total = sum(counts.values())
    progress = Progress("re-processing", total, "results", log=log)
    left, moved_at = total, time.monotonic()
    while left > 0:
        await asyncio.sleep(every)
        now_left = sum((await _missing(parts, list(counts))).values())
        if now_left < left:
            moved_at = time.monotonic()
        elif time.monotonic() - moved_at >= stall_after:
            progress.finish()
            print(
                f"results still missing: {now_left}, and none was made in {stall_after:g} s: see the failed "
                "jobs in Immich (Administration, Jobs); stopped following"
            )
            return
        left = now_left
        progress.update(max(total - left, 0))
    progress.finish()
    print("every asset has its result")
