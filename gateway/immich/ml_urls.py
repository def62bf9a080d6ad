"""Immich's list of machine-learning URLs, checked for a fallback that would mix CLIP models.

Immich sends each request to the first healthy URL of its list (`machineLearning.urls`, saved in
the admin settings; without a saved list, IMMICH_MACHINE_LEARNING_URL alone) and falls back to
the next when one fails. A URL after this gateway that is not a gateway of ours (the stock
server, typically) gets Immich's smart-search jobs whenever the gateway is down, so vectors of
another CLIP model land in the same table and search quietly degrades. Each URL is asked `GET /`,
whose answer tells a gateway of ours from anything else. One WARNING per change, and /health.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx

from aio_common.logs import redact
from gateway.immich.db import Database
from gateway.immich.sql import SYSTEM_CONFIG, saved_config

log = logging.getLogger(__name__)

# The start of what this gateway's `GET /` answers (app.py), and so how it knows its own kind.
GATEWAY_MESSAGE = "Immich ML gateway"


def saved_urls(saved: Any) -> list[str] | None:
    """The URL list in Immich's saved system config (JSON text), or None where none is saved
    (Immich saves only what differs from its defaults: then it uses IMMICH_MACHINE_LEARNING_URL)."""
    urls = (saved_config(saved).get("machineLearning") or {}).get("urls")
    return [str(url) for url in urls] if isinstance(urls, list) else None


class MlUrlCheck:
    def __init__(self, db: Database, timeout: float) -> None:
        self.db = db
        self.client = httpx.AsyncClient(timeout=timeout)
        self.urls: list[str] | None = None
        self.others_after_ours: list[str] = []

    @property
    def warning(self) -> str | None:
        if not self.others_after_ours:
            return None
        return (
            f"Immich's machine-learning URLs list {', '.join(self.others_after_ours)} after this gateway: "
            "whenever the gateway is down, Immich's smart-search jobs go there and store another CLIP "
            "model's vectors beside ours. List only the gateway (Administration > Settings > Machine Learning)"
        )

    async def step(self) -> None:
        """Read Immich's saved list and ask each URL what it is; Unavailable without the database."""
        async with self.db.use("the machine-learning URL check") as (pool, _):
            urls = saved_urls(await pool.fetchval(SYSTEM_CONFIG))
        others: list[str] = []
        if urls:
            kinds = [await self._is_gateway(url) for url in urls]
            if True in kinds:
                first = kinds.index(True)
                others = [url for url, ours in zip(urls[first + 1 :], kinds[first + 1 :], strict=True) if not ours]
        before = self.warning
        # As /health and the log show them: a URL's password is Immich's secret, not ours to show.
        self.urls = [redact(url) for url in urls] if urls is not None else None
        self.others_after_ours = [redact(url) for url in others]
        if self.warning != before:
            if self.warning:
                log.warning(self.warning)
            else:
                log.info("Immich's machine-learning URLs list no other server after this gateway")

    async def _is_gateway(self, url: str) -> bool:
        try:
            answer = await self.client.get(url.rstrip("/") + "/")
            message = answer.json().get("message", "")
        except (httpx.HTTPError, ValueError, AttributeError):
            return False  # unreachable or not JSON: not a gateway of ours
        return isinstance(message, str) and message.startswith(GATEWAY_MESSAGE)

    def state(self) -> dict[str, Any]:
        return {"urls": self.urls, "othersAfterGateway": self.others_after_ours, "warning": self.warning}

    async def close(self) -> None:
        await self.client.aclose()
