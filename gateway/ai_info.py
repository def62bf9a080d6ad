"""What the AI service serves, read from its /info: the CLIP model and its dimension (which the
CLIP guard checks every request against) and the OCR model (for /health).

A read while the dimension is unknown is shared by the requests that need it at once."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import aiohttp

from aio_common.errors import Unavailable
from gateway.backends import Backend
from gateway.clip_models import SUGGESTED_NAME, ClipNames

log = logging.getLogger(__name__)

INFO_TIMEOUT = 2.0


@dataclass
class ServedClip:
    model: str | None = None
    dimension: int | None = None


class AiServiceInfo:
    def __init__(self, ai: Backend, names: ClipNames) -> None:
        self.ai = ai
        self.names = names
        self.clip = ServedClip()
        # The AI service's bound on the OCR detector's input (Immich's maxResolution has none),
        # and its OCR model: asked for, set to serve instead, served, and why the bundled one
        # serves when it does.
        self.max_detection_side: int | None = None
        self.ocr_model: dict[str, Any] = {}
        self._reading: asyncio.Task[None] | None = None

    def fitting_names(self) -> list[str]:
        """Immich's CLIP model names of the served dimension."""
        return self.names.with_dimension(self.clip.dimension) if self.clip.dimension else []

    def forget_clip(self) -> None:
        """A replica answered with another dimension: learned again by the next request."""
        self.clip = ServedClip()

    async def served_dimension(self) -> int:
        """The served dimension, reading /info first when it is unknown; 503 when none answers."""
        if self.clip.dimension is None:
            if self._reading is None or self._reading.done():
                self._reading = asyncio.ensure_future(self.refresh())
            await asyncio.shield(self._reading)
        if self.clip.dimension is None:
            errors = "; ".join(f"{r.url}: {r.last_error}" for r in self.ai.replicas if r.last_error)
            raise Unavailable(
                f"{self.ai.name}'s CLIP model is not known ({errors or 'no replica answered /info'}), so the "
                "dimension of the vectors cannot be checked; try again shortly.",
            )
        return self.clip.dimension

    async def refresh(self) -> None:
        """Read the served models from a healthy AI replica's /info."""
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
            self.ocr_model = {key: ocr.get(key) for key in ("asked", "serveModel", "models", "fallback")}
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
