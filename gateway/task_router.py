"""Which backend serves each task of a /predict request: CLIP and OCR to the AI service (or, by
CLIP_BACKEND and OCR_BACKEND, the stock Immich ML server), faces and everything else to the stock
server. One backend's part is forwarded as received; a split request is sent to both at once
and the answers merged. CLIP to the AI service passes the dimension guard first (clip_guard.py);
a request the AI service fails leaves Immich without results, which the healer is told."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

import orjson

from aio_common import protocol
from aio_common.errors import ApiError, BackendFailed, ImageUndecodable
from aio_common.image_formats import looks_like_image
from gateway import metrics
from gateway.backends import Backend, BackendReply
from gateway.clip_guard import ClipGuard
from gateway.heal import Healer
from gateway.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class Part:
    """The tasks of one request that go to one backend."""

    backend: Backend
    entries: protocol.Entries


class TaskRouter:
    def __init__(self, settings: Settings, ai: Backend, stock_ml: Backend, guard: ClipGuard, healer: Healer) -> None:
        self.settings = settings
        self.ai = ai
        self.stock_ml = stock_ml
        self.guard = guard
        self.healer = healer

    def backend_for(self, task: str) -> Backend:
        chosen = {protocol.CLIP: self.settings.clip_backend, protocol.OCR: self.settings.ocr_backend}.get(
            task, "immich"
        )
        return self.ai if chosen == "ai" else self.stock_ml

    def plan(self, entries: protocol.Entries) -> list[Part]:
        parts: dict[str, Part] = {}
        for task, types in entries.items():
            backend = self.backend_for(task)
            parts.setdefault(backend.name, Part(backend, {})).entries[task] = types
        return list(parts.values())

    async def predict(
        self, entries: protocol.Entries, body: bytes, content_type: str, payload: dict[str, Any]
    ) -> BackendReply:
        """Send each part to its backend (concurrently) and merge; any failure fails the whole request.

        `body` is the original request, forwarded untouched when one backend serves everything;
        otherwise each backend gets `payload` (the image or text) with its subset of the entries.
        """
        guarded = protocol.CLIP in entries and self.backend_for(protocol.CLIP) is self.ai
        dimension = await self.guard.dimension_for(entries[protocol.CLIP]) if guarded else None
        parts = self.plan(entries)
        image = payload.get("image")
        if image is not None and any(part.backend is self.stock_ml for part in parts) and not looks_like_image(image):
            raise ImageUndecodable("The image could not be decoded: not a known image format.")
        if len(parts) == 1:
            return await self._send(parts[0], body, content_type, dimension)
        replies = await asyncio.gather(
            *(self._send(part, *protocol.predict_body(part.entries, **payload), dimension) for part in parts)
        )
        for reply in replies:
            if reply.status >= 400:
                return reply
        merged = protocol.merge_answers(
            [_json(reply, part.backend.name) for reply, part in zip(replies, parts, strict=True)]
        )
        return BackendReply(200, orjson.dumps(merged), "application/json")

    async def clip_text(self, text: str, model_name: str, language: str | None) -> BackendReply:
        """A text's CLIP vector as Immich asks for one (a smart search's query)."""
        options = {"language": language} if language else {}
        entries = protocol.parse_entries(
            orjson.dumps({protocol.CLIP: {protocol.TEXTUAL: {"modelName": model_name, "options": options}}})
        )
        body, content_type = protocol.predict_body(entries, text=text)
        return await self.predict(entries, body, content_type, {"text": text})

    async def _send(self, part: Part, body: bytes, content_type: str, dimension: int | None) -> BackendReply:
        try:
            reply = await self._post_noting_failures(part, body, content_type)
        except ApiError as exc:
            if not (self.settings.ocr_fallback and part.backend is self.ai and set(part.entries) == {protocol.OCR}):
                raise
            log.warning("OCR falls back to the stock Immich ML server", extra={"error": exc.message})
            metrics.FALLBACKS.labels(protocol.OCR).inc()
            reply = await _post(self.stock_ml, part.entries, body, content_type)
        if dimension is not None and protocol.CLIP in part.entries and reply.status == 200:
            try:
                self.guard.check_length(_json(reply, self.ai.name), dimension)
            except ApiError:
                self.healer.note_missing(list(part.entries))
                raise
        return reply

    async def _post_noting_failures(self, part: Part, body: bytes, content_type: str) -> BackendReply:
        try:
            reply = await _post(part.backend, part.entries, body, content_type)
        except ApiError as exc:
            if part.backend is self.ai and exc.status >= 500:
                self.healer.note_missing(list(part.entries))
            raise
        if part.backend is self.ai and reply.status >= 500:
            self.healer.note_missing(list(part.entries))
        return reply


async def _post(backend: Backend, entries: protocol.Entries, body: bytes, content_type: str) -> BackendReply:
    """POST /predict to `backend`, counted and timed for each task of the part."""
    tasks = [metrics.task_label(task) for task in entries]
    started = time.perf_counter()
    status = "error"  # no answer: unreachable or timed out
    try:
        reply = await backend.post("/predict", content=body, content_type=content_type)
        status = str(reply.status)
        return reply
    finally:
        seconds = time.perf_counter() - started
        for task in tasks:
            metrics.PREDICT.labels(task, backend.name, status).inc()
            metrics.PREDICT_SECONDS.labels(task, backend.name).observe(seconds)


def _json(reply: BackendReply, backend: str) -> dict[str, Any]:
    """A backend's 2xx answer as a JSON object; anything else is the backend's fault (502)."""
    try:
        answer = orjson.loads(reply.content)
    except orjson.JSONDecodeError:
        answer = None
    if not isinstance(answer, dict):
        raise BackendFailed(f"{backend} answered {reply.status} with a body that is not a JSON object.")
    return answer
