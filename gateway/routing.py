"""Which backend serves each task of a /predict request, and the CLIP dimension guard."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from aio_common import protocol as p
from aio_common.http import ApiError
from gateway.backends import Backend, BackendReply
from gateway.clip_models import CLIP_DIMENSIONS, SUGGESTED_NAME, names_with_dimension
from gateway.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class ServedClip:
    """The CLIP model the AI service serves, read from its /info."""

    model: str | None = None
    dimension: int | None = None

    def fitting_names(self) -> list[str]:
        return names_with_dimension(self.dimension) if self.dimension else []


@dataclass
class Part:
    """The tasks of one request that go to one backend."""

    backend: Backend
    entries: p.Entries


class Router:
    def __init__(self, settings: Settings, ai: Backend, immich: Backend) -> None:
        self.settings = settings
        self.ai = ai
        self.immich = immich
        self.clip = ServedClip()
        self.refused_clip_name: str | None = None

    def backend_for(self, task: str) -> Backend:
        chosen = {p.CLIP: self.settings.clip_backend, p.OCR: self.settings.ocr_backend}.get(task, "immich")
        return self.ai if chosen == "ai" else self.immich

    def plan(self, entries: p.Entries) -> list[Part]:
        parts: dict[str, Part] = {}
        for task, types in entries.items():
            backend = self.backend_for(task)
            parts.setdefault(backend.name, Part(backend, {})).entries[task] = types
        return list(parts.values())

    def guard_clip(self, entries: p.Entries) -> None:
        """Refuse a CLIP model name whose dimension differs from the served model's."""
        if p.CLIP not in entries or self.backend_for(p.CLIP) is not self.ai or self.clip.dimension is None:
            return
        for config in entries[p.CLIP].values():
            wanted = CLIP_DIMENSIONS.get(config.modelName)
            if wanted is not None and wanted != self.clip.dimension:
                self.refused_clip_name = config.modelName
                raise ApiError(
                    422,
                    f"CLIP model {config.modelName} has {wanted} dimensions, but the AI service serves "
                    f"Chinese-CLIP {self.clip.model} with {self.clip.dimension}: choose one of "
                    f"{', '.join(self.clip.fitting_names())} in Immich's smart search settings.",
                )

    async def send(self, part: Part, body: bytes, content_type: str) -> BackendReply:
        try:
            return await part.backend.post("/predict", content=body, content_type=content_type)
        except ApiError as exc:
            if not (self.settings.ocr_fallback and part.backend is self.ai and set(part.entries) == {p.OCR}):
                raise
            log.warning("OCR falls back to the stock Immich ML server", extra={"error": exc.message})
            return await self.immich.post("/predict", content=body, content_type=content_type)

    async def predict(
        self, entries: p.Entries, body: bytes, content_type: str, payload: dict[str, Any]
    ) -> BackendReply:
        """Send each part to its backend (concurrently) and merge; any failure fails the whole request.

        `body` is the original request, forwarded untouched when one backend serves everything;
        otherwise each backend gets `payload` (the image or text) with its subset of the entries.
        """
        self.guard_clip(entries)
        parts = self.plan(entries)
        if len(parts) == 1:
            return await self.send(parts[0], body, content_type)
        replies = await asyncio.gather(*(self.send(part, *p.predict_body(part.entries, **payload)) for part in parts))
        for reply in replies:
            if reply.status >= 400:
                return reply
        merged = p.merge_answers([orjson.loads(reply.content) for reply in replies])
        return BackendReply(200, orjson.dumps(merged), "application/json")

    async def refresh_clip_info(self) -> None:
        """Read the served CLIP model and dimension from a healthy AI replica's /info."""
        for replica in sorted(self.ai.replicas, key=lambda r: not r.healthy):
            try:
                clip = (await self.ai.get_json(replica, "/info"))["clip"]
            except (aiohttp.ClientError, asyncio.TimeoutError, ValueError, KeyError, TypeError) as exc:
                replica.last_error = f"/info failed: {exc!r}"
                continue
            changed = (clip["model"], clip["dimension"]) != (self.clip.model, self.clip.dimension)
            self.clip = ServedClip(clip["model"], clip["dimension"])
            if changed:
                log.warning(
                    "AI service serves Chinese-CLIP %s (%s dimensions): set Immich's CLIP model to %s "
                    "(any of %s fits); other dimensions are refused",
                    self.clip.model,
                    self.clip.dimension,
                    SUGGESTED_NAME.get(self.clip.model or "", "a name of that dimension"),
                    ", ".join(self.clip.fitting_names()),
                )
            return
