"""The CLIP dimension guard, which fails closed: a CLIP request is passed on to the AI service only
when the name Immich asked for is in Immich's table and its dimension equals the served model's.
While the served dimension is unknown, the request reads it first, else it gets a 503 (Immich
runs each job once: the healer starts its queue again). Every CLIP answer's length is checked
against the name's dimension before it is passed back, so a replica that changed model is never
served under the old dimension, whatever the health loop has seen."""

from __future__ import annotations

import logging

from aio_common import protocol
from aio_common.errors import BackendFailed, Invalid, Unavailable
from gateway.ai_info import AiServiceInfo
from gateway.heal import Healer

log = logging.getLogger(__name__)


class ClipGuard:
    def __init__(self, info: AiServiceInfo, healer: Healer) -> None:
        self.info = info
        self.healer = healer
        # The last refusal's reason (for /health), and the names already logged once.
        self.refusal: str | None = None
        self._logged: set[str] = set()

    async def dimension_for(self, configs: dict[str, protocol.EntryConfig]) -> int:
        """The dimension every CLIP answer of a request must have; 422 for a name that is
        unknown or of another dimension, 503 while the served dimension cannot be learned."""
        names = self.info.names
        for config in configs.values():
            if names.dimension(config.modelName) is None:
                self._refuse(
                    config.modelName,
                    f"CLIP model {config.modelName} is not in Immich's model table, so its dimension is unknown. "
                    f"Choose one of {self._suggestion()} in Immich's smart search settings, or, for a model a "
                    "newer Immich knows, declare it with CLIP_EXTRA_MODELS=name:dimension.",
                )
        try:
            served = await self.info.served_dimension()
        except Unavailable:
            self.healer.note_missing([protocol.CLIP])
            raise
        for config in configs.values():
            dimension = names.dimension(config.modelName)
            if dimension != served:
                self._refuse(
                    config.modelName,
                    f"CLIP model {config.modelName} has {dimension} dimensions, but the AI service serves "
                    f"Chinese-CLIP {self.info.clip.model} with {served}: choose one of "
                    f"{', '.join(self.info.fitting_names())} in Immich's smart search settings.",
                )
        if self.refusal is not None:  # the admin chose a fitting name: the refused photos are owed
            self.refusal = None
            self.healer.note_missing([protocol.CLIP])
        return served

    def check_length(self, answer: dict[str, object], dimension: int) -> None:
        """Refuse an answer whose vector is not `dimension` long: the replica serves another model."""
        embedding = answer.get(protocol.CLIP)
        length = embedding.count(",") + 1 if isinstance(embedding, str) and embedding.strip("[] ") else 0
        if length != dimension:
            self.info.forget_clip()
            raise BackendFailed(
                f"{self.info.ai.name} answered a {length}-dimensional CLIP vector where Immich's model name needs "
                f"{dimension}: the AI service now serves another model. Nothing was passed on.",
            )

    def _refuse(self, name: str, reason: str) -> None:
        """422 with `reason`. Immich shows no ML error body, so the reason is logged (once per
        name) and kept for /health until a CLIP request passes."""
        self.refusal = reason
        if name not in self._logged:
            self._logged.add(name)
            log.warning("CLIP request refused: %s", reason)
        raise Invalid(reason)

    def _suggestion(self) -> str:
        return ", ".join(self.info.fitting_names()) if self.info.clip.dimension else "the names /health lists"
