"""What a smart search ranks by, computed as Immich computes it: Immich's smart-search settings
and the query's CLIP vector (the words' text embedding from the ML URL, which is this gateway,
or the example asset's stored vector).

Used by a smart search with `ocr`, whose CLIP ranking is restricted to the word index's matches
and done in the database; anything Immich would refuse (smart search off, an example asset the
caller may not read or that has no vector, an encoding that fails) makes the caller hand the
request to Immich, whose own answer then names the fault.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import asyncpg
import orjson

from aio_common import protocol
from aio_common.errors import ApiError
from gateway.immich.api import Credentials, ImmichClient
from gateway.immich.dto import RankedSmartSearch
from gateway.immich.sql import ASSET_EMBEDDING, SYSTEM_CONFIG, saved_config
from gateway.task_router import TaskRouter

log = logging.getLogger(__name__)

# Immich's default CLIP model (config.ts, 2.x and 3.x alike), used when the admin saved none.
DEFAULT_CLIP_MODEL = "ViT-B-32__openai"
# Text embeddings kept, as Immich keeps them (its embedding cache) for paging through results.
CACHED_EMBEDDINGS = 100


@dataclass(frozen=True)
class SmartSearchConfig:
    enabled: bool
    model_name: str

    @classmethod
    def of(cls, saved: Any) -> SmartSearchConfig:
        """From Immich's saved system config (JSON text or None): what differs from the defaults."""
        ml = saved_config(saved).get("machineLearning") or {}
        clip = ml.get("clip") or {}
        enabled = ml.get("enabled", True) is not False and clip.get("enabled", True) is not False
        return cls(enabled, str(clip.get("modelName") or DEFAULT_CLIP_MODEL))


class QueryVectors:
    """The vector a smart search ranks by, or None where Immich would not rank (it says why)."""

    def __init__(self, tasks: TaskRouter, immich_server: ImmichClient) -> None:
        self.tasks = tasks
        self.immich_server = immich_server
        self._texts: OrderedDict[tuple[str, str, str | None], str] = OrderedDict()

    async def of(self, pool: asyncpg.Pool, dto: RankedSmartSearch, caller: Credentials) -> str | None:
        config = SmartSearchConfig.of(await pool.fetchval(SYSTEM_CONFIG))
        if not config.enabled:
            return None
        if dto.query:
            return await self._text(dto.query, dto.language, config.model_name)
        if dto.queryAssetId is None or not await self.immich_server.assets([str(dto.queryAssetId)], caller):
            return None
        stored = await pool.fetchval(ASSET_EMBEDDING, dto.queryAssetId)
        return str(stored) if stored is not None else None

    async def _text(self, text: str, language: str | None, model_name: str) -> str | None:
        key = (model_name, text, language)
        if key in self._texts:
            self._texts.move_to_end(key)
            return self._texts[key]
        try:
            reply = await self.tasks.clip_text(text, model_name, language)
        except ApiError as exc:
            log.info("smart search with ocr: the query's CLIP encoding failed", extra={"error": exc.message})
            return None
        if reply.status != 200:
            log.info("smart search with ocr: the query's CLIP encoding answered %s", reply.status)
            return None
        vector = orjson.loads(reply.content).get(protocol.CLIP)
        if not isinstance(vector, str):
            return None
        self._texts[key] = vector
        if len(self._texts) > CACHED_EMBEDDINGS:
            self._texts.popitem(last=False)
        return vector
