"""Which backend serves each task of a /predict request, and the CLIP dimension guard.

The guard fails closed: a CLIP request is passed on only when the name Immich asked for is in
Immich's table and its dimension equals the served model's. While the served dimension is
unknown, the request reads it first (one /info read shared by concurrent requests), else it
gets a 503 (Immich runs each job once: gateway.heal starts its queue again). Every CLIP answer's
length is checked against the name's dimension before it is passed back, so a replica that
changed model is never served under the old dimension, whatever the health loop has seen.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from aio_common import protocol as p
from aio_common.errors import ApiError, BackendFailed, ImageUndecodable, Invalid, Unavailable
from aio_common.image_formats import looks_like_image
from gateway import metrics
from gateway.backends import Backend, BackendReply
from gateway.clip_models import SUGGESTED_NAME, ClipNames
from gateway.settings import Settings

log = logging.getLogger(__name__)

INFO_TIMEOUT = 2.0


@dataclass
class ServedClip:
    """The CLIP model the AI service serves, read from its /info."""

    model: str | None = None
    dimension: int | None = None


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
        self.names = ClipNames(settings.clip_extra_models)
        self.clip = ServedClip()
        # The AI service's bound on the OCR detector's input (Immich's maxResolution has none),
        # and its OCR model: asked for, served, and why the bundled one serves when it does.
        self.max_detection_side: int | None = None
        self.ocr_model: dict[str, Any] = {}
        # The last CLIP refusal's reason (for /health), and the names already logged once.
        self.clip_refusal: str | None = None
        self._refusals_logged: set[str] = set()
        # Told the tasks whose results Immich went without: a request the AI service failed
        # (5xx, unreachable, timed out), and CLIP refused until the first CLIP request passes.
        self.on_missing_results: Callable[[list[str]], None] = lambda tasks: None
        self._reading_info: asyncio.Task[None] | None = None

    def backend_for(self, task: str) -> Backend:
        chosen = {p.CLIP: self.settings.clip_backend, p.OCR: self.settings.ocr_backend}.get(task, "immich")
        return self.ai if chosen == "ai" else self.immich

    def plan(self, entries: p.Entries) -> list[Part]:
        parts: dict[str, Part] = {}
        for task, types in entries.items():
            backend = self.backend_for(task)
            parts.setdefault(backend.name, Part(backend, {})).entries[task] = types
        return list(parts.values())

    def fitting_names(self) -> list[str]:
        return self.names.with_dimension(self.clip.dimension) if self.clip.dimension else []

    async def guard_clip(self, entries: p.Entries) -> int | None:
        """The dimension every CLIP answer of this request must have (None: no CLIP for the AI
        service); 422 for a name that is unknown or of another dimension, 503 while the served
        dimension cannot be learned."""
        if p.CLIP not in entries or self.backend_for(p.CLIP) is not self.ai:
            return None
        for config in entries[p.CLIP].values():
            if self.names.dimension(config.modelName) is None:
                self._refuse(
                    config.modelName,
                    f"CLIP model {config.modelName} is not in Immich's model table, so its dimension is unknown. "
                    f"Choose one of {self._suggestion()} in Immich's smart search settings, or, for a model a "
                    "newer Immich knows, declare it with CLIP_EXTRA_MODELS=name:dimension.",
                )
        try:
            served = await self.served_dimension()
        except Unavailable:
            self.on_missing_results([p.CLIP])
            raise
        for config in entries[p.CLIP].values():
            dimension = self.names.dimension(config.modelName)
            if dimension != served:
                self._refuse(
                    config.modelName,
                    f"CLIP model {config.modelName} has {dimension} dimensions, but the AI service serves "
                    f"Chinese-CLIP {self.clip.model} with {served}: choose one of "
                    f"{', '.join(self.fitting_names())} in Immich's smart search settings.",
                )
        if self.clip_refusal is not None:  # the admin chose a fitting name: the refused photos are owed
            self.clip_refusal = None
            self.on_missing_results([p.CLIP])
        return served

    def _refuse(self, name: str, reason: str) -> None:
        """422 with `reason`. Immich shows no ML error body, so the reason is logged (once per
        name) and kept for /health until a CLIP request passes."""
        self.clip_refusal = reason
        if name not in self._refusals_logged:
            self._refusals_logged.add(name)
            log.warning("CLIP request refused: %s", reason)
        raise Invalid(reason)

    def _suggestion(self) -> str:
        return ", ".join(self.fitting_names()) if self.clip.dimension else "the names /health lists"

    async def served_dimension(self) -> int:
        """The served dimension, reading /info first when it is unknown."""
        if self.clip.dimension is None:
            if self._reading_info is None or self._reading_info.done():
                self._reading_info = asyncio.ensure_future(self.refresh_clip_info())
            await asyncio.shield(self._reading_info)
        if self.clip.dimension is None:
            errors = "; ".join(f"{r.url}: {r.last_error}" for r in self.ai.replicas if r.last_error)
            raise Unavailable(
                f"{self.ai.name}'s CLIP model is not known ({errors or 'no replica answered /info'}), so the "
                "dimension of the vectors cannot be checked; try again shortly.",
            )
        return self.clip.dimension

    async def send(self, part: Part, body: bytes, content_type: str, dimension: int | None) -> BackendReply:
        try:
            reply = await self._post_noting_failures(part, body, content_type)
        except ApiError as exc:
            if not (self.settings.ocr_fallback and part.backend is self.ai and set(part.entries) == {p.OCR}):
                raise
            log.warning("OCR falls back to the stock Immich ML server", extra={"error": exc.message})
            metrics.FALLBACKS.labels(p.OCR).inc()
            reply = await _post(self.immich, part.entries, body, content_type)
        if dimension is not None and p.CLIP in part.entries and reply.status == 200:
            try:
                await self._check_length(reply, dimension)
            except ApiError:
                self.on_missing_results(list(part.entries))
                raise
        return reply

    async def _post_noting_failures(self, part: Part, body: bytes, content_type: str) -> BackendReply:
        try:
            reply = await _post(part.backend, part.entries, body, content_type)
        except ApiError as exc:
            if part.backend is self.ai and exc.status >= 500:
                self.on_missing_results(list(part.entries))
            raise
        if part.backend is self.ai and reply.status >= 500:
            self.on_missing_results(list(part.entries))
        return reply

    async def _check_length(self, reply: BackendReply, dimension: int) -> None:
        """Refuse an answer whose vector is not `dimension` long: the replica serves another model."""
        embedding = _json(reply, self.ai.name).get(p.CLIP)
        length = embedding.count(",") + 1 if isinstance(embedding, str) and embedding.strip("[] ") else 0
        if length != dimension:
            self.clip = ServedClip()  # learned again, by this request's successors
            raise BackendFailed(
                f"{self.ai.name} answered a {length}-dimensional CLIP vector where Immich's model name needs "
                f"{dimension}: the AI service now serves another model. Nothing was passed on.",
            )

    async def predict(
        self, entries: p.Entries, body: bytes, content_type: str, payload: dict[str, Any]
    ) -> BackendReply:
        """Send each part to its backend (concurrently) and merge; any failure fails the whole request.

        `body` is the original request, forwarded untouched when one backend serves everything;
        otherwise each backend gets `payload` (the image or text) with its subset of the entries.
        """
        dimension = await self.guard_clip(entries)
        parts = self.plan(entries)
        image = payload.get("image")
        if image is not None and any(part.backend is self.immich for part in parts) and not looks_like_image(image):
            raise ImageUndecodable("The image could not be decoded: not a known image format.")
        if len(parts) == 1:
            return await self.send(parts[0], body, content_type, dimension)
        replies = await asyncio.gather(
            *(self.send(part, *p.predict_body(part.entries, **payload), dimension) for part in parts)
        )
        for reply in replies:
            if reply.status >= 400:
                return reply
        merged = p.merge_answers([_json(reply, part.backend.name) for reply, part in zip(replies, parts, strict=True)])
        return BackendReply(200, orjson.dumps(merged), "application/json")

    async def refresh_clip_info(self) -> None:
        """Read the served CLIP model and dimension from a healthy AI replica's /info."""
        for replica in sorted(self.ai.replicas, key=lambda r: not r.healthy):
            try:
                info = await self.ai.get_json(replica, "/info", timeout=INFO_TIMEOUT)
                served = ServedClip(str(info["clip"]["model"]), int(info["clip"]["dimension"]))
            except (aiohttp.ClientError, asyncio.TimeoutError, ValueError, KeyError, TypeError) as exc:
                replica.failed(f"/info failed: {exc!r}")
                continue
            changed = served != self.clip
            self.clip = served
            ocr = info.get("ocr") or {}
            self.max_detection_side = ocr.get("maxDetectionSide")
            self.ocr_model = {key: ocr.get(key) for key in ("asked", "models", "fallback")}
            if changed:
                log.warning(
                    "AI service serves Chinese-CLIP %s (%s dimensions): set Immich's CLIP model to %s "
                    "(any of %s fits); other dimensions are refused",
                    served.model,
                    served.dimension,
                    SUGGESTED_NAME.get(served.model or "", "a name of that dimension"),
                    ", ".join(self.fitting_names()),
                )
            return


async def _post(backend: Backend, entries: p.Entries, body: bytes, content_type: str) -> BackendReply:
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
