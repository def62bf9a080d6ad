"""Self-healing after an outage of the AI service.

Immich runs each machine-learning job once: a photo whose OCR or smart-search job failed while
the AI service was down keeps no result until someone starts the queue again. The gateway sees
both sides, so it does that itself: each CLIP or OCR request that failed on the AI service's side
(5xx, unreachable, timed out) marks its queue as owed, and so does the first CLIP request that
passes after CLIP requests were refused (a CLIP model name of another dimension, now fixed).
Once the AI service answers its health check, the owed queues are started without force, so
Immich picks exactly the photos missing a result. They are owed once at start too, for what
failed while the gateway itself was down. A queue Immich is still running stays owed and is
started at a later step. Needs IMMICH_ADMIN_API_KEY.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any

from aio_common import protocol
from gateway.immich.api import Credentials, ImmichClient, JobNotStarted

log = logging.getLogger(__name__)

# Immich's queue that computes each task's result.
QUEUES = {protocol.OCR: "ocr", protocol.CLIP: "smartSearch"}


class Healer:
    def __init__(self, immich_server: ImmichClient, admin: Credentials | None) -> None:
        self.immich_server = immich_server
        self.admin = admin
        self.owed: set[str] = set(QUEUES.values())
        self.missed = 0
        self.last_started: datetime | None = None

    def note_missing(self, tasks: list[str]) -> None:
        """Immich went without these tasks' results for some photo."""
        owed = {QUEUES[task] for task in tasks if task in QUEUES}
        if owed:
            self.missed += 1
            self.owed |= owed

    async def step(self, ai_up: bool) -> None:
        """Start the owed queues once the AI service is up; ApiError when Immich cannot be asked."""
        if self.admin is None or not self.owed or not ai_up:
            return
        for queue in sorted(self.owed):
            try:
                await self.immich_server.start_job(queue, self.admin)
            except JobNotStarted:
                continue  # still running: started again at a later step
            self.owed.discard(queue)
            self.last_started = datetime.now(timezone.utc)
            log.info("started Immich's %s queue for photos missing a result", queue)

    def state(self) -> dict[str, Any]:
        return {
            "enabled": self.admin is not None,
            "owedQueues": sorted(self.owed) if self.admin else [],
            "requestsWithoutResults": self.missed,
            "lastStarted": self.last_started.isoformat() if self.last_started else None,
        }
